/**
 * What the guest agent says about the guest's network interfaces and file systems
 * (`vessel vm ifaddr` and `vessel vm fsinfo`, GET /vms/{vm}/guest/interfaces and
 * /vms/{vm}/guest/filesystems; libvirt's `domifaddr --source agent` and `domfsinfo`): QGA's
 * guest-network-get-interfaces and guest-get-fsinfo, in the API's snake_case.
 */
import type { QgaClient } from './guest-agent.js';

export interface GuestInterface {
  name: string;
  hardware_address: string | null;
  ip_addresses: { type: 'ipv4' | 'ipv6'; address: string; prefix: number }[];
  rx_bytes: number | null;
  tx_bytes: number | null;
}

export interface GuestFilesystem {
  mount_point: string;
  device: string;
  type: string;
  total_bytes: number | null;
  used_bytes: number | null;
  /** The block devices under it (vda, ...). */
  disks: string[];
}

export async function guestInterfaces(c: QgaClient): Promise<GuestInterface[]> {
  return (await c.networkInterfaces()).map((i) => ({
    name: i.name,
    hardware_address: i['hardware-address'] ?? null,
    ip_addresses: (i['ip-addresses'] ?? []).map((a) => ({ type: a['ip-address-type'], address: a['ip-address'], prefix: a.prefix })),
    rx_bytes: i.statistics?.['rx-bytes'] ?? null,
    tx_bytes: i.statistics?.['tx-bytes'] ?? null,
  }));
}

export async function guestFilesystems(c: QgaClient): Promise<GuestFilesystem[]> {
  return (await c.fsInfo()).map((f) => ({
    mount_point: f.mountpoint,
    device: f.name,
    type: f.type,
    total_bytes: f['total-bytes'] ?? null,
    used_bytes: f['used-bytes'] ?? null,
    disks: f.disk.map((d) => d.dev?.replace(/^\/dev\//, '') ?? '').filter((d) => d !== ''),
  }));
}
