/**
 * A DHCP server (RFC 2131/2132) for a network with exactly one guest: it always leases
 * 10.0.2.15 with the gateway, netmask and DNS server of the user-mode network.
 */
import { DNS_SERVER, GATEWAY, GUEST_ADDRESS, LIMITED_BROADCAST, NETMASK, SUBNET_BROADCAST, readIpv4, writeIpv4, type Ipv4 } from './address.js';

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
export const LEASE_SECONDS = 86400;

const MAGIC_COOKIE = 0x63825363;
const OPTIONS_OFFSET = 240;
/** BOOTP's minimum message size; some clients ignore shorter replies. */
const MIN_REPLY = 300;

export const DhcpMessage = { discover: 1, offer: 2, request: 3, decline: 4, ack: 5, nak: 6, release: 7, inform: 8 } as const;

export const DhcpOption = {
  pad: 0, subnetMask: 1, router: 3, dnsServers: 6, broadcastAddress: 28, requestedAddress: 50,
  leaseTime: 51, messageType: 53, serverId: 54, renewalTime: 58, rebindingTime: 59, end: 255,
} as const;

/** The options of a DHCP message, by code (the last occurrence wins). */
export function parseDhcpOptions(bytes: Uint8Array, start: number): Map<number, Uint8Array> | null {
  const options = new Map<number, Uint8Array>();
  let i = start;
  while (i < bytes.length) {
    const code = bytes[i++];
    if (code === DhcpOption.pad) continue;
    if (code === DhcpOption.end) return options;
    if (i >= bytes.length) return null;
    const length = bytes[i++];
    if (i + length > bytes.length) return null;
    options.set(code, bytes.subarray(i, i + length));
    i += length;
  }
  return options; // no END option: accept what was there
}

export interface DhcpReply {
  /** Where the reply goes: the limited broadcast, or the client's address when it has one. */
  dst: Ipv4;
  payload: Uint8Array;
}

export class DhcpServer {
  /** Answers one client message; null when no reply is due (RELEASE, DECLINE, another server's REQUEST). */
  handle(request: Uint8Array): DhcpReply | null | string {
    if (request.length < OPTIONS_OFFSET) return 'dhcp-short';
    if (request[0] !== 1) return 'dhcp-not-request';
    if (request[1] !== 1 || request[2] !== 6) return 'dhcp-not-ethernet';
    if (readIpv4(request, 236) !== MAGIC_COOKIE) return 'dhcp-no-magic-cookie';
    const options = parseDhcpOptions(request, OPTIONS_OFFSET);
    if (!options) return 'dhcp-options-malformed';
    const type = options.get(DhcpOption.messageType);
    if (!type || type.length !== 1) return 'dhcp-no-message-type';
    const clientAddress = readIpv4(request, 12);

    switch (type[0]) {
      case DhcpMessage.discover:
        return this.reply(request, DhcpMessage.offer, GUEST_ADDRESS, true);
      case DhcpMessage.request: {
        const serverId = options.get(DhcpOption.serverId);
        if (serverId && (serverId.length !== 4 || readIpv4(serverId, 0) !== GATEWAY)) return null; // chose another server
        const asked = options.get(DhcpOption.requestedAddress);
        const wanted = asked && asked.length === 4 ? readIpv4(asked, 0) : clientAddress;
        if (wanted !== GUEST_ADDRESS) return this.reply(request, DhcpMessage.nak, 0, false);
        return this.reply(request, DhcpMessage.ack, GUEST_ADDRESS, true);
      }
      case DhcpMessage.inform:
        return this.reply(request, DhcpMessage.ack, 0, false);
      case DhcpMessage.decline:
      case DhcpMessage.release:
        return null;
      default:
        return 'dhcp-message-type';
    }
  }

  private reply(request: Uint8Array, type: number, yourAddress: Ipv4, withLease: boolean): DhcpReply {
    const opts: number[] = [DhcpOption.messageType, 1, type, DhcpOption.serverId, 4, ...octets(GATEWAY)];
    if (type !== DhcpMessage.nak) {
      opts.push(DhcpOption.subnetMask, 4, ...octets(NETMASK));
      opts.push(DhcpOption.router, 4, ...octets(GATEWAY));
      opts.push(DhcpOption.dnsServers, 4, ...octets(DNS_SERVER));
      opts.push(DhcpOption.broadcastAddress, 4, ...octets(SUBNET_BROADCAST));
    }
    if (withLease) {
      opts.push(DhcpOption.leaseTime, 4, ...octets(LEASE_SECONDS));
      opts.push(DhcpOption.renewalTime, 4, ...octets(LEASE_SECONDS / 2));
      opts.push(DhcpOption.rebindingTime, 4, ...octets((LEASE_SECONDS * 7) / 8));
    }
    opts.push(DhcpOption.end);
    const payload = new Uint8Array(Math.max(MIN_REPLY, OPTIONS_OFFSET + opts.length));
    payload[0] = 2; // BOOTREPLY
    payload[1] = 1;
    payload[2] = 6;
    payload.set(request.subarray(4, 8), 4); // xid
    payload.set(request.subarray(10, 12), 10); // flags
    const clientAddress = readIpv4(request, 12);
    if (type !== DhcpMessage.nak) writeIpv4(payload, 12, clientAddress);
    writeIpv4(payload, 16, yourAddress);
    if (type !== DhcpMessage.nak) writeIpv4(payload, 20, GATEWAY);
    payload.set(request.subarray(24, 44), 24); // giaddr, chaddr
    writeIpv4(payload, 236, MAGIC_COOKIE);
    payload.set(opts, OPTIONS_OFFSET);
    // A client that already has an address gets the reply unicast; one that has none, broadcast.
    const dst = clientAddress !== 0 && type !== DhcpMessage.nak ? clientAddress : LIMITED_BROADCAST;
    return { dst, payload };
  }
}

function octets(value: number): number[] {
  return [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
}
