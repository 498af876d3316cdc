/**
 * TCP NAT: the table of guest connections, guest SYNs turned into host connects, and host
 * ports forwarded into the guest (hostfwd). The per-connection protocol is in tcp-connection.ts.
 */
import * as net from 'node:net';

import { GATEWAY, HOST_LOOPBACK, formatIpv4, inVirtualNetwork, type Ipv4 } from './address.js';
import type { GuestLink } from './guest-link.js';
import { PROTO_TCP, type Ipv4Packet } from './ipv4.js';
import type { HostForward } from './options.js';
import { TcpConnection, type TcpEndpoints, type TcpState } from './tcp-connection.js';
import { TcpFlag, buildTcp, parseTcp, segmentLength, seqAdd, type OutgoingSegment, type TcpSegment } from './tcp-segment.js';

/** More connections than this at once are refused (each holds a host socket). */
const MAX_CONNECTIONS = 1024;
/** Idle limits by state: an open connection may sit quietly for long, a half-closed one less. */
const IDLE_LIMIT_MS: Partial<Record<TcpState, number>> = {
  'established': 2 * 60 * 60_000,
  'close-wait': 10 * 60_000,
  'fin-wait-2': 10 * 60_000,
};
const SWEEP_INTERVAL_MS = 10_000;
/** Source ports of forwarded connections, as the guest sees them on 10.0.2.2. */
const EPHEMERAL_FIRST = 49152;
const EPHEMERAL_COUNT = 65536 - EPHEMERAL_FIRST;

/** A hostfwd listener that could not be opened. */
export class HostForwardError extends Error {
  override name = 'HostForwardError';
}

export interface ForwardAddress {
  hostAddress: string;
  /** The port actually bound (differs from the setting when that asked for port 0). */
  hostPort: number;
  guestAddress: Ipv4;
  guestPort: number;
}

function connectionKey(guestIp: Ipv4, guestPort: number, remoteIp: Ipv4, remotePort: number): string {
  return `${guestIp}:${guestPort}>${remoteIp}:${remotePort}`;
}

export class TcpNat {
  private readonly connections = new Map<string, TcpConnection>();
  private readonly servers: Array<{ server: net.Server; forward: HostForward }> = [];
  private readonly sweeper: NodeJS.Timeout;
  private nextEphemeral = Math.floor(Math.random() * EPHEMERAL_COUNT);
  private closed = false;
  /** Settles when every hostfwd listener is bound; rejects with HostForwardError if one cannot be. */
  readonly listening: Promise<void>;

