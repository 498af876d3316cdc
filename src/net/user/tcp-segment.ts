/** TCP segments (RFC 9293): header and option parsing, building, and sequence-number arithmetic. */
import type { Ipv4 } from './address.js';
import { finishChecksum, internetChecksum, pseudoHeaderSum } from './checksum.js';
import { PROTO_TCP } from './ipv4.js';

export const TCP_HEADER = 20;
export const TcpFlag = { fin: 0x01, syn: 0x02, rst: 0x04, psh: 0x08, ack: 0x10, urg: 0x20 } as const;

/** Largest window-scale shift (RFC 7323). */
export const MAX_WINDOW_SCALE = 14;

export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  /** The raw 16-bit window field (scaling is the connection's business). */
  window: number;
  /** Options that only matter on SYN segments; null when absent. */
  mss: number | null;
  windowScale: number | null;
  payload: Uint8Array;
}

/** `verifyChecksum` is false when the guest left the checksum partial (checksum offload). */
export function parseTcp(src: Ipv4, dst: Ipv4, bytes: Uint8Array, verifyChecksum = true): TcpSegment | string {
  if (bytes.length < TCP_HEADER) return 'tcp-short';
  const headerLength = (bytes[12] >>> 4) * 4;
  if (headerLength < TCP_HEADER || headerLength > bytes.length) return 'tcp-header-length';
  if (verifyChecksum && internetChecksum(bytes, 0, bytes.length, pseudoHeaderSum(src, dst, PROTO_TCP, bytes.length)) !== 0) return 'tcp-checksum';
  const segment: TcpSegment = {
    srcPort: (bytes[0] << 8) | bytes[1],
    dstPort: (bytes[2] << 8) | bytes[3],
    seq: readU32(bytes, 4),
    ack: readU32(bytes, 8),
    flags: bytes[13] & 0x3f,
    window: (bytes[14] << 8) | bytes[15],
    mss: null,
    windowScale: null,
    payload: bytes.subarray(headerLength),
  };
  // Options: kind 0 ends the list, 1 is padding, the rest are kind, length, data. A malformed
  // list ends parsing; what was read so far stands.
  let i = TCP_HEADER;
  while (i < headerLength) {
    const kind = bytes[i];
    if (kind === 0) break;
    if (kind === 1) {
      i++;
      continue;
    }
    if (i + 1 >= headerLength) break;
    const length = bytes[i + 1];
    if (length < 2 || i + length > headerLength) break;
    if (kind === 2 && length === 4) segment.mss = (bytes[i + 2] << 8) | bytes[i + 3];
    if (kind === 3 && length === 3) segment.windowScale = Math.min(bytes[i + 2], MAX_WINDOW_SCALE);
    i += length;
  }
  return segment;
}

export interface OutgoingSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  mss?: number;
  windowScale?: number;
  payload?: Uint8Array;
}

/** Offset of the checksum field in the TCP header. */
export const TCP_CHECKSUM_OFFSET = 16;

export function buildTcp(src: Ipv4, dst: Ipv4, segment: OutgoingSegment): Uint8Array {
  const headerLength = tcpHeaderLength(segment);
  const payload = segment.payload ?? new Uint8Array(0);
  const bytes = new Uint8Array(headerLength + payload.length);
  bytes.set(payload, headerLength);
  writeTcpHeader(bytes, 0, src, dst, segment, false);
  return bytes;
}

/** The header's length with the segment's options (MSS and window scale, on a SYN). */
export function tcpHeaderLength(segment: OutgoingSegment): number {
  return TCP_HEADER + (segment.mss !== undefined ? 4 : 0) + (segment.windowScale !== undefined ? 4 : 0);
}

/**
 * Writes the header at `at`, in front of the payload already in place behind it (the segment
 * runs to the end of `bytes`). With `partialChecksum` the checksum field gets only the pseudo
 * header's sum, not complemented, as Linux leaves it for a NIC to complete (CHECKSUM_PARTIAL).
 */
export function writeTcpHeader(bytes: Uint8Array, at: number, src: Ipv4, dst: Ipv4, segment: OutgoingSegment, partialChecksum: boolean): void {
  bytes[at] = segment.srcPort >>> 8;
  bytes[at + 1] = segment.srcPort;
  bytes[at + 2] = segment.dstPort >>> 8;
  bytes[at + 3] = segment.dstPort;
  writeU32(bytes, at + 4, segment.seq);
  writeU32(bytes, at + 8, segment.ack);
  let headerLength = TCP_HEADER;
  if (segment.mss !== undefined) {
    bytes.set([2, 4, segment.mss >>> 8, segment.mss & 0xff], at + headerLength);
    headerLength += 4;
  }
  if (segment.windowScale !== undefined) {
    bytes.set([1, 3, 3, segment.windowScale], at + headerLength);
    headerLength += 4;
  }
  bytes[at + 12] = (headerLength / 4) << 4;
  bytes[at + 13] = segment.flags;
  bytes[at + 14] = segment.window >>> 8;
  bytes[at + 15] = segment.window;
  bytes[at + 18] = 0; // urgent pointer
  bytes[at + 19] = 0;
  const length = bytes.length - at;
  const pseudo = pseudoHeaderSum(src, dst, PROTO_TCP, length);
  let sum: number;
  if (partialChecksum) {
    sum = ~finishChecksum(pseudo) & 0xffff;
  } else {
    bytes[at + TCP_CHECKSUM_OFFSET] = 0;
    bytes[at + TCP_CHECKSUM_OFFSET + 1] = 0;
    sum = internetChecksum(bytes, at, bytes.length, pseudo);
  }
  bytes[at + TCP_CHECKSUM_OFFSET] = sum >>> 8;
  bytes[at + TCP_CHECKSUM_OFFSET + 1] = sum;
}

function readU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]) >>> 0;
}

function writeU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = value >>> 16;
  bytes[offset + 2] = value >>> 8;
  bytes[offset + 3] = value;
}

/** a - b in sequence space (mod 2^32), as a signed distance. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** Sequence space a segment occupies: its data plus one each for SYN and FIN. */
export function segmentLength(segment: TcpSegment): number {
  return segment.payload.length + (segment.flags & TcpFlag.syn ? 1 : 0) + (segment.flags & TcpFlag.fin ? 1 : 0);
}
