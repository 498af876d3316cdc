/**
 * What the host keeps of a VM's definition (`VmSpec`), the checks a create or a change must
 * pass before anything is recorded (each failure one sentence for a 400), and the VMM
 * configuration (`vessel vmm --config-file`) the host starts the VM's process with.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseMac } from '../net/mac.js';
import { checkTapName, TapError } from '../net/tap.js';
import { parseUserNetOptions, UserNetOptionsError } from '../net/user/options.js';
import type { FullVmConfiguration, NetworkInterface } from '../vmm/config.js';
import { CPU_WEIGHT_DEFAULT, CPU_WEIGHT_MAX, CPU_WEIGHT_MIN } from './cgroups.js';

export type RestartPolicy = 'no' | 'on-failure' | 'always';

export interface DiskSpec {
  path: string;
  readonly: boolean;
  /** Made by the host for this VM (the copy of the default root disk); removed with the VM. */
  owned?: boolean;
}

export interface VmSpec {
  /** vCPUs the guest has: the allotment of the VM's board (PUT /vm.resize changes it live). */
  vcpus: number;
  /** The board's harts, the most `vcpus` can grow to while the VM runs (Cloud Hypervisor's max_vcpus); absent = vcpus. */
  max_vcpus?: number;
  /** Boot size of guest RAM, the most the VM can have. */
  memory_mib: number;
  /** The least the memory policy leaves the VM (its balloon is at most memory_mib - memory_min_mib); defaults to memory_mib. */
  memory_min_mib: number;
  /** The VM's weight when the host's memory is split (Proxmox's `shares`, 0..50000; default 1000). Absent in VMs made before it existed. */
  memory_shares?: number;
  /** A memory target set by hand (`vessel vm set --memory`): the policy leaves the VM alone; absent = the policy decides. */
  memory_manual_mib?: number;
  /** Relative CPU share, 1..10000 (cgroup v2's scale; 100 by default). */
  cpu_weight: number;
  /** Percent of one host core the VM may use at most; 0 = no cap. */
  cpu_cap: number;
  kernel: string;
  initrd?: string;
  /** The kernel command line, complete (root= included when the VM has a root disk). */
  append: string;
  /** vda first. */
  disks: DiskSpec[];
  /** `vessel run --net` specs: user[,hostfwd=...][,mac=...] or tap=NAME[,mac=...]; empty = no network. */
  nets: string[];
  rng: boolean;
  restart: RestartPolicy;
}

/** A request the host refuses because of its values; the message says which and why. */
export class SpecError extends Error {
  override name = 'SpecError';
}

export const VCPUS_MAX = 64;
export const MEMORY_MIN_MIB = 16;
export const MEMORY_MAX_MIB = 2048;
export const MEMORY_SHARES_DEFAULT = 1000;
export const MEMORY_SHARES_MAX = 50000;
/** The balloon's statistics interval: the policy's inputs are at most this old. */
export const BALLOON_STATS_INTERVAL_S = 2;
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function checkName(name: string): void {
  if (!NAME_PATTERN.test(name)) throw new SpecError(`VM name "${name}" is not valid: 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit`);
  if (/^[0-9a-f]{12}$/.test(name)) throw new SpecError(`VM name "${name}" looks like a VM id (12 hex digits); choose another`);
}

function intIn(value: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < min || value > max) throw new SpecError(`${what} must be an integer from ${min} to ${max}, not ${value}`);
}

export function checkCpu(weight: number, cap: number, hostCpus: number): void {
  intIn(weight, CPU_WEIGHT_MIN, CPU_WEIGHT_MAX, 'cpu_weight');
  intIn(cap, 0, 100 * hostCpus, `cpu_cap (percent of one host core; this host has ${hostCpus})`);
}

