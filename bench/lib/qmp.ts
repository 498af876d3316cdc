// QEMU's QMP on a Unix socket: one command at a time, events skipped.
import * as net from 'node:net';

import { GuestError } from './guest.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Qmp {
  private buf = '';
  private waiting: ((line: Record<string, unknown>) => void) | null = null;
  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        const msg = JSON.parse(this.buf.slice(0, nl)) as Record<string, unknown>;
        this.buf = this.buf.slice(nl + 1);
        if ('event' in msg || 'QMP' in msg) continue;
        const w = this.waiting;
        this.waiting = null;
        w?.(msg);
      }
    });
  }

  /** Connects to QEMU's `-qmp unix:FILE,server=on,wait=off`, retrying until it listens. */
  static async connect(file: string, timeoutMs = 30_000): Promise<Qmp> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      try {
        const sock = await new Promise<net.Socket>((resolve, reject) => { const s = net.connect(file, () => resolve(s)); s.once('error', reject); });
        const q = new Qmp(sock);
        await q.command('qmp_capabilities');
        return q;
      } catch (e) {
        if (performance.now() > deadline) throw new GuestError(`QMP on ${file}: ${(e as Error).message}`);
        await sleep(100);
      }
    }
  }

  command<T>(execute: string, args?: Record<string, unknown>): Promise<T> {
    return new Promise((resolve, reject) => {
      this.waiting = (msg) => (msg['error'] ? reject(new GuestError(`QMP ${execute}: ${JSON.stringify(msg['error'])}`)) : resolve(msg['return'] as T));
      this.sock.write(JSON.stringify({ execute, ...(args ? { arguments: args } : {}) }) + '\n');
    });
  }

  close(): void { this.sock.destroy(); }
}
