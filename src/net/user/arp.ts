/** ARP for IPv4 over Ethernet (RFC 826): the requests and replies the stack reads and writes. */
import { readIpv4, writeIpv4, type Ipv4, type Mac } from './address.js';

export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
const ARP_LENGTH = 28;

export interface ArpPacket {
  operation: number;
  senderMac: Mac;
  senderIp: Ipv4;
  targetMac: Mac;
  targetIp: Ipv4;
}

export function parseArp(bytes: Uint8Array): ArpPacket | string {
  if (bytes.length < ARP_LENGTH) return 'arp-short';
  const hardware = (bytes[0] << 8) | bytes[1];
  const protocol = (bytes[2] << 8) | bytes[3];
  if (hardware !== 1 || protocol !== 0x0800 || bytes[4] !== 6 || bytes[5] !== 4) return 'arp-not-ipv4-ethernet';
  const operation = (bytes[6] << 8) | bytes[7];
  if (operation !== ARP_REQUEST && operation !== ARP_REPLY) return 'arp-operation';
  return {
    operation,
    senderMac: bytes.slice(8, 14),
    senderIp: readIpv4(bytes, 14),
    targetMac: bytes.slice(18, 24),
    targetIp: readIpv4(bytes, 24),
  };
}

export function buildArp(packet: ArpPacket): Uint8Array {
  const bytes = new Uint8Array(ARP_LENGTH);
  bytes.set([0, 1, 0x08, 0x00, 6, 4, 0, packet.operation]);
  bytes.set(packet.senderMac, 8);
  writeIpv4(bytes, 14, packet.senderIp);
  bytes.set(packet.targetMac, 18);
  writeIpv4(bytes, 24, packet.targetIp);
  return bytes;
}
