/**
 * The text after `user` in `vessel run --net user,...`: comma-separated `key=value` settings.
 * Today only QEMU's `hostfwd=[tcp]:[hostaddr]:hostport-[guestaddr]:guestport` is known.
 */
import { GATEWAY, DNS_SERVER, GUEST_ADDRESS, NETWORK, SUBNET_BROADCAST, formatIpv4, inVirtualNetwork, parseIpv4, type Ipv4 } from './address.js';

/** A malformed `--net user,...` setting; the message names the setting and what is wrong. */
export class UserNetOptionsError extends Error {
  override name = 'UserNetOptionsError';
}

/** Host `hostAddress:hostPort` forwarded to `guestAddress:guestPort` inside the guest. */
export interface HostForward {
  protocol: 'tcp';
  /** Where the host listens; "0.0.0.0" (every interface) when the setting leaves it empty, as in QEMU. */
  hostAddress: string;
  /** 0 asks the host for a free port (see UserNetwork.forwardAddresses()). */
  hostPort: number;
  guestAddress: Ipv4;
  guestPort: number;
}

export interface UserNetOptions {
  hostForwards: HostForward[];
  /**
   * Offer the guest checksum and TCP segmentation offloads (default). `offloads=off` is for a
   * guest whose driver mishandles them, and for comparing with and without them.
   */
  offloads: boolean;
}

function fail(setting: string, why: string): never {
  throw new UserNetOptionsError(`--net user: ${setting}: ${why}`);
}

function parsePort(setting: string, text: string, what: string, min: number): number {
  if (!/^\d{1,5}$/.test(text)) fail(setting, `${what} "${text}" is not a port number`);
  const port = Number(text);
  if (port < min || port > 65535) fail(setting, `${what} ${port} is out of range (${min}-65535)`);
  return port;
}

/** Splits "addr:port" at its last colon. */
function splitEndpoint(setting: string, text: string, side: string): [string, string] {
  const colon = text.lastIndexOf(':');
  if (colon < 0) fail(setting, `the ${side} side "${text}" needs the form [address]:port`);
  return [text.slice(0, colon), text.slice(colon + 1)];
}

function parseHostForward(value: string): HostForward {
  const setting = `hostfwd=${value}`;
  const firstColon = value.indexOf(':');
  if (firstColon < 0) fail(setting, 'expected [tcp]:[hostaddr]:hostport-[guestaddr]:guestport');
  const protocol = value.slice(0, firstColon) || 'tcp';
  if (protocol === 'udp') fail(setting, 'only tcp forwarding is supported');
  if (protocol !== 'tcp') fail(setting, `unknown protocol "${protocol}" (expected tcp)`);
  const sides = value.slice(firstColon + 1).split('-');
  if (sides.length !== 2) fail(setting, 'expected exactly one "-" between the host and the guest side');
  const [hostAddrText, hostPortText] = splitEndpoint(setting, sides[0], 'host');
  const [guestAddrText, guestPortText] = splitEndpoint(setting, sides[1], 'guest');

  const hostAddress = hostAddrText === '' ? '0.0.0.0' : hostAddrText;
  if (parseIpv4(hostAddress) === null) fail(setting, `host address "${hostAddrText}" is not an IPv4 address`);
  const hostPort = parsePort(setting, hostPortText, 'host port', 0);

  let guestAddress = GUEST_ADDRESS;
  if (guestAddrText !== '') {
    const ip = parseIpv4(guestAddrText);
    if (ip === null) fail(setting, `guest address "${guestAddrText}" is not an IPv4 address`);
    const reserved = [NETWORK, GATEWAY, DNS_SERVER, SUBNET_BROADCAST];
    if (!inVirtualNetwork(ip) || reserved.includes(ip)) {
      fail(setting, `guest address ${formatIpv4(ip)} is not a guest address of the 10.0.2.0/24 network (10.0.2.2 and 10.0.2.3 are the host's)`);
    }
    guestAddress = ip;
  }
  const guestPort = parsePort(setting, guestPortText, 'guest port', 1);
  return { protocol: 'tcp', hostAddress, hostPort, guestAddress, guestPort };
}

/** Parses e.g. "hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp::8080-:80" (a leading comma is fine). */
export function parseUserNetOptions(text: string): UserNetOptions {
  const options: UserNetOptions = { hostForwards: [], offloads: true };
  const settings = text.replace(/^,/, '').split(',');
  for (const setting of settings) {
    if (setting === '') {
      if (settings.length === 1) break;
      throw new UserNetOptionsError(`--net user: empty setting in "${text}"`);
    }
    const eq = setting.indexOf('=');
    const key = eq < 0 ? setting : setting.slice(0, eq);
    if (key !== 'hostfwd' && key !== 'offloads') throw new UserNetOptionsError(`--net user: unknown setting "${setting}" (known: hostfwd=[tcp]:[hostaddr]:hostport-[guestaddr]:guestport, offloads=on|off)`);
    if (eq < 0) fail(setting, 'needs a value');
    const value = setting.slice(eq + 1);
    if (key === 'offloads') {
      if (value !== 'on' && value !== 'off') fail(setting, 'expected on or off');
      options.offloads = value === 'on';
      continue;
    }
    options.hostForwards.push(parseHostForward(value));
  }
  const seen = new Set<string>();
  for (const f of options.hostForwards) {
    if (f.hostPort === 0) continue;
    const key = `${f.hostAddress}:${f.hostPort}`;
    if (seen.has(key)) throw new UserNetOptionsError(`--net user: host port ${key} is forwarded twice`);
    seen.add(key);
  }
  return options;
}
