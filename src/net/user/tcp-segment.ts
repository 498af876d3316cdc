/** TCP segments (RFC 9293): header and option parsing, building, and sequence-number arithmetic. */
import type { Ipv4 } from './address.js';
import { internetChecksum, pseudoHeaderSum } from './checksum.js';
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

export function parseTcp(src: Ipv4, dst: Ipv4, bytes: Uint8Array): TcpSegment | string {
  if (bytes.length < TCP_HEADER) return 'tcp-short';
  const headerLength = (bytes[12] >>> 4) * 4;
  if (headerLength < TCP_HEADER || headerLength > bytes.length) return 'tcp-header-length';
  if (internetChecksum(bytes, 0, bytes.length, pseudoHeaderSum(src, dst, PROTO_TCP, bytes.length)) !== 0) return 'tcp-checksum';
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

export function buildTcp(src: Ipv4, dst: Ipv4, segment: OutgoingSegment): Uint8Array {
  const options: number[] = [];
  if (segment.mss !== undefined) options.push(2, 4, segment.mss >>> 8, segment.mss & 0xff);
  if (segment.windowScale !== undefined) options.push(1, 3, 3, segment.windowScale);
  const headerLength = TCP_HEADER + options.length;
  const payload = segment.payload ?? new Uint8Array(0);
  const bytes = new Uint8Array(headerLength + payload.length);
  bytes[0] = segment.srcPort >>> 8;
  bytes[1] = segment.srcPort;
  bytes[2] = segment.dstPort >>> 8;
  bytes[3] = segment.dstPort;
  writeU32(bytes, 4, segment.seq);
  writeU32(bytes, 8, segment.ack);
  bytes[12] = (headerLength / 4) << 4;
  bytes[13] = segment.flags;
  bytes[14] = segment.window >>> 8;
  bytes[15] = segment.window;
  bytes.set(options, TCP_HEADER);
  bytes.set(payload, headerLength);
  const sum = internetChecksum(bytes, 0, bytes.length, pseudoHeaderSum(src, dst, PROTO_TCP, bytes.length));
  bytes[16] = sum >>> 8;
  bytes[17] = sum;
  return bytes;
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
