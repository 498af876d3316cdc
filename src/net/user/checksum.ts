/** The Internet checksum (RFC 1071) used by IPv4, ICMP, UDP and TCP. */
import type { Ipv4 } from './address.js';

/** Adds the 16-bit big-endian words of bytes[start, end) to `sum` (an odd last byte is padded with zero). */
export function sumWords(bytes: Uint8Array, start: number, end: number, sum = 0): number {
  let i = start;
  for (; i + 1 < end; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (i < end) sum += bytes[i] << 8;
  // Fold now and then so the sum stays a small integer even for large inputs.
  return sum > 0x7fffffff ? (sum & 0xffff) + Math.floor(sum / 0x10000) : sum;
}

/** Folds a running sum to 16 bits and complements it: the value that goes into a header. */
export function finishChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

export function internetChecksum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  return finishChecksum(sumWords(bytes, start, end, initial));
}

/** The running sum of the IPv4 pseudo header that UDP and TCP checksums cover. */
export function pseudoHeaderSum(src: Ipv4, dst: Ipv4, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}
