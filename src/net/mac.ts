/** Ethernet MAC addresses as the CLI and the virtio-net configuration space see them. */

export const MAC_LENGTH = 6;

/**
 * The default MAC of the `index`-th network device: QEMU's 52:54:00:12:34:56 pattern
 * (52:54:00 is the prefix QEMU and libvirt use for locally administered guest NICs), the last
 * octet counting up from 0x56. Two VMs on one bridge need distinct addresses: give one `mac=`.
 */
export function defaultMac(index: number): Uint8Array {
  if (!Number.isInteger(index) || index < 0 || index > 0xff - 0x56) throw new RangeError(`no default MAC for network device ${index}`);
  return Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56 + index);
}

/** Parses `aa:bb:cc:dd:ee:ff` (or with `-`); the address must be a usable unicast one. */
export function parseMac(text: string): Uint8Array {
  const m = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i.exec(text);
  if (!m) throw new RangeError(`MAC address "${text}" is not six hex octets like 52:54:00:12:34:56`);
  const mac = Uint8Array.from([m[1], m[3], m[4], m[5], m[6], m[7]], (h) => parseInt(h, 16));
  // The low bit of the first octet marks a group address, which no NIC may have as its own.
  if (mac[0] & 1) throw new RangeError(`MAC address "${text}" is a multicast address (first octet odd); a NIC needs a unicast one`);
  if (mac.every((b) => b === 0)) throw new RangeError(`MAC address "${text}" is all zeros`);
  return mac;
}

export function formatMac(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join(':');
}
