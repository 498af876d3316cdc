/**
 * The host's side of the QEMU guest agent (qemu-ga in the guest, on the virtio-console port
 * org.qemu.guest_agent.0 that every host VM has; the VMM serves its host end on `qga.sock` in the
 * VM's folder). QGA's protocol is JSON objects in both directions, one per line from the agent:
 *
 *   - `guest-sync-delimited {id}` first on every connection and after any time-out: the client
 *     sends a 0xFF byte (the agent's parser resets on it), then the command; the agent answers
 *     0xFF then `{"return": id}`, so everything before the 0xFF and answers with another id
 *     (left over from an earlier client) are skipped.
 *   - then one command at a time: `{"execute": NAME, "arguments": {...}}` → `{"return": ...}` or
 *     `{"error": {"class", "desc"}}`.
 *
 * Every wait has a time limit. A guest whose port is not open (no agent installed or not started,
 * an initramfs-only guest) is refused at once with NoGuestAgentError, from the VMM's own view of
 * the port; an agent that does not answer gives GuestAgentTimeoutError. Neither ever hangs.
 */
import * as net from 'node:net';
import { ConflictError, UnavailableError } from './errors.js';

/** The VM has no guest agent to talk to (409). */
export class NoGuestAgentError extends ConflictError {
  override name = 'NoGuestAgentError';
}

/** The agent did not answer in time, or the channel broke (503). */
export class GuestAgentTimeoutError extends UnavailableError {
  override name = 'GuestAgentTimeoutError';
}

/** The agent answered a command with an error (409, the agent's class and description). */
export class GuestAgentCommandError extends ConflictError {
  override name = 'GuestAgentCommandError';
  constructor(readonly command: string, readonly errorClass: string, readonly desc: string, message = `the guest agent refused ${command}: ${desc} (${errorClass})`) {
    super(message);
  }
}

const SENTINEL = 0xff;
export const CONNECT_TIMEOUT_MS = 2000;
export const SYNC_TIMEOUT_MS = 5000;
export const COMMAND_TIMEOUT_MS = 10_000;

/** Splits the agent's output into JSON objects: skips up to a 0xFF while syncing, then one object per line. */
export class QgaReader {
  private text = '';
  private waitingSentinel = false;

  /** From now on, bytes before the next 0xFF are dropped. */
  expectSentinel(): void {
    this.waitingSentinel = true;
    this.text = '';
  }

  /** Feeds bytes; returns the complete objects found (lines that are not JSON objects are dropped). */
  push(chunk: Uint8Array): unknown[] {
    let bytes = chunk;
    const out: unknown[] = [];
    for (;;) {
      if (this.waitingSentinel) {
        const i = bytes.indexOf(SENTINEL);
        if (i < 0) return out;
        this.waitingSentinel = false;
        bytes = bytes.subarray(i + 1);
      }
      const j = bytes.indexOf(SENTINEL);
      const part = j < 0 ? bytes : bytes.subarray(0, j);
      this.text += Buffer.from(part).toString('utf8');
      out.push(...this.lines());
      if (j < 0) return out;
      // A sentinel in the middle of the stream: what came before it is finished or garbage.
      this.text = '';
      bytes = bytes.subarray(j + 1);
    }
  }

  private lines(): unknown[] {
    const out: unknown[] = [];
    let nl: number;
    while ((nl = this.text.indexOf('\n')) >= 0) {
      const line = this.text.slice(0, nl).trim();
      this.text = this.text.slice(nl + 1);
      if (line === '') continue;
      try {
        const v: unknown = JSON.parse(line);
        if (typeof v === 'object' && v !== null) out.push(v);
      } catch { /* not JSON: a stray line, dropped */ }
    }
    if (this.text.length > 16 * 1024 * 1024) this.text = ''; // no newline for 16 MiB: garbage
    return out;
  }
}

type Reply = { return?: unknown; error?: { class?: string; desc?: string } };

