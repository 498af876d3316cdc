/** IPv4 packets (RFC 791): header validation on the way in, a plain 20-byte header on the way out. */
import { readIpv4, writeIpv4, type Ipv4 } from './address.js';
import { internetChecksum } from './checksum.js';

export const IPV4_HEADER = 20;
export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;

export interface Ipv4Packet {
  src: Ipv4;
  dst: Ipv4;
  protocol: number;
  ttl: number;
  /** The transport payload, trimmed to the header's total length (Ethernet padding removed). */
  payload: Uint8Array;
}

/** Validates a packet from the guest; returns a drop reason for anything the stack does not take. */
export function parseIpv4Packet(bytes: Uint8Array): Ipv4Packet | string {
  if (bytes.length < IPV4_HEADER) return 'ipv4-short';
  const version = bytes[0] >>> 4;
  if (version !== 4) return 'ipv4-version';
  const headerLength = (bytes[0] & 0x0f) * 4;
  if (headerLength < IPV4_HEADER || headerLength > bytes.length) return 'ipv4-header-length';
  const totalLength = (bytes[2] << 8) | bytes[3];
  if (totalLength < headerLength || totalLength > bytes.length) return 'ipv4-total-length';
  if (internetChecksum(bytes, 0, headerLength) !== 0) return 'ipv4-checksum';
  const flagsFragment = (bytes[6] << 8) | bytes[7];
  const moreFragments = (flagsFragment & 0x2000) !== 0;
  if (moreFragments || (flagsFragment & 0x1fff) !== 0) return 'ipv4-fragment';
  return {
    src: readIpv4(bytes, 12),
    dst: readIpv4(bytes, 16),
    protocol: bytes[9],
    ttl: bytes[8],
    payload: bytes.subarray(headerLength, totalLength),
  };
}

/** Builds a packet with a 20-byte header, DF set, TTL 64. */
export function buildIpv4Packet(src: Ipv4, dst: Ipv4, protocol: number, id: number, payload: Uint8Array): Uint8Array {
  const packet = new Uint8Array(IPV4_HEADER + payload.length);
  writeIpv4Header(packet, 0, src, dst, protocol, id, packet.length);
  packet.set(payload, IPV4_HEADER);
  return packet;
}

/** Writes a 20-byte header (DF set, TTL 64) at `at` for a packet of `total` bytes. */
export function writeIpv4Header(bytes: Uint8Array, at: number, src: Ipv4, dst: Ipv4, protocol: number, id: number, total: number): void {
  bytes[at] = 0x45;
  bytes[at + 1] = 0;
  bytes[at + 2] = total >>> 8;
  bytes[at + 3] = total;
  bytes[at + 4] = id >>> 8;
  bytes[at + 5] = id;
  bytes[at + 6] = 0x40; // don't fragment
  bytes[at + 7] = 0;
  bytes[at + 8] = 64;
  bytes[at + 9] = protocol;
  bytes[at + 10] = 0;
  bytes[at + 11] = 0;
  writeIpv4(bytes, at + 12, src);
  writeIpv4(bytes, at + 16, dst);
  const sum = internetChecksum(bytes, at, at + IPV4_HEADER);
  bytes[at + 10] = sum >>> 8;
  bytes[at + 11] = sum;
}
