/** What the protocol modules need from the stack: a way to send IPv4 to the guest, and counters. */
import type { GuestOffloads } from '../backend.js';
import type { Ipv4 } from './address.js';
import type { Diagnostics } from './diagnostics.js';
import type { OutgoingSegment } from './tcp-segment.js';

export interface GuestLink {
  /** Wraps `payload` (a complete transport segment) in IPv4 + Ethernet and queues it for the guest. */
  sendIpv4(src: Ipv4, dst: Ipv4, protocol: number, payload: Uint8Array): void;
  /** Builds a UDP datagram and sends it like sendIpv4. */
  sendUdp(src: Ipv4, dst: Ipv4, srcPort: number, dstPort: number, payload: Uint8Array): void;
  /**
   * Builds a TCP segment and sends it like sendIpv4, in one buffer. With `segmentSize` the
   * payload may exceed it (only when guestOffloads().tcp4Segmentation): the guest takes it as
   * segments of that size.
   */
  sendTcp(src: Ipv4, dst: Ipv4, segment: OutgoingSegment, segmentSize?: number): void;
  /** What the guest's virtio-net driver accepted. */
  guestOffloads(): GuestOffloads;
  readonly diagnostics: Diagnostics;
}