/** Checks one --net spec without touching the host (the VM process opens it when it starts). */
export function checkNetSpec(spec: string): void {
  const [kind, ...settings] = spec.split(',');
  const rest: string[] = [];
  try {
    for (const s of settings) {
      if (s.startsWith('mac=')) parseMac(s.slice(4));
      else rest.push(s);
    }
    if (kind === 'user') {
      parseUserNetOptions(rest.join(','));
      return;
    }
    if (kind.startsWith('tap=')) {
      if (rest.length > 0) throw new SpecError(`net "${spec}": unknown setting "${rest[0]}" for tap`);
      checkTapName(kind.slice(4));
      return;
    }
  } catch (e) {
    if (e instanceof UserNetOptionsError || e instanceof TapError || e instanceof Error) throw new SpecError(`net "${spec}": ${e.message.replace(/^--net user: /, '')}`);
    throw e;
  }
  throw new SpecError(`net "${spec}": expected user[,hostfwd=...][,mac=...], tap=NAME[,mac=...] or none`);
}

function checkFile(file: string, what: string): void {
  if (!path.isAbsolute(file)) throw new SpecError(`${what} "${file}" must be an absolute path (the host resolves nothing against its own working directory)`);
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new SpecError(`${what} "${file}" does not exist`);
  }
  if (st.isDirectory()) throw new SpecError(`${what} "${file}" is a directory, not a file`);
  if (st.size === 0 && st.isFile()) throw new SpecError(`${what} "${file}" is empty`);
}

export function checkMemoryShares(shares: number): void {
  intIn(shares, 0, MEMORY_SHARES_MAX, 'memory_shares');
}

/** A memory target (set by hand) must lie within the VM's [memory_min, memory]. */
export function checkMemoryTarget(spec: VmSpec, mib: number): void {
  if (!Number.isInteger(mib) || mib < spec.memory_min_mib || mib > spec.memory_mib) {
    throw new SpecError(`memory target ${mib} MiB is outside the VM's range: from its memory_min ${spec.memory_min_mib} MiB to its memory ${spec.memory_mib} MiB`);
  }
}

/** The board's harts: max_vcpus, or vcpus when it is not set. */
export function maxVcpus(spec: VmSpec): number {
  return spec.max_vcpus ?? spec.vcpus;
}

/** max_vcpus, when set, is from vcpus to 64. */
export function checkMaxVcpus(spec: VmSpec): void {
  if (spec.max_vcpus === undefined) return;
  if (!Number.isInteger(spec.max_vcpus) || spec.max_vcpus > VCPUS_MAX) throw new SpecError(`max_vcpus must be an integer from ${spec.vcpus} (vcpus) to ${VCPUS_MAX}, not ${spec.max_vcpus}`);
  if (spec.max_vcpus < spec.vcpus) throw new SpecError(`max_vcpus ${spec.max_vcpus} is less than vcpus ${spec.vcpus}: max_vcpus is the most the VM can have (give at least ${spec.vcpus})`);
}

/** Checks a whole spec (create, or the result of a change). */
export function checkSpec(spec: VmSpec, hostCpus: number): void {
  intIn(spec.vcpus, 1, VCPUS_MAX, 'vcpus');
  checkMaxVcpus(spec);
  intIn(spec.memory_mib, MEMORY_MIN_MIB, MEMORY_MAX_MIB, 'memory (MiB)');
  intIn(spec.memory_min_mib, MEMORY_MIN_MIB, spec.memory_mib, 'memory_min (MiB; at most memory)');
  if (spec.memory_shares !== undefined) checkMemoryShares(spec.memory_shares);
  if (spec.memory_manual_mib !== undefined) checkMemoryTarget(spec, spec.memory_manual_mib);
  checkCpu(spec.cpu_weight, spec.cpu_cap, hostCpus);
  checkFile(spec.kernel, 'kernel');
  if (spec.initrd !== undefined) checkFile(spec.initrd, 'initrd');
  if (spec.disks.length + spec.nets.length + (spec.rng ? 1 : 0) > 6) throw new SpecError('at most 6 virtio devices fit the board besides the balloon and the guest agent console every host VM has (disks, network interfaces and the entropy device)');
  const seen = new Set<string>();
  for (const d of spec.disks) {
    checkFile(d.path, 'disk');
    const real = fs.realpathSync(d.path);
    if (seen.has(real)) throw new SpecError(`disk "${d.path}" is given twice`);
    seen.add(real);
    if (!d.owned && fs.statSync(d.path).size < 512) throw new SpecError(`disk "${d.path}" is smaller than one 512-byte sector`);
  }
  for (const n of spec.nets) checkNetSpec(n);
}

