/** UDP datagrams (RFC 768) with the pseudo-header checksum. */
import type { Ipv4 } from './address.js';
import { internetChecksum, pseudoHeaderSum } from './checksum.js';
import { PROTO_UDP } from './ipv4.js';

export const UDP_HEADER = 8;

export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

/** `verifyChecksum` is false when the guest left the checksum partial (checksum offload). */
export function parseUdp(src: Ipv4, dst: Ipv4, bytes: Uint8Array, verifyChecksum = true): UdpDatagram | string {
  if (bytes.length < UDP_HEADER) return 'udp-short';
  const length = (bytes[4] << 8) | bytes[5];
  if (length < UDP_HEADER || length > bytes.length) return 'udp-length';
  const checksum = (bytes[6] << 8) | bytes[7];
  // A zero checksum means "none" over IPv4.
  if (verifyChecksum && checksum !== 0 && internetChecksum(bytes, 0, length, pseudoHeaderSum(src, dst, PROTO_UDP, length)) !== 0) return 'udp-checksum';
  return { srcPort: (bytes[0] << 8) | bytes[1], dstPort: (bytes[2] << 8) | bytes[3], payload: bytes.subarray(UDP_HEADER, length) };
}

export function buildUdp(src: Ipv4, dst: Ipv4, srcPort: number, dstPort: number, payload: Uint8Array): Uint8Array {
  const length = UDP_HEADER + payload.length;
  const bytes = new Uint8Array(length);
  bytes[0] = srcPort >>> 8;
  bytes[1] = srcPort;
  bytes[2] = dstPort >>> 8;
  bytes[3] = dstPort;
  bytes[4] = length >>> 8;
  bytes[5] = length;
  bytes.set(payload, UDP_HEADER);
  const sum = internetChecksum(bytes, 0, length, pseudoHeaderSum(src, dst, PROTO_UDP, length)) || 0xffff;
  bytes[6] = sum >>> 8;
  bytes[7] = sum;
  return bytes;
}
