/**
 * A Linux TAP device as a `NetBackend`.
 *
 * Attaching to a TAP takes ioctl(TUNSETIFF) on /dev/net/tun, which Node cannot issue, and a
 * TAP file descriptor would not fit Node's I/O anyway (libuv treats a character device as a
 * file: every read would block a thread-pool thread until a frame arrives). So a helper
 * process owns the TAP: Debian's `socat` relays it to a UDP socket pair on 127.0.0.1, one
 * frame per datagram, which keeps frame boundaries and lets Node use dgram. Both UDP sockets
 * are connected to each other, so the kernel drops datagrams from any other local port. socat
 * runs under `setpriv --pdeathsig SIGTERM` so that it goes away with Vessel even when Vessel
 * is killed, instead of keeping the TAP busy. The alternative, an npm native addon, would need
 * a compiler at install time and the few tun/tap addons on npm are unmaintained.
 *
 * The TAP may exist (a persistent one from `ip tuntap add dev NAME mode tap`, e.g. a bridge
 * port) or not (then the kernel creates one that disappears when Vessel exits); either way it
 * is brought up. Errors before the relay runs — a bad name, no /dev/net/tun, no permission,
 * a busy TAP, a name taken by a device that is not a TAP, socat missing — are `TapError`s with
 * a message for the user.
 */
import type { ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import { statSync } from 'node:fs';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { NetBackend } from './backend.js';
import { RELAY_START_TIMEOUT_MS, socatErrorLine, startSocatRelay } from './socat-relay.js';

export class TapError extends Error {
  override name = 'TapError';
}

export const TUN_DEVICE = '/dev/net/tun';
/** Linux IFNAMSIZ is 16 with the NUL. */
const MAX_IFNAME = 15;
/** Tries with a fresh port pair when another process took socat's port in between. */
const PORT_TRIES = 3;
const LOOPBACK = '127.0.0.1';

/**
 * Checks an interface name: what Linux accepts (1-15 bytes, no '/', ':' or white space, not
 * "." or "..") narrowed to letters, digits, '_', '.' and '-', which also keeps it clear of
 * socat's address syntax.
 */
export function checkTapName(name: string): void {
  if (name === '') throw new TapError('the TAP device name is empty');
  if (name.length > MAX_IFNAME) throw new TapError(`TAP device name "${name}" is longer than ${MAX_IFNAME} characters`);
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name === '.' || name === '..') {
    throw new TapError(`TAP device name "${name}" is not valid: use letters, digits, '_', '.' and '-'`);
  }
}

export class TapBackend implements NetBackend {
  private receive: ((frame: Uint8Array) => void) | null = null;
  private closed = false;

  private constructor(readonly name: string, private readonly socket: dgram.Socket, private readonly relay: ChildProcess, private readonly log: (line: string) => void) {
    socket.on('message', (frame) => { if (!this.closed) this.receive?.(new Uint8Array(frame)); });
    // ECONNREFUSED and the like: the relay is gone; its exit is reported below.
    socket.on('error', () => {});
    let lastError = '';
    relay.stderr?.on('data', (chunk: string) => {
      const line = chunk.split('\n').reverse().find((l) => / E /.test(l));
      if (line) lastError = line.replace(/^.* E /, ': ');
    });
    relay.on('exit', (code, signal) => {
      if (!this.closed) this.log(`${name}: the TAP relay (socat) ended (${signal ?? `exit code ${code}`})${lastError}; the guest's network is cut off`);
    });
  }

  /** Attaches to TAP `name` (creating it if it does not exist) once the relay is running. */
  static async open(name: string, log: (line: string) => void = (l) => console.error(l)): Promise<TapBackend> {
    checkTapName(name);
    try {
      statSync(TUN_DEVICE);
    } catch {
      throw new TapError(`${TUN_DEVICE} does not exist: TAP networking needs the tun driver (modprobe tun)`);
    }
    for (let attempt = 1; ; attempt++) {
      const socket = dgram.createSocket('udp4');
      try {
        socket.bind(0, LOOPBACK);
        await once(socket, 'listening');
        const relayPort = await freeUdpPort();
        socket.connect(relayPort, LOOPBACK);
        await once(socket, 'connect');
        const relay = await startRelay(name, (socket.address() as AddressInfo).port, relayPort);
        return new TapBackend(name, socket, relay, log);
      } catch (e) {
        socket.close();
        if (e instanceof PortTakenError && attempt < PORT_TRIES) continue;
        throw e;
      }
    }
  }

  send(frame: Uint8Array): void {
    if (this.closed) return;
    // A datagram that cannot be sent (socket buffer full, relay gone) is a lost frame, as on a wire.
    this.socket.send(frame, () => {});
  }

  attach(receive: (frame: Uint8Array) => void): void {
    this.receive = receive;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.relay.kill('SIGTERM');
    this.socket.close();
  }
}

class PortTakenError extends Error {}

/** A UDP port on 127.0.0.1 that was free a moment ago, for socat to bind. */
async function freeUdpPort(): Promise<number> {
  const probe = dgram.createSocket('udp4');
  probe.bind(0, LOOPBACK);
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  probe.close();
  return port;
}

/** Spawns socat between TAP `name` and UDP 127.0.0.1:relayPort → 127.0.0.1:vesselPort; resolves when it relays. */
async function startRelay(name: string, vesselPort: number, relayPort: number): Promise<ChildProcess> {
  const { relay } = await startSocatRelay([
    '-b', '65536', // whole frames even from a TAP with a large MTU (a frame is one read)
    `TUN,tun-type=tap,tun-name=${name},iff-no-pi,iff-up`,
    `UDP:${LOOPBACK}:${vesselPort},bind=${LOOPBACK}:${relayPort}`,
  ], ['ignore', 'ignore', 'pipe'], {
    cannotSpawn: (e) => (e.code === 'ENOENT'
      ? new TapError('TAP networking needs setpriv (util-linux) and socat: apt-get install socat')
      : new TapError(`TAP ${name}: cannot start socat: ${e.message}`)),
    noSocat: () => new TapError('TAP networking needs socat: apt-get install socat'),
    ended: (stderr) => relayError(name, stderr),
    timedOut: (stderr) => new TapError(`TAP ${name}: socat did not start relaying within ${RELAY_START_TIMEOUT_MS / 1000} s:\n${stderr.trim()}`),
  });
  return relay;
}

/** Turns socat's error line (`... E <call>: <strerror>`) into what the user should know. */
function relayError(name: string, stderr: string): Error {
  const line = socatErrorLine(stderr);
  if (/bind\(.*Address already in use/.test(line)) return new PortTakenError(line);
  if (line.includes(TUN_DEVICE) && /Permission denied|Operation not permitted/.test(line)) {
    return new TapError(`TAP ${name}: no permission to open ${TUN_DEVICE}; run as root (or with CAP_NET_ADMIN)`);
  }
  if (/TUNSETIFF/.test(line)) {
    if (/busy/i.test(line)) return new TapError(`TAP ${name} is busy: another VM or program is attached to it`);
    if (/Operation not permitted|Permission denied/.test(line)) {
      return new TapError(`TAP ${name}: not permitted; run as root (with CAP_NET_ADMIN), or create it for your user first (ip tuntap add dev ${name} mode tap user $USER)`);
    }
    if (/Invalid argument/.test(line)) return new TapError(`${name} exists and is not a TAP device`);
  }
  return new TapError(`TAP ${name}: socat failed: ${line}`);
}
