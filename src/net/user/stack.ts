/**
 * The user-mode network: a small TCP/IP stack that plays router, DHCP server and DNS server for
 * one guest and turns the guest's connections into ordinary host sockets (like QEMU's slirp).
 * Every guest frame is validated; anything malformed is dropped and counted, never thrown.
 */
import { MAX_TSO_FRAME, NO_GUEST_OFFLOADS, type FrameOffload, type GuestOffloads, type NetBackend } from '../backend.js';
import {
  BROADCAST_MAC, DNS_SERVER, GATEWAY, LIMITED_BROADCAST, SUBNET_BROADCAST, formatIpv4, inVirtualNetwork, virtualMac,
  type Ipv4, type Mac,
} from './address.js';
import { ARP_REPLY, ARP_REQUEST, buildArp, parseArp } from './arp.js';
import { DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DhcpServer } from './dhcp.js';
import { Diagnostics, stderrLogger, type Logger } from './diagnostics.js';
import { DnsServer } from './dns.js';
import { ETHERNET_HEADER, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, buildEthernet, parseEthernet, writeEthernetHeader } from './ethernet.js';
import type { GuestLink } from './guest-link.js';
import { echoReply } from './icmp.js';
import { IPV4_HEADER, PROTO_ICMP, PROTO_TCP, PROTO_UDP, buildIpv4Packet, parseIpv4Packet, writeIpv4Header, type Ipv4Packet } from './ipv4.js';
import type { UserNetOptions } from './options.js';
import { TcpNat, type ForwardAddress } from './tcp.js';
import { TCP_CHECKSUM_OFFSET, tcpHeaderLength, writeTcpHeader, type OutgoingSegment } from './tcp-segment.js';
import { buildUdp, parseUdp } from './udp.js';
import { UdpNat } from './udp-nat.js';

const DNS_PORT = 53;

export interface UserNetworkHooks {
  /** Where the stack's one-line notes go (default: stderr, prefixed "vessel: net user:"). */
  log?: Logger;
}

export class UserNetwork implements NetBackend, GuestLink {
  readonly name = 'user';
  /** Takes and makes offloaded frames: checksums left partial, TCP segments up to 64 KiB (unless `offloads=off`). */
  readonly offloads: boolean;
  readonly diagnostics: Diagnostics;
  private receive: ((frame: Uint8Array, offload?: FrameOffload) => void) | null = null;
  private offloadsOfGuest: () => GuestOffloads = () => NO_GUEST_OFFLOADS;
  private closed = false;
  /** Learned from the guest's frames; frames for the guest wait for it. */
  private guestMac: Mac | null = null;
  private guestIp: Ipv4 = 0;
  private ipId = 0;
  private readonly dhcp = new DhcpServer();
  private readonly dns = new DnsServer();
  private readonly tcp: TcpNat;
  private readonly udp: UdpNat;
  /** Frames for the guest, delivered after the current call stack so send() never re-enters the device. */
  private outbox: { frame: Uint8Array; offload?: FrameOffload }[] = [];
  private flushQueued = false;

  constructor(readonly options: UserNetOptions, hooks: UserNetworkHooks = {}) {
    this.diagnostics = new Diagnostics(hooks.log ?? stderrLogger);
    this.offloads = options.offloads;
    this.tcp = new TcpNat(this, options.hostForwards);
    this.udp = new UdpNat(this);
  }

  /** Settles once every hostfwd port listens; rejects with HostForwardError (e.g. port in use). */
  get listening(): Promise<void> {
    return this.tcp.listening;
  }

  /** The forwarded host ports as bound (a hostfwd with host port 0 gets a free port). */
  forwardAddresses(): ForwardAddress[] {
    return this.tcp.forwardAddresses();
  }

  /** Open TCP connections and UDP flows (for tests and diagnostics). */
  get openConnections(): { tcp: number; udp: number } {
    return { tcp: this.tcp.connectionCount, udp: this.udp.flowCount };
  }

  attach(receive: (frame: Uint8Array, offload?: FrameOffload) => void, guestOffloads?: () => GuestOffloads): void {
    this.receive = receive;
    this.offloadsOfGuest = guestOffloads ?? (() => NO_GUEST_OFFLOADS);
    this.scheduleFlush();
  }

  guestOffloads(): GuestOffloads {
    return this.offloadsOfGuest();
  }

  send(frame: Uint8Array, offload?: FrameOffload): void {
    if (this.closed) return;
    try {
      this.handleFrame(frame, offload);
    } catch (e) {
      // A bug in the stack must not take the VM down: count it, log its first occurrence.
      this.diagnostics.drop('internal-error', (e as Error).stack ?? String(e));
    }
  }

  close(): void {
    this.closed = true;
    this.outbox = [];
    this.tcp.close();
    this.udp.close();
  }

  /** Counters of dropped frames and notable events, by kind. */
  stats(): Record<string, number> {
    return this.diagnostics.snapshot();
  }

