/**
 * The host API's live feeds, for the web console and anyone else:
 *
 * - `GET /vms/{vm}/stats/stream`: server-sent events: first a `history` event (the last five
 *   minutes of stats, stats-history.ts), then one `stats` event (GET /vms/{vm}/stats's body)
 *   every SAMPLE_INTERVAL_MS until the client leaves; `gone` when the VM is deleted.
 * - `GET /vms/{vm}/console` (WebSocket): the serial console. On connect the last 64 KiB of the
 *   console log (binary frames), then what the guest prints (read from the log, so any number
 *   of clients see the same output); every frame a client sends (text or binary, at most
 *   WS_MAX_PAYLOAD bytes) goes to the guest as typed input through one connection to the VM's
 *   console socket, shared by the clients of that VM and opened on the first keystroke.
 *   Text frames from the host that start with "\u0000" are notices (JSON), not guest output.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { WebSocket } from 'ws';
import type { StatsHistory } from '../stats-history.js';
import type { VmHandle } from '../supervisor.js';
import { SAMPLE_INTERVAL_MS } from '../usage.js';
import { hostOperations, type HostContext } from './operations.js';
import { tenantScope } from './tenant-scope.js';
import type { HostHandler, HostRequest, HostWsHandler } from './server.js';

const HISTORY_BYTES = 64 * 1024;
const POLL_MS = 100;

function fileSize(file: string): number {
  try { return fs.statSync(file).size; } catch { return 0; }
}

function readRange(file: string, from: number, to: number): Buffer {
  if (to <= from) return Buffer.alloc(0);
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(to - from);
      const n = fs.readSync(fd, buf, 0, buf.length, from);
      return buf.subarray(0, n);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return Buffer.alloc(0);
  }
}

export function liveOperations(ctx: HostContext, history?: StatsHistory): Record<string, HostHandler> {
  const ops = hostOperations(ctx);
  return {
    streamVmStats: async (req: HostRequest) => {
      const first = await ops.getVmStats(req);
      const vmId = (first as { body?: { id?: string } }).body?.id;
      req.reply.hijack();
      const res = req.reply.raw;
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
      const send = (event: string, data: unknown): void => { res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`); };
      if (history && vmId) send('history', history.of(vmId));
      if ('body' in first) send('stats', first.body);
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          void (async () => {
            try {
              const r = await ops.getVmStats(req);
              if ('body' in r) send('stats', r.body);
            } catch (e) {
              send('gone', { fault_message: (e as Error).message });
              finish();
            }
          })();
        }, SAMPLE_INTERVAL_MS);
        const finish = (): void => { clearInterval(timer); res.end(); resolve(); };
        req.raw.raw.on('close', finish);
      });
      return { status: 'sent' as const };
    },
  };
}

/** One connection to a VM's console socket, shared by every WebSocket client of the VM. */
class ConsoleInput {
  private sock: net.Socket | null = null;
  private path = '';
  clients = 0;

  constructor(private readonly notify: (message: string) => void) {}

  write(vm: VmHandle, data: Buffer): void {
    if (!vm.proc) { this.notify(`VM "${vm.name}" is ${vm.state}: typing reaches it while it runs`); return; }
    if (this.sock && this.path === vm.files.consoleSock && !this.sock.destroyed) { this.sock.write(data); return; }
    this.close();
    const sock = net.connect(vm.files.consoleSock);
    this.sock = sock;
    this.path = vm.files.consoleSock;
    let refused = '';
    sock.on('data', (c: Buffer) => {
      // Output comes from the console log; only a refusal is of interest here.
      if (c.toString('latin1').startsWith('vessel: this console already has a client')) refused = 'another client (vessel vm console) has the console: typing here is off until it detaches';
    });
    sock.on('error', (e) => { refused ||= `cannot reach the console: ${e.message}`; });
    sock.on('close', () => { if (refused) this.notify(refused); if (this.sock === sock) this.sock = null; });
    sock.write(data);
  }

  close(): void {
    this.sock?.destroy();
    this.sock = null;
  }
}

export function liveWsOperations(ctx: HostContext): Record<string, HostWsHandler> {
  const scope = tenantScope(ctx.tenancy, ctx.supervisor);
  const inputs = new Map<string, ConsoleInput>();
  const clients = new Map<string, Set<WebSocket>>();
  return {
    vmConsole: (socket: WebSocket, req: HostRequest) => {
      const vm = scope.find(req.who, req.params.vm);
      const notice = (s: WebSocket, m: Record<string, unknown>): void => { if (s.readyState === s.OPEN) s.send(`\u0000${JSON.stringify(m)}`); };
      let set = clients.get(vm.id);
      if (!set) { set = new Set(); clients.set(vm.id, set); }
      set.add(socket);
      let input = inputs.get(vm.id);
      if (!input) {
        const peers = set;
        input = new ConsoleInput((message) => { for (const s of peers) notice(s, { notice: message }); });
        inputs.set(vm.id, input);
      }
      input.clients++;
      const file = vm.files.consoleLog;
      let offset = fileSize(file);
      socket.send(readRange(file, Math.max(0, offset - HISTORY_BYTES), offset), { binary: true });
      notice(socket, { vm: vm.name, state: vm.state });
      let lastState = vm.state;
      const timer = setInterval(() => {
        if (!ctx.supervisor.vms.has(vm.id)) { socket.close(4404, `VM "${vm.name}" was deleted`); return; }
        const size = fileSize(file);
        if (size < offset) offset = 0; // the log was replaced
        if (size > offset) {
          const chunk = readRange(file, offset, Math.min(size, offset + 1024 * 1024));
          offset += chunk.length;
          socket.send(chunk, { binary: true });
        }
        if (vm.state !== lastState) { lastState = vm.state; notice(socket, { vm: vm.name, state: vm.state }); }
      }, POLL_MS);
      const myInput = input;
      socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
        const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
        myInput.write(vm, bytes);
      });
      socket.on('close', () => {
        clearInterval(timer);
        set?.delete(socket);
        if (--myInput.clients === 0) { myInput.close(); inputs.delete(vm.id); clients.delete(vm.id); }
      });
    },
  };
}
