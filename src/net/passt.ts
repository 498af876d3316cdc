/**
 * Debian's `passt` as a `NetBackend` (`vessel run --net passt`): the user-mode network that
 * Podman and libvirt use, a process of its own per VM that turns the guest's connections into
 * host sockets (TCP, UDP, ICMP, IPv4 and IPv6), with its own DHCP, DHCPv6/NDP and DNS forwarder.
 *
 * passt speaks QEMU's `-netdev stream` framing: each Ethernet frame is preceded by its length,
 * 4 bytes big-endian. The stream is a Unix socket pair that Node creates for the child's fd 3
 * (libuv makes every 'pipe' stdio a socketpair), handed over with `--fd 3`: no socket path to
 * place, no permissions to get right for the `nobody` passt drops to when started as root, and
 * no window in which another process could connect. When Vessel exits or is killed the socket
 * closes and passt exits with it.
 *
 * The guest sees slirp's addresses, as with `--net user`: 10.0.2.15/24 by DHCP, the gateway
 * 10.0.2.2, which passt maps to the host's loopback (as 10.0.2.2 is in `--net user`), and DNS
 * at 10.0.2.3, which passt forwards to the host's resolver. IPv6 follows the host's (passt's
 * default: the guest gets the host's address and route by NDP/DHCPv6). The MTU stays at
 * virtio-net's 1500: passt would advertise 65520, which the device does not take.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { NetBackend } from './backend.js';

export class PasstError extends Error {
  override name = 'PasstError';
}

export const PASST_COMMAND = 'passt';
/** The length prefix of the stream framing. */
const LENGTH_BYTES = 4;
/** Larger than any frame passt sends (its MTU is at most 65520): a longer one means the stream is broken. */
const MAX_STREAM_FRAME = 65_535 + 14;
/** Frames for passt that may wait in Node's socket buffer before more are dropped (a full NIC queue). */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
/** passt prints its configuration once it has parsed its options and found its host interface. */
const STARTED = /^(MAC|DHCP):/m;
/** How long a start may take before Vessel goes on without passt's configuration message. */
const START_WAIT_MS = 5_000;

/** The guest's view, as in `--net user` (slirp's layout). */
export const PASST_ARGS = [
  '--foreground', '--fd', '3',
  '--address', '10.0.2.15', '--netmask', '24', '--gateway', '10.0.2.2',
  '--dns', '10.0.2.3', '--dns-forward', '10.0.2.3',
  '--mtu', '1500',
];

export class PasstBackend implements NetBackend {
  readonly name = 'passt';
  private receive: ((frame: Uint8Array) => void) | null = null;
  private closed = false;
  /** Received bytes that do not make a whole frame yet. */
  private pending: Buffer = Buffer.alloc(0);

  private constructor(private readonly child: ChildProcess, private readonly stream: Socket, private readonly log: (line: string) => void, private stderr: string) {
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', () => { /* the exit below says what happened */ });
    child.stderr?.on('data', (chunk: string) => { this.stderr = (this.stderr + chunk).slice(-4096); });
    child.on('exit', (code, signal) => {
      if (this.closed) return;
      this.closed = true;
      stream.destroy();
      const last = lastLine(this.stderr);
      this.log(`passt ended (${signal ?? `exit code ${code}`})${last ? `: ${last}` : ''}; the guest's network is cut off`);
    });
  }

  /** Starts a passt for one VM; PasstError when it is not installed or does not start. */
  static async open(log: (line: string) => void = (l) => console.error(`vessel: ${l}`)): Promise<PasstBackend> {
    const child = spawn(PASST_COMMAND, PASST_ARGS, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    child.stderr?.setEncoding('utf8');
    const stderr = await started(child);
    const stream = child.stdio[3] as Socket;
    return new PasstBackend(child, stream, log, stderr);
  }

  send(frame: Uint8Array): void {
    if (this.closed) return;
    if (this.stream.writableLength > MAX_QUEUED_BYTES) return; // passt is not reading: a lost frame, as on a wire
    const message = Buffer.allocUnsafe(LENGTH_BYTES + frame.length);
    message.writeUInt32BE(frame.length, 0);
    message.set(frame, LENGTH_BYTES);
    this.stream.write(message);
  }

  attach(receive: (frame: Uint8Array) => void): void {
    this.receive = receive;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stream.destroy(); // passt exits when its socket closes
    this.child.kill('SIGTERM');
  }

  private onData(chunk: Buffer): void {
    let data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    while (data.length >= LENGTH_BYTES) {
      const length = data.readUInt32BE(0);
      if (length === 0 || length > MAX_STREAM_FRAME) {
        this.log(`passt sent a frame length of ${length} bytes: the stream is broken; the guest's network is cut off`);
        this.close();
        return;
      }
      if (data.length < LENGTH_BYTES + length) break;
      // A copy: the frame is the receiver's to keep, and `data` is Node's read buffer.
      const frame = Uint8Array.prototype.slice.call(data, LENGTH_BYTES, LENGTH_BYTES + length);
      data = data.subarray(LENGTH_BYTES + length);
      if (!this.closed) this.receive?.(frame);
    }
    this.pending = Buffer.from(data);
  }
}

/** Resolves with what passt printed once it runs; rejects with a PasstError when it cannot start. */
function started(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    let settled = false;
    const settle = (error: PasstError | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stderr?.off('data', collect);
      if (error) {
        child.kill('SIGKILL');
        reject(error);
      } else {
        resolve(stderr);
      }
    };
    const collect = (chunk: string): void => {
      stderr += chunk;
      if (STARTED.test(stderr)) settle(null);
    };
    // A passt that prints its configuration differently still starts: then the wait decides.
    const timer = setTimeout(() => settle(null), START_WAIT_MS);
    child.stderr?.on('data', collect);
    child.on('error', (e: NodeJS.ErrnoException) => settle(new PasstError(e.code === 'ENOENT'
      ? '--net passt needs Debian\'s passt: apt-get install passt'
      : `--net passt: cannot start passt: ${e.message}`)));
    child.on('exit', (code, signal) => settle(new PasstError(`--net passt: passt exited at start (${signal ?? `exit code ${code}`})${lastLine(stderr) ? `: ${lastLine(stderr)}` : ''}`)));
  });
}

/** The last line passt printed that says something (not its note about leaving root). */
function lastLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/^Don't run as root/.test(l)).pop() ?? '';
}