  // ------------------------------------------------------------------ output

  sendIpv4(src: Ipv4, dst: Ipv4, protocol: number, payload: Uint8Array): void {
    const dstMac = this.macFor(dst);
    if (!dstMac) return;
    const packet = buildIpv4Packet(src, dst, protocol, this.nextIpId(), payload);
    this.queue(buildEthernet(dstMac, virtualMac(src), ETHERTYPE_IPV4, packet));
  }

  sendTcp(src: Ipv4, dst: Ipv4, segment: OutgoingSegment, segmentSize?: number): void {
    const dstMac = this.macFor(dst);
    if (!dstMac) return;
    const offloads = this.offloadsOfGuest();
    const payload = segment.payload;
    const tcpStart = ETHERNET_HEADER + IPV4_HEADER;
    const headerLength = tcpHeaderLength(segment);
    const frame = new Uint8Array(tcpStart + headerLength + (payload?.length ?? 0));
    if (payload) frame.set(payload, tcpStart + headerLength);
    writeEthernetHeader(frame, dstMac, virtualMac(src), ETHERTYPE_IPV4);
    writeIpv4Header(frame, ETHERNET_HEADER, src, dst, PROTO_TCP, this.nextIpId(), frame.length - ETHERNET_HEADER);
    writeTcpHeader(frame, tcpStart, src, dst, segment, offloads.checksum);
    if (!offloads.checksum) return this.queue(frame);
    const offload: FrameOffload = { checksum: { start: tcpStart, offset: TCP_CHECKSUM_OFFSET } };
    if (segmentSize !== undefined && payload && payload.length > segmentSize && offloads.tcp4Segmentation) offload.tcp4SegmentSize = segmentSize;
    this.queue(frame, offload);
  }

  /** The guest's MAC for a frame to `dst`, or null (counted, and the guest asked) while it is unknown. */
  private macFor(dst: Ipv4): Mac | null {
    if (this.closed) return null;
    if (dst === LIMITED_BROADCAST || dst === SUBNET_BROADCAST) return BROADCAST_MAC;
    if (this.guestMac) return this.guestMac;
    this.diagnostics.drop('to-guest-mac-unknown', `for ${formatIpv4(dst)}`);
    this.requestGuestMac(dst);
    return null;
  }

  private nextIpId(): number {
    this.ipId = (this.ipId + 1) & 0xffff;
    return this.ipId;
  }

  sendUdp(src: Ipv4, dst: Ipv4, srcPort: number, dstPort: number, payload: Uint8Array): void {
    this.sendIpv4(src, dst, PROTO_UDP, buildUdp(src, dst, srcPort, dstPort, payload));
  }

  /** Asks who has `ip`, so a later frame for the guest knows where to go. */
  private requestGuestMac(ip: Ipv4): void {
    if (!inVirtualNetwork(ip)) return;
    const arp = buildArp({ operation: ARP_REQUEST, senderMac: virtualMac(GATEWAY), senderIp: GATEWAY, targetMac: new Uint8Array(6), targetIp: ip });
    this.queue(buildEthernet(BROADCAST_MAC, virtualMac(GATEWAY), ETHERTYPE_ARP, arp));
  }

