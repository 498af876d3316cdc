/** Ethernet II framing (no FCS, no VLAN tags: a tagged frame is simply an unknown EtherType). */
import { MAX_ETHERNET_FRAME } from '../backend.js';
import type { Mac } from './address.js';

export const ETHERNET_HEADER = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
/** Largest IPv4 packet in one frame (the MTU). */
export const MTU = MAX_ETHERNET_FRAME - ETHERNET_HEADER;

export interface EthernetFrame {
  dst: Mac;
  src: Mac;
  etherType: number;
  payload: Uint8Array;
}

/** `limit` is larger than an MTU's frame for a TCP segment the guest left to the device to cut (TSO). */
export function parseEthernet(frame: Uint8Array, limit = MAX_ETHERNET_FRAME): EthernetFrame | string {
  if (frame.length < ETHERNET_HEADER) return 'ethernet-short';
  if (frame.length > limit) return 'ethernet-oversized';
  return {
    dst: frame.subarray(0, 6),
    src: frame.subarray(6, 12),
    etherType: (frame[12] << 8) | frame[13],
    payload: frame.subarray(ETHERNET_HEADER),
  };
}

export function buildEthernet(dst: Mac, src: Mac, etherType: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(ETHERNET_HEADER + payload.length);
  writeEthernetHeader(frame, dst, src, etherType);
  frame.set(payload, ETHERNET_HEADER);
  return frame;
}

/** Writes the 14-byte header at the start of `frame`. */
export function writeEthernetHeader(frame: Uint8Array, dst: Mac, src: Mac, etherType: number): void {
  frame.set(dst, 0);
  frame.set(src, 6);
  frame[12] = etherType >>> 8;
  frame[13] = etherType;
}

export function isMulticastMac(mac: Mac): boolean {
  return (mac[0] & 1) !== 0;
}
