/**
 * The user-mode network: a small TCP/IP stack that plays router, DHCP server and DNS server for
 * one guest and turns the guest's connections into ordinary host sockets (like QEMU's slirp).
 * Every guest frame is validated; anything malformed is dropped and counted, never thrown.
 */
import type { NetBackend } from '../backend.js';
import {
  BROADCAST_MAC, DNS_SERVER, GATEWAY, LIMITED_BROADCAST, SUBNET_BROADCAST, formatIpv4, inVirtualNetwork, virtualMac,
  type Ipv4, type Mac,
} from './address.js';
import { ARP_REPLY, ARP_REQUEST, buildArp, parseArp } from './arp.js';
import { DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DhcpServer } from './dhcp.js';
import { Diagnostics, stderrLogger, type Logger } from './diagnostics.js';
import { DnsServer } from './dns.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, buildEthernet, parseEthernet } from './ethernet.js';
import type { GuestLink } from './guest-link.js';
import { echoReply } from './icmp.js';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP, buildIpv4Packet, parseIpv4Packet, type Ipv4Packet } from './ipv4.js';
import type { UserNetOptions } from './options.js';
import { TcpNat, type ForwardAddress } from './tcp.js';
import { buildUdp, parseUdp } from './udp.js';
import { UdpNat } from './udp-nat.js';

const DNS_PORT = 53;

export interface UserNetworkHooks {
  /** Where the stack's one-line notes go (default: stderr, prefixed "vessel: net user:"). */
  log?: Logger;
}

export class UserNetwork implements NetBackend, GuestLink {
  readonly name = 'user';
  readonly diagnostics: Diagnostics;
  private receive: ((frame: Uint8Array) => void) | null = null;
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
  private outbox: Uint8Array[] = [];
  private flushQueued = false;

  constructor(readonly options: UserNetOptions, hooks: UserNetworkHooks = {}) {
    this.diagnostics = new Diagnostics(hooks.log ?? stderrLogger);
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

  attach(receive: (frame: Uint8Array) => void): void {
    this.receive = receive;
    this.scheduleFlush();
  }

  send(frame: Uint8Array): void {
    if (this.closed) return;
    try {
      this.handleFrame(frame);
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
    if (this.closed) return;
    const broadcast = dst === LIMITED_BROADCAST || dst === SUBNET_BROADCAST;
    if (!broadcast && !this.guestMac) {
      this.diagnostics.drop('to-guest-mac-unknown', `for ${formatIpv4(dst)}`);
      this.requestGuestMac(dst);
      return;
    }
    this.ipId = (this.ipId + 1) & 0xffff;
    const packet = buildIpv4Packet(src, dst, protocol, this.ipId, payload);
    const dstMac = broadcast ? BROADCAST_MAC : this.guestMac!;
    this.queue(buildEthernet(dstMac, virtualMac(src), ETHERTYPE_IPV4, packet));
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

  private queue(frame: Uint8Array): void {
    this.outbox.push(frame);
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
      for (const f of frames) receive(f);
    });
  }

  // ------------------------------------------------------------------ input

  private handleFrame(frame: Uint8Array): void {
    const eth = parseEthernet(frame);
    if (typeof eth === 'string') return this.diagnostics.drop(eth, `${frame.length} bytes`);
    if ((eth.src[0] & 1) !== 0) return this.diagnostics.drop('ethernet-multicast-source');
    switch (eth.etherType) {
      case ETHERTYPE_ARP:
        return this.handleArp(eth.payload);
      case ETHERTYPE_IPV4:
        this.learnGuestMac(eth.src);
        return this.handleIpv4(eth.payload, eth.src);
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

  private handleIpv4(bytes: Uint8Array, srcMac: Mac): void {
    const ip = parseIpv4Packet(bytes);
    if (typeof ip === 'string') return this.diagnostics.drop(ip);
    if (ip.src !== 0 && ip.src !== LIMITED_BROADCAST) this.guestIp = ip.src;
    switch (ip.protocol) {
      case PROTO_ICMP:
        return this.handleIcmp(ip);
      case PROTO_UDP:
        return this.handleUdp(ip, srcMac);
      case PROTO_TCP:
        if (!this.isGuestSource(ip.src)) return this.diagnostics.drop('tcp-bad-source', formatIpv4(ip.src));
        return this.tcp.onPacket(ip);
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

  private handleUdp(ip: Ipv4Packet, srcMac: Mac): void {
    const udp = parseUdp(ip.src, ip.dst, ip.payload);
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