  private queue(frame: Uint8Array, offload?: FrameOffload): void {
    this.outbox.push(offload ? { frame, offload } : { frame });
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushQueued || this.outbox.length === 0 || !this.receive) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      const frames = this.outbox;
      this.outbox = [];
      const receive = this.receive;
      if (this.closed || !receive) return;
      for (const f of frames) {
        if (f.offload) receive(f.frame, f.offload);
        else receive(f.frame);
      }
    });
  }

  // ------------------------------------------------------------------ input

  private handleFrame(frame: Uint8Array, offload: FrameOffload | undefined): void {
    const eth = parseEthernet(frame, offload?.tcp4SegmentSize ? MAX_TSO_FRAME : undefined);
    if (typeof eth === 'string') return this.diagnostics.drop(eth, `${frame.length} bytes`);
    if ((eth.src[0] & 1) !== 0) return this.diagnostics.drop('ethernet-multicast-source');
    switch (eth.etherType) {
      case ETHERTYPE_ARP:
        return this.handleArp(eth.payload);
      case ETHERTYPE_IPV4:
        this.learnGuestMac(eth.src);
        return this.handleIpv4(eth.payload, eth.src, offload !== undefined && offload.checksum !== undefined);
      case ETHERTYPE_IPV6:
        // Linux solicits IPv6 routers on every interface it brings up: expected, so only counted.
        return this.diagnostics.count('ipv6-ignored');
      default:
        return this.diagnostics.drop('ethernet-type', `0x${eth.etherType.toString(16).padStart(4, '0')}`);
    }
  }

  private learnGuestMac(mac: Mac): void {
    if (!this.guestMac || !this.guestMac.every((b, i) => b === mac[i])) this.guestMac = mac.slice();
  }

  /** True for the addresses the stack itself answers on (gateway/host alias and DNS). */
  private isStackAddress(ip: Ipv4): boolean {
    return ip === GATEWAY || ip === DNS_SERVER;
  }

  private handleArp(bytes: Uint8Array): void {
    const arp = parseArp(bytes);
    if (typeof arp === 'string') return this.diagnostics.drop(arp);
    if ((arp.senderMac[0] & 1) !== 0) return this.diagnostics.drop('arp-multicast-sender');
    this.learnGuestMac(arp.senderMac);
    if (arp.senderIp !== 0) this.guestIp = arp.senderIp;
    if (arp.operation !== ARP_REQUEST) return;
    if (!this.isStackAddress(arp.targetIp)) return; // the guest probing its own or another address
    const reply = buildArp({ operation: ARP_REPLY, senderMac: virtualMac(arp.targetIp), senderIp: arp.targetIp, targetMac: arp.senderMac, targetIp: arp.senderIp });
    this.queue(buildEthernet(arp.senderMac, virtualMac(arp.targetIp), ETHERTYPE_ARP, reply));
  }

  /** `partialChecksum`: the guest left the TCP or UDP checksum to the device (there is no wire to check it against). */
  private handleIpv4(bytes: Uint8Array, srcMac: Mac, partialChecksum: boolean): void {
    const ip = parseIpv4Packet(bytes);
    if (typeof ip === 'string') return this.diagnostics.drop(ip);
    if (ip.src !== 0 && ip.src !== LIMITED_BROADCAST) this.guestIp = ip.src;
    switch (ip.protocol) {
      case PROTO_ICMP:
        return this.handleIcmp(ip);
      case PROTO_UDP:
        return this.handleUdp(ip, srcMac, partialChecksum);
      case PROTO_TCP:
        if (!this.isGuestSource(ip.src)) return this.diagnostics.drop('tcp-bad-source', formatIpv4(ip.src));
        return this.tcp.onPacket(ip, partialChecksum);
      default:
        return this.diagnostics.drop('ipv4-protocol', `protocol ${ip.protocol}`);
    }
  }

  private handleIcmp(ip: Ipv4Packet): void {
    if (!this.isStackAddress(ip.dst)) return this.diagnostics.drop('icmp-not-for-stack', `to ${formatIpv4(ip.dst)}`);
    const reply = echoReply(ip.payload);
    if (typeof reply === 'string') return this.diagnostics.drop(reply);
    this.sendIpv4(ip.dst, ip.src, PROTO_ICMP, reply);
  }

  private handleUdp(ip: Ipv4Packet, srcMac: Mac, partialChecksum: boolean): void {
    const udp = parseUdp(ip.src, ip.dst, ip.payload, !partialChecksum);
    if (typeof udp === 'string') return this.diagnostics.drop(udp);
    if (udp.dstPort === DHCP_SERVER_PORT && (ip.dst === LIMITED_BROADCAST || ip.dst === GATEWAY || ip.dst === SUBNET_BROADCAST)) {
      const reply = this.dhcp.handle(udp.payload);
      if (typeof reply === 'string') return this.diagnostics.drop(reply);
      if (!reply) return;
      this.learnGuestMac(srcMac);
      return this.sendUdp(GATEWAY, reply.dst, DHCP_SERVER_PORT, DHCP_CLIENT_PORT, reply.payload);
    }
    if (!this.isGuestSource(ip.src)) return this.diagnostics.drop('udp-bad-source', formatIpv4(ip.src));
    if (ip.dst === DNS_SERVER) {
      if (udp.dstPort !== DNS_PORT) return this.diagnostics.drop('udp-dns-server-port', `port ${udp.dstPort}`);
      const { srcPort } = udp;
      const query = udp.payload.slice(); // the frame may be reused once send() returns
      void this.dns.answer(query).then((reply) => {
        if (typeof reply === 'string') return this.diagnostics.drop(reply);
        this.sendUdp(DNS_SERVER, ip.src, DNS_PORT, srcPort, reply);
      }, (e: Error) => this.diagnostics.drop('internal-error', e.stack ?? String(e)));
      return;
    }
    if (ip.dst === LIMITED_BROADCAST || ip.dst === SUBNET_BROADCAST) return this.diagnostics.drop('udp-broadcast', `port ${udp.dstPort}`);
    this.udp.onDatagram(ip.src, ip.dst, { srcPort: udp.srcPort, dstPort: udp.dstPort, payload: udp.payload.slice() });
  }

  /** A unicast source a reply can go back to. */
  private isGuestSource(ip: Ipv4): boolean {
    const first = ip >>> 24;
    return ip !== 0 && first !== 127 && first < 224 && ip !== SUBNET_BROADCAST && !this.isStackAddress(ip);
  }
}
