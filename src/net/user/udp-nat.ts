/**
 * UDP NAT: each guest flow (guest address and port to a destination address and port) gets its
 * own host datagram socket; replies from that destination go back to the guest. Flows close
 * after a minute without traffic.
 */
import * as dgram from 'node:dgram';

import { GATEWAY, HOST_LOOPBACK, formatIpv4, inVirtualNetwork, type Ipv4 } from './address.js';
import { MTU } from './ethernet.js';
import type { GuestLink } from './guest-link.js';
import { IPV4_HEADER } from './ipv4.js';
import { UDP_HEADER, type UdpDatagram } from './udp.js';

const FLOW_IDLE_MS = 60_000;
const SWEEP_INTERVAL_MS = 10_000;
/** Host sockets are a finite resource; past this many flows new ones are dropped. */
const MAX_FLOWS = 256;
/** Largest datagram that fits one frame (the stack does not fragment). */
const MAX_PAYLOAD = MTU - IPV4_HEADER - UDP_HEADER;

interface Flow {
  socket: dgram.Socket;
  lastActivity: number;
}

export class UdpNat {
  private readonly flows = new Map<string, Flow>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly link: GuestLink) {
    this.sweeper = setInterval(() => this.sweepIdle(), SWEEP_INTERVAL_MS).unref();
  }

  get flowCount(): number {
    return this.flows.size;
  }

  onDatagram(src: Ipv4, dst: Ipv4, udp: UdpDatagram): void {
    const host = this.hostAddressFor(dst);
    if (host === null || udp.dstPort === 0) return this.link.diagnostics.drop('udp-unreachable-destination', `to ${formatIpv4(dst)}:${udp.dstPort}`);
    const key = `${src}:${udp.srcPort}>${dst}:${udp.dstPort}`;
    let flow = this.flows.get(key);
    if (!flow) {
      if (this.flows.size >= MAX_FLOWS) return this.link.diagnostics.drop('udp-too-many-flows', `${MAX_FLOWS} open`);
      flow = this.openFlow(key, src, udp.srcPort, dst, udp.dstPort, host);
    }
    flow.lastActivity = performance.now();
    flow.socket.send(udp.payload, udp.dstPort, host);
  }

  private openFlow(key: string, guestIp: Ipv4, guestPort: number, remoteIp: Ipv4, remotePort: number, host: string): Flow {
    const socket = dgram.createSocket('udp4');
    const flow: Flow = { socket, lastActivity: performance.now() };
    socket.on('message', (message, from) => {
      // Only the destination's replies pass, as through a port-restricted NAT.
      if (from.address !== host || from.port !== remotePort) return this.link.diagnostics.drop('udp-reply-from-stranger');
      if (message.length > MAX_PAYLOAD) return this.link.diagnostics.drop('udp-reply-too-large', `${message.length} bytes`);
      flow.lastActivity = performance.now();
      this.link.sendUdp(remoteIp, guestIp, remotePort, guestPort, message);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => this.link.diagnostics.count(`udp-host-${e.code ?? 'error'}`));
    this.flows.set(key, flow);
    return flow;
  }

  private hostAddressFor(dst: Ipv4): string | null {
    if (dst === GATEWAY) return formatIpv4(HOST_LOOPBACK);
    if (inVirtualNetwork(dst)) return null;
    const first = dst >>> 24;
    if (first === 0 || first === 127 || first >= 224) return null;
    return formatIpv4(dst);
  }

  private sweepIdle(): void {
    const now = performance.now();
    for (const [key, flow] of this.flows) {
      if (now - flow.lastActivity > FLOW_IDLE_MS) {
        flow.socket.close();
        this.flows.delete(key);
      }
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const flow of this.flows.values()) flow.socket.close();
    this.flows.clear();
  }
}