/** The agent's refusal as an error; a command qemu-ga has disabled says why that happens. */
function commandError(command: string, error: { class?: string; desc?: string }): GuestAgentCommandError {
  const desc = error.desc ?? 'no description';
  const why = /has been disabled/.test(desc) ? '; qemu-ga disables most commands while the guest\'s file systems are frozen (fsfreeze thaw ends it), and those its configuration blocks' : '';
  return new GuestAgentCommandError(command, error.class ?? 'GenericError', desc + why);
}

/** One connection to an agent's channel. Commands run one at a time. */
export class QgaClient {
  private readonly reader = new QgaReader();
  private queue: unknown[] = [];
  private waiter: (() => void) | null = null;
  private closedWhy: string | null = null;
  private nextId = Math.floor(Math.random() * 1_000_000_000);

  private constructor(private readonly socket: net.Socket, readonly label: string) {
    socket.on('data', (chunk: Buffer) => {
      this.queue.push(...this.reader.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)));
      this.wake();
    });
    socket.on('close', () => { this.closedWhy ??= 'the guest agent channel closed'; this.wake(); });
    socket.on('error', (e) => { this.closedWhy = `the guest agent channel failed: ${e.message}`; this.wake(); });
  }

  /** Connects to a channel's Unix socket and syncs (guest-sync-delimited). */
  static async connect(path: string, label = path, syncTimeoutMs = SYNC_TIMEOUT_MS): Promise<QgaClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(path);
      const timer = setTimeout(() => { s.destroy(); reject(new GuestAgentTimeoutError(`${label}: the guest agent channel did not accept a connection within ${CONNECT_TIMEOUT_MS} ms`)); }, CONNECT_TIMEOUT_MS);
      s.once('connect', () => { clearTimeout(timer); resolve(s); });
      s.once('error', (e: NodeJS.ErrnoException) => { clearTimeout(timer); reject(new NoGuestAgentError(`${label} has no guest agent channel (${e.code ?? e.message})`)); });
    });
    const client = new QgaClient(socket, label);
    try {
      await client.sync(syncTimeoutMs);
    } catch (e) {
      client.close();
      throw e;
    }
    return client;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** The next object from the agent, or a time-out. */
  private async next(deadline: number, what: string): Promise<Reply> {
    for (;;) {
      if (this.queue.length > 0) return this.queue.shift() as Reply;
      if (this.closedWhy) throw new GuestAgentTimeoutError(`${this.label}: ${this.closedWhy} during ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new GuestAgentTimeoutError(`${this.label}: the guest agent did not answer ${what} within ${Math.round((deadline - this.startedAt) / 100) / 10} s`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => { clearTimeout(timer); resolve(); };
      });
    }
  }

  private startedAt = 0;

  /** guest-sync-delimited: 0xFF, then the command; skips everything up to the agent's 0xFF and answers with other ids. */
  async sync(timeoutMs = SYNC_TIMEOUT_MS): Promise<void> {
    const id = (this.nextId = (this.nextId + 1) % 2_000_000_000);
    this.queue = [];
    this.reader.expectSentinel();
    this.socket.write(Buffer.from([SENTINEL]));
    this.socket.write(JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id } }) + '\n');
    this.startedAt = Date.now();
    const deadline = this.startedAt + timeoutMs;
    for (;;) {
      const r = await this.next(deadline, 'guest-sync-delimited');
      if (r.return === id) return;
    }
  }

  /**
   * Runs one command. A time-out leaves the channel out of step (a late answer may still come):
   * the next call syncs again first.
   */
  async execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = COMMAND_TIMEOUT_MS): Promise<T> {
    if (this.outOfStep) await this.sync();
    this.socket.write(JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args }) + '\n');
    this.startedAt = Date.now();
    let r: Reply;
    try {
      r = await this.next(this.startedAt + timeoutMs, command);
    } catch (e) {
      this.outOfStep = true;
      throw e;
    }
    if (r.error) throw commandError(command, r.error);
    return r.return as T;
  }

  private outOfStep = false;

  /** Sends a command that has no answer when it works (guest-shutdown); an error answer within `waitMs` is thrown. */
  async executeNoReply(command: string, args: Record<string, unknown>, waitMs = 1000): Promise<void> {
    this.socket.write(JSON.stringify({ execute: command, arguments: args }) + '\n');
    this.startedAt = Date.now();
    try {
      const r = await this.next(this.startedAt + waitMs, command);
      if (r.error) throw commandError(command, r.error);
    } catch (e) {
      if (e instanceof GuestAgentTimeoutError) return; // no answer: as it should be
      throw e;
    }
  }

  close(): void {
    this.closedWhy ??= 'closed';
    this.socket.destroy();
  }

  // ----- The commands Vessel uses -----

  ping(): Promise<void> { return this.execute('guest-ping').then(() => undefined); }

  info(): Promise<{ version: string; supported_commands: { name: string; enabled: boolean }[] }> { return this.execute('guest-info'); }

  /**
   * guest-exec with captured output, then guest-exec-status until it exited: exit code (128 +
   * signal when killed), stdout and stderr decoded from base64. GuestAgentTimeoutError after `timeoutMs`.
   */
  async exec(command: string[], opts: { timeoutMs?: number; input?: Uint8Array } = {}): Promise<ExecResult> {
    if (command.length === 0) throw new RangeError('exec needs a command');
    const args: Record<string, unknown> = { path: command[0], arg: command.slice(1), 'capture-output': true };
    if (opts.input) args['input-data'] = Buffer.from(opts.input).toString('base64');
    const { pid } = await this.execute<{ pid: number }>('guest-exec', args);
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    let delay = 20;
    for (;;) {
      const s = await this.execute<ExecStatus>('guest-exec-status', { pid });
      if (s.exited) {
        return {
          exit_code: s.signal !== undefined ? 128 + s.signal : s.exitcode ?? 0,
          ...(s.signal !== undefined ? { signal: s.signal } : {}),
          stdout: Buffer.from(s['out-data'] ?? '', 'base64').toString('utf8'),
          stderr: Buffer.from(s['err-data'] ?? '', 'base64').toString('utf8'),
          ...(s['out-truncated'] || s['err-truncated'] ? { truncated: true } : {}),
        };
      }
      if (Date.now() + delay > deadline) throw new GuestAgentTimeoutError(`${this.label}: "${command.join(' ')}" (guest pid ${pid}) did not finish within ${Math.round((opts.timeoutMs ?? 60_000) / 1000)} s; it goes on running in the guest`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(250, delay * 2);
    }
  }

  /** guest-shutdown (powerdown, halt or reboot): the agent runs /sbin/shutdown and gives no answer. */
  shutdown(mode: 'powerdown' | 'halt' | 'reboot' = 'powerdown'): Promise<void> { return this.executeNoReply('guest-shutdown', { mode }); }

  getVcpus(): Promise<{ 'logical-id': number; online: boolean; 'can-offline'?: boolean }[]> { return this.execute('guest-get-vcpus'); }

  setVcpus(vcpus: { 'logical-id': number; online: boolean }[]): Promise<number> { return this.execute('guest-set-vcpus', { vcpus }); }

  networkInterfaces(): Promise<QgaInterface[]> { return this.execute('guest-network-get-interfaces'); }

  fsInfo(): Promise<QgaFilesystem[]> { return this.execute('guest-get-fsinfo'); }
}

/** guest-network-get-interfaces: one network interface of the guest. */
export interface QgaInterface {
  name: string;
  'hardware-address'?: string;
  'ip-addresses'?: { 'ip-address-type': 'ipv4' | 'ipv6'; 'ip-address': string; prefix: number }[];
  statistics?: { 'rx-bytes': number; 'tx-bytes': number; 'rx-packets': number; 'tx-packets': number; 'rx-errs': number; 'tx-errs': number; 'rx-dropped': number; 'tx-dropped': number };
}

/** guest-get-fsinfo: one mounted file system of the guest. */
export interface QgaFilesystem {
  name: string;
  mountpoint: string;
  type: string;
  'used-bytes'?: number;
  'total-bytes'?: number;
  disk: { dev?: string; 'bus-type'?: string; serial?: string }[];
}

interface ExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  'out-data'?: string;
  'err-data'?: string;
  'out-truncated'?: boolean;
  'err-truncated'?: boolean;
}

export interface ExecResult {
  exit_code: number;
  signal?: number;
  stdout: string;
  stderr: string;
  truncated?: boolean;
}

// ---------------------------------------------------------------------------------------
// The host's VMs: one agent conversation per VM at a time (the VMM's channel takes one client).

/** What GET /guest-agent of a VM process says. */
interface ChannelInfo { host_connected: boolean; guest_connected: boolean }

export interface AgentVm {
  name: string;
  state: string;
  running: boolean;
  apiSock: string;
  qgaSock: string;
}

const queues = new Map<string, Promise<unknown>>();
const versions = new Map<string, string>();

/** The VMM's view of the channel; null when the VM process has none (started before Vessel had it). */
async function channel(vm: AgentVm, request: (sock: string, method: string, path: string, body?: unknown, timeoutMs?: number) => Promise<unknown>): Promise<ChannelInfo | null> {
  try {
    return await request(vm.apiSock, 'GET', '/guest-agent', undefined, 2000) as ChannelInfo;
  } catch (e) {
    if ((e as { status?: number | null }).status === 400) return null;
    throw e;
  }
}

export type VmmRequest = (sock: string, method: string, path: string, body?: unknown, timeoutMs?: number) => Promise<unknown>;

/**
 * Runs `f` on a synced connection to the VM's agent, after the conversations queued on this VM
 * before it. NoGuestAgentError at once when the VM does not run, is paused, or no agent has its
 * port open in the guest.
 */
export function withAgent<T>(vm: AgentVm, request: VmmRequest, f: (c: QgaClient) => Promise<T>): Promise<T> {
  const run = async (): Promise<T> => {
    if (!vm.running) throw new NoGuestAgentError(`VM "${vm.name}" is ${vm.state}: no guest agent can answer (start it first)`);
    if (vm.state === 'paused') throw new NoGuestAgentError(`VM "${vm.name}" is paused: its guest agent cannot answer until it is resumed`);
    const ch = await channel(vm, request);
    if (!ch) throw new NoGuestAgentError(`VM "${vm.name}" has no guest agent: its VM process was started without the guest agent channel (stop and start it)`);
    if (!ch.guest_connected) {
      versions.delete(vm.qgaSock);
      throw new NoGuestAgentError(`VM "${vm.name}" has no guest agent: nothing in the guest has opened the org.qemu.guest_agent.0 port (the default root disk starts qemu-ga at boot; a guest without it, or one still booting, has none)`);
    }
    const client = await QgaClient.connect(vm.qgaSock, `VM "${vm.name}"`);
    try {
      return await f(client);
    } finally {
      client.close();
    }
  };
  const prev = queues.get(vm.qgaSock) ?? Promise.resolve();
  const next = prev.then(run, run);
  const tail = next.catch(() => undefined);
  queues.set(vm.qgaSock, tail);
  void tail.then(() => { if (queues.get(vm.qgaSock) === tail) queues.delete(vm.qgaSock); });
  return next;
}

/** `guest_agent` in GET /vms/{vm}: whether an agent has the port open, and its version (asked once, then remembered). */
export async function agentStatus(vm: AgentVm, request: VmmRequest): Promise<{ connected: boolean; version: string | null }> {
  if (!vm.running || vm.state === 'paused' || vm.state === 'starting') return { connected: false, version: versions.get(vm.qgaSock) ?? null };
  let ch: ChannelInfo | null;
  try {
    ch = await channel(vm, request);
  } catch {
    return { connected: false, version: null };
  }
  if (!ch?.guest_connected) {
    versions.delete(vm.qgaSock);
    return { connected: false, version: null };
  }
  let version = versions.get(vm.qgaSock) ?? null;
  if (version === null) {
    version = await withAgent(vm, request, (c) => c.info()).then((i) => i.version, () => null);
    if (version !== null) versions.set(vm.qgaSock, version);
  }
  return { connected: true, version };
}