/** A MAC for the VM's n-th interface derived from its id, so VMs on one bridge differ. */
export function vmMac(vmId: string, index: number): string {
  const b = [0x52, 0x54, 0x00, parseInt(vmId.slice(0, 2), 16), parseInt(vmId.slice(2, 4), 16), (parseInt(vmId.slice(4, 6), 16) + index) & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

function netInterface(spec: string, index: number, vmId: string): NetworkInterface {
  const [kind, ...settings] = spec.split(',');
  const mac = settings.find((s) => s.startsWith('mac='))?.slice(4) ?? vmMac(vmId, index);
  const rest = settings.filter((s) => !s.startsWith('mac='));
  const iface: NetworkInterface = { iface_id: `eth${index}`, guest_mac: mac };
  if (kind === 'user') iface.vessel_user_network = { host_forwards: rest.filter((s) => s.startsWith('hostfwd=')).map((s) => s.slice('hostfwd='.length)) };
  else iface.host_dev_name = kind.slice('tap='.length);
  return iface;
}

/** The `vessel vmm --config-file` document that boots this VM. */
export function vmmConfig(vmId: string, spec: VmSpec): FullVmConfiguration {
  const cfg: FullVmConfiguration = {
    'boot-source': { kernel_image_path: spec.kernel, boot_args: spec.append, ...(spec.initrd !== undefined ? { initrd_path: spec.initrd } : {}) },
    // The board has max_vcpus harts (all in its device tree); the guest may start vcpus of them.
    'machine-config': { vcpu_count: spec.vcpus, mem_size_mib: spec.memory_mib, ...(spec.max_vcpus !== undefined ? { max_vcpus: spec.max_vcpus } : {}) },
    // The root= is already in the command line: no drive is marked as the root device.
    drives: spec.disks.map((d, i) => ({ drive_id: `vd${String.fromCharCode(97 + i)}`, path_on_host: d.path, is_root_device: false, is_read_only: d.readonly })),
    'network-interfaces': spec.nets.map((n, i) => netInterface(n, i, vmId)),
  };
  if (spec.rng) cfg.entropy = {};
  // Every host VM has a balloon: its size is memory_mib minus the VM's memory target. With
  // deflate_on_oom the guest's MemTotal stays memory_mib and ballooned pages count as used (without
  // it they leave MemTotal). We take that view: a guest about to OOM-kill takes pages back from
  // the balloon itself (1 MiB per OOM notification) instead of killing a process when the policy
  // was too slow or too greedy, and the policy does not need MemTotal, only the balloon's actual
  // size and the guest's MemAvailable (ballooned pages are in neither: used = actual - available
  // either way). Statistics every 2 s feed the policy; free page reporting returns what the guest
  // frees between balloon moves.
  cfg.balloon = {
    amount_mib: spec.memory_mib - (spec.memory_manual_mib ?? spec.memory_mib),
    deflate_on_oom: true,
    stats_polling_interval_s: BALLOON_STATS_INTERVAL_S,
    free_page_reporting: true,
  };
  // Every host VM has the guest agent's port (a multiport virtio-console; qemu-ga on the default
  // root disk opens it), served on qga.sock in the VM's folder, next to this file.
  cfg['guest-agent'] = { uds_path: 'qga.sock' };
  return cfg;
}

export const DEFAULT_SPEC = { vcpus: 1, memory_mib: 256, memory_shares: MEMORY_SHARES_DEFAULT, cpu_weight: CPU_WEIGHT_DEFAULT, cpu_cap: 0, rng: true, restart: 'on-failure' as RestartPolicy };