  constructor(private readonly link: GuestLink, forwards: HostForward[]) {
    this.listening = Promise.all(forwards.map((f) => this.listen(f))).then(() => undefined);
    this.listening.catch(() => { /* whoever awaits it reports it; it is also logged */ });
    this.sweeper = setInterval(() => this.sweepIdle(), SWEEP_INTERVAL_MS).unref();
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  forwardAddresses(): ForwardAddress[] {
    return this.servers.flatMap(({ server, forward }) => {
      const address = server.address();
      if (!address || typeof address === 'string') return [];
      return [{ hostAddress: forward.hostAddress, hostPort: address.port, guestAddress: forward.guestAddress, guestPort: forward.guestPort }];
    });
  }

  /** `partialChecksum`: the guest left the checksum to the device, so there is none to verify. */
  onPacket(ip: Ipv4Packet, partialChecksum = false): void {
    const segment = parseTcp(ip.src, ip.dst, ip.payload, !partialChecksum);
    if (typeof segment === 'string') return this.link.diagnostics.drop(segment);
    const key = connectionKey(ip.src, segment.srcPort, ip.dst, segment.dstPort);
    const existing = this.connections.get(key);
    if (existing) return existing.onSegment(segment);

    const flags = segment.flags;
    if (flags & TcpFlag.rst) return; // never answer a RST
    const endpoints: TcpEndpoints = { guestIp: ip.src, guestPort: segment.srcPort, remoteIp: ip.dst, remotePort: segment.dstPort };
    if ((flags & (TcpFlag.syn | TcpFlag.ack | TcpFlag.fin)) !== TcpFlag.syn) return this.reset(endpoints, segment);
    const host = this.hostAddressFor(ip.dst);
    if (host === null || segment.dstPort === 0 || segment.srcPort === 0) {
      this.link.diagnostics.count('tcp-unreachable-destination');
      return this.reset(endpoints, segment);
    }
    if (this.connections.size >= MAX_CONNECTIONS) {
      this.link.diagnostics.drop('tcp-too-many-connections', `${MAX_CONNECTIONS} open`);
      return this.reset(endpoints, segment);
    }
    const connection = TcpConnection.fromGuestSyn(key, endpoints, this.link, segment, { host, port: segment.dstPort }, (c) => this.release(c));
    this.connections.set(key, connection);
  }

  /** Where a guest connection to `dst` goes on the host; null for addresses nobody answers. */
  private hostAddressFor(dst: Ipv4): string | null {
    if (dst === GATEWAY) return formatIpv4(HOST_LOOPBACK);
    if (inVirtualNetwork(dst)) return null; // 10.0.2.3 has no TCP service; other addresses are nobody
    const first = dst >>> 24;
    if (first === 0 || first === 127 || first >= 224) return null; // unspecified, loopback, multicast, reserved
    return formatIpv4(dst);
  }

  /** RFC 9293's reply to a segment for no connection. */
  private reset(endpoints: TcpEndpoints, segment: TcpSegment): void {
    const acking = (segment.flags & TcpFlag.ack) !== 0;
    const rst: OutgoingSegment = {
      srcPort: endpoints.remotePort,
      dstPort: endpoints.guestPort,
      seq: acking ? segment.ack : 0,
      ack: acking ? 0 : seqAdd(segment.seq, segmentLength(segment)),
      flags: acking ? TcpFlag.rst : TcpFlag.rst | TcpFlag.ack,
      window: 0,
    };
    this.link.sendIpv4(endpoints.remoteIp, endpoints.guestIp, PROTO_TCP, buildTcp(endpoints.remoteIp, endpoints.guestIp, rst));
  }

  private release(connection: TcpConnection): void {
    if (this.connections.get(connection.key) === connection) this.connections.delete(connection.key);
  }

  private listen(forward: HostForward): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.acceptForwarded(forward, socket));
    this.servers.push({ server, forward });
    const name = `hostfwd=tcp:${forward.hostAddress}:${forward.hostPort}-${formatIpv4(forward.guestAddress)}:${forward.guestPort}`;
    return new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        const message = `--net user: ${name}: cannot listen on ${forward.hostAddress}:${forward.hostPort}: ${e.code ?? e.message}`;
        this.link.diagnostics.note(message);
        reject(new HostForwardError(message));
      });
      server.listen(forward.hostPort, forward.hostAddress, () => {
        server.on('error', (e) => this.link.diagnostics.note(`${name}: ${e.message}`));
        resolve();
      });
    });
  }

  private acceptForwarded(forward: HostForward, socket: net.Socket): void {
    if (this.closed || this.connections.size >= MAX_CONNECTIONS) {
      this.link.diagnostics.count('tcp-forward-rejected');
      socket.destroy();
      return;
    }
    const remotePort = this.allocatePort(forward.guestAddress, forward.guestPort);
    if (remotePort === null) {
      this.link.diagnostics.count('tcp-forward-no-port');
      socket.destroy();
      return;
    }
    const endpoints: TcpEndpoints = { guestIp: forward.guestAddress, guestPort: forward.guestPort, remoteIp: GATEWAY, remotePort };
    const key = connectionKey(endpoints.guestIp, endpoints.guestPort, GATEWAY, remotePort);
    this.connections.set(key, TcpConnection.toGuest(key, endpoints, this.link, socket, (c) => this.release(c)));
  }

  /** A source port on 10.0.2.2 not in use towards this guest address and port. */
  private allocatePort(guestIp: Ipv4, guestPort: number): number | null {
    for (let i = 0; i < EPHEMERAL_COUNT; i++) {
      const port = EPHEMERAL_FIRST + ((this.nextEphemeral + i) % EPHEMERAL_COUNT);
      if (!this.connections.has(connectionKey(guestIp, guestPort, GATEWAY, port))) {
        this.nextEphemeral = (this.nextEphemeral + i + 1) % EPHEMERAL_COUNT;
        return port;
      }
    }
    return null;
  }

  private sweepIdle(): void {
    const now = performance.now();
    for (const connection of [...this.connections.values()]) {
      const limit = IDLE_LIMIT_MS[connection.state];
      if (limit !== undefined && now - connection.lastActivity > limit) {
        this.link.diagnostics.count('tcp-idle-timeout');
        connection.abort(true);
      }
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const { server } of this.servers) server.close();
    for (const connection of this.connections.values()) connection.destroy();
    this.connections.clear();
  }
}
