/**
 * `vessel run --hvc <path>`: the guest's virtio-console (hvc0) on a Unix domain socket server.
 * One client at a time (a second one is turned away while the first is connected); what the
 * client sends goes to the guest, what the guest writes goes to the client. Guest output while
 * no client is connected is kept, up to 64 KiB (the oldest bytes are dropped), and sent to the
 * next client when it connects. The socket file is removed when the server closes or the
 * process exits.
 */
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import * as net from 'node:net';

export const HVC_BACKLOG_BYTES = 64 * 1024;

export class HvcSocketError extends Error {
  override name = 'HvcSocketError';
}

/**
 * Makes `path` free for a new socket server: a stale socket file (its server is gone) is removed;
 * a live socket or any other file is an HvcSocketError naming `label` (the option it came from).
 */
export async function claimSocketPath(path: string, label: string): Promise<void> {
  let isSocket = false;
  let exists = false;
  try {
    const st = lstatSync(path);
    exists = true;
    isSocket = st.isSocket();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new HvcSocketError(`${label} "${path}": ${(e as Error).message}`);
    if (!existsSync(dirname(path))) throw new HvcSocketError(`${label} "${path}": directory "${dirname(path)}" does not exist`);
  }
  if (exists && !isSocket) throw new HvcSocketError(`${label} "${path}" exists and is not a socket`);
  if (exists) {
    // A socket file with a live server behind it belongs to someone else.
    if (await socketInUse(path)) throw new HvcSocketError(`${label} "${path}" is in use by another server`);
    unlinkSync(path);
  }
}

function socketInUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export class HvcSocketServer {
  private client: net.Socket | null = null;
  private backlog: Uint8Array[] = [];
  private backlogBytes = 0;
  private closed = false;
  private readonly removeOnExit = (): void => this.unlink();

  private constructor(readonly path: string, private readonly server: net.Server, private onInput: (bytes: Uint8Array) => void) {
    server.on('connection', (socket) => this.accept(socket));
    server.on('error', () => { /* after listen, errors only end the server; the VM goes on */ });
    process.on('exit', this.removeOnExit);
  }

  /**
   * Listens on `path`; a stale socket file there is replaced, any other file is an error.
   * `label` names the socket in error messages (the option it came from).
   */
  static async listen(path: string, onInput: (bytes: Uint8Array) => void, label = '--hvc'): Promise<HvcSocketServer> {
    await claimSocketPath(path, label);
    const server = net.createServer({ pauseOnConnect: false });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new HvcSocketError(`${label} "${path}": ${e.message}`)));
      server.listen(path, () => resolve());
    });
    return new HvcSocketServer(path, server, onInput);
  }

  /** Where client input goes from now on (a rebooted VM is a new machine). */
  setInput(onInput: (bytes: Uint8Array) => void): void {
    this.onInput = onInput;
  }

  get connected(): boolean { return this.client !== null; }

  private accept(socket: net.Socket): void {
    if (this.client || this.closed) {
      socket.end('vessel: this console already has a client\n');
      return;
    }
    this.client = socket;
    socket.on('data', (chunk: Buffer) => this.onInput(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)));
    socket.on('error', () => { /* reported as close */ });
    socket.on('close', () => { if (this.client === socket) this.client = null; });
    for (const b of this.backlog) socket.write(b);
    this.backlog = [];
    this.backlogBytes = 0;
  }

  /** Guest output: to the client, or into the 64 KiB backlog while there is none. */
  write(data: Uint8Array): void {
    if (this.closed || data.length === 0) return;
    if (this.client && !this.client.destroyed && this.client.writable) {
      this.client.write(Uint8Array.from(data));
      return;
    }
    const keep = data.length > HVC_BACKLOG_BYTES ? data.subarray(data.length - HVC_BACKLOG_BYTES) : data;
    this.backlog.push(Uint8Array.from(keep));
    this.backlogBytes += keep.length;
    while (this.backlogBytes > HVC_BACKLOG_BYTES) {
      const excess = this.backlogBytes - HVC_BACKLOG_BYTES;
      const first = this.backlog[0];
      if (first.length <= excess) {
        this.backlog.shift();
        this.backlogBytes -= first.length;
      } else {
        this.backlog[0] = first.subarray(excess);
        this.backlogBytes -= excess;
      }
    }
  }

  /** Bytes kept for the next client. */
  get buffered(): number { return this.backlogBytes; }

  /**
   * Stops listening, removes the socket file and ends the client's connection after its
   * pending output (destroyed if it has not closed within half a second).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
    this.unlink();
    process.off('exit', this.removeOnExit);
    const client = this.client;
    this.client = null;
    if (client) {
      const timer = setTimeout(() => client.destroy(), 500);
      client.once('close', () => clearTimeout(timer));
      client.end();
    }
  }

  private unlink(): void {
    try {
      if (lstatSync(this.path).isSocket()) unlinkSync(this.path);
    } catch { /* already gone */ }
  }
}
