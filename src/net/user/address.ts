/**
 * IPv4 and MAC addresses of the user-mode network. IPv4 addresses are handled as unsigned 32-bit
 * numbers (network byte order read big-endian), which makes them cheap map keys and comparisons.
 */

export type Ipv4 = number;

/** Parses dotted-quad text ("10.0.2.15"); null if it is not exactly four decimal octets. */
export function parseIpv4(text: string): Ipv4 | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const octet = Number(p);
    if (octet > 255) return null;
    value = value * 256 + octet;
  }
  return value >>> 0;
}

export function formatIpv4(ip: Ipv4): string {
  return `${ip >>> 24}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}`;
}

export function readIpv4(bytes: Uint8Array, offset: number): Ipv4 {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]) >>> 0;
}

export function writeIpv4(bytes: Uint8Array, offset: number, ip: Ipv4): void {
  bytes[offset] = ip >>> 24;
  bytes[offset + 1] = ip >>> 16;
  bytes[offset + 2] = ip >>> 8;
  bytes[offset + 3] = ip;
}

export type Mac = Uint8Array;

export const BROADCAST_MAC: Mac = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

export function formatMac(mac: Mac): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/**
 * The MAC address the stack answers with for one of its own IPv4 addresses: 52:55 followed by
 * the address, as QEMU's slirp does (so the gateway 10.0.2.2 is 52:55:0a:00:02:02).
 */
export function virtualMac(ip: Ipv4): Mac {
  const mac = new Uint8Array(6);
  mac[0] = 0x52;
  mac[1] = 0x55;
  writeIpv4(mac, 2, ip);
  return mac;
}

/** The addresses of QEMU's slirp defaults, which the user-mode network keeps. */
export const NETWORK: Ipv4 = parseIpv4('10.0.2.0')!;
export const NETMASK: Ipv4 = parseIpv4('255.255.255.0')!;
export const GATEWAY: Ipv4 = parseIpv4('10.0.2.2')!;
export const DNS_SERVER: Ipv4 = parseIpv4('10.0.2.3')!;
export const GUEST_ADDRESS: Ipv4 = parseIpv4('10.0.2.15')!;
export const SUBNET_BROADCAST: Ipv4 = (NETWORK | ~NETMASK) >>> 0;
export const LIMITED_BROADCAST: Ipv4 = 0xffffffff;
export const HOST_LOOPBACK: Ipv4 = parseIpv4('127.0.0.1')!;

export function inVirtualNetwork(ip: Ipv4): boolean {
  return ((ip & NETMASK) >>> 0) === NETWORK;
}
