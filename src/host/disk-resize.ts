/**
 * Growing a VM's disk (`vessel vm set NAME --disk vda=2G`, POST /vms/{vm}/disks/{disk}/resize):
 *
 *   1. the image file is extended: by the VM process while it runs (PUT /vm.resize-disk, through
 *      the drive's locked descriptor; the guest gets virtio-blk's config-change interrupt), by
 *      the host itself while it does not (taking the disk's lock first, so an image another VM
 *      or QEMU has open is refused);
 *   2. with a guest agent: the host waits until the guest's /sys/block/<dev>/size shows the new
 *      size (the guest's device is found by its virtio-blk serial, `vessel-disk<N>`), and when
 *      the device holds a mounted ext2/3/4 file system, runs `resize2fs /dev/<dev>` in the guest
 *      (an online grow) and reads the new size with `df`.
 *
 * Shrinking is refused (it would cut off the guest's data), and so are read-only disks. Every
 * value the guest sends back is parsed strictly; the device name goes to resize2fs as an
 * argument, never through a shell.
 */
import * as fs from 'node:fs';
import { ConflictError, NotFoundError } from './errors.js';
import { GuestAgentCommandError, NoGuestAgentError, withAgent, type AgentVm, type QgaClient, type VmmRequest } from './guest-agent.js';
import type { VmSpec } from './vm-spec.js';
import { lockDisk, releaseDisks } from '../vmm/disks.js';
import { ConfigError } from '../vmm/errors.js';

export const SECTOR = 512;
/** The largest disk the VMM takes (its API's limit). */
export const DISK_MAX_BYTES = 2 ** 44;
/** How long the host waits for the guest to show the new size. */
const GUEST_SEES_TIMEOUT_MS = 15_000;
/** How long resize2fs may run in the guest. */
const RESIZE2FS_TIMEOUT_MS = 180_000;

/** What a grow did, as the API answers it. */
export interface DiskGrowth {
  disk: string;
  path: string;
  previous_bytes: number;
  size_bytes: number;
  /** The image file got bigger (false: it already had this size). */
  grown: boolean;
  /** The running VM's device took the new size and interrupted the guest. */
  live: boolean;
  /** What the guest shows, through its agent: its device, its size, and when it saw it (ms after the request). */
  guest: { device: string; size_bytes: number; seen_after_ms: number } | null;
  /** The file system on it, when the agent grew one (or tried). */
  filesystem: { mount_point: string; type: string; resized: boolean; size_bytes: number | null } | null;
  /** One sentence per step: what was done, and what was not and why. */
  notes: string[];
}

/** The VM as disk growing needs it. */
export interface DiskVm {
  name: string;
  state: string;
  spec: VmSpec;
  /** A VM process runs (running or paused). */
  live: boolean;
  apiSock: string;
}

export function mibText(bytes: number): string {
  const mib = bytes / 1048576;
  if (mib >= 1024 && Number.isInteger(mib / 1024)) return `${mib / 1024} GiB`;
  return Number.isInteger(mib) ? `${mib} MiB` : `${bytes} bytes`;
}

/** The disk's index in the VM's spec: `vda` is the first disk, `vdb` the second, ... */
export function diskIndex(vm: { name: string; spec: VmSpec }, disk: string): number {
  const m = /^vd([a-z])$/.exec(disk);
  const i = m ? m[1].charCodeAt(0) - 97 : -1;
  if (i < 0 || i >= vm.spec.disks.length) {
    const names = vm.spec.disks.map((_, j) => `vd${String.fromCharCode(97 + j)}`);
    throw new NotFoundError(`VM "${vm.name}" has no disk "${disk}" (${names.length ? `it has ${names.join(', ')}` : 'it has no disks'})`);
  }
  return i;
}

/**
 * Step 1: checks and extends the image, live through the VM process or offline. The caller
 * holds the VM's operation queue, so it neither starts nor stops meanwhile. `beforeGrow` gets
 * the bytes the image is to gain and may refuse by throwing (a tenant's disk quota).
 */
export async function growDiskImage(vm: DiskVm, disk: string, bytes: number, request: VmmRequest, beforeGrow?: (addBytes: number) => void): Promise<DiskGrowth> {
  const d = vm.spec.disks[diskIndex(vm, disk)];
  if (d.readonly) throw new ConflictError(`disk ${disk} of VM "${vm.name}" is read-only (${d.path}); a read-only disk cannot be grown`);
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes % SECTOR !== 0 || bytes > DISK_MAX_BYTES) {
    throw new ConflictError(`a disk size must be whole 512-byte sectors, at most 16 TiB; got ${bytes} bytes`);
  }
  let previous: number;
  try {
    previous = fs.statSync(d.path).size;
  } catch (e) {
    throw new ConflictError(`disk ${disk} of VM "${vm.name}": its image ${d.path} cannot be read: ${(e as Error).message}`);
  }
  if (bytes < previous) {
    throw new ConflictError(`disk ${disk} of VM "${vm.name}" is ${mibText(previous)} (${previous} bytes); shrinking it to ${mibText(bytes)} is not supported (it would cut off the guest's data): give at least ${mibText(previous)}`);
  }
  // A tenant's disk quota, say: it throws to refuse, before anything changed.
  if (bytes > previous) beforeGrow?.(bytes - previous);
  const growth: DiskGrowth = { disk, path: d.path, previous_bytes: previous, size_bytes: bytes, grown: bytes > previous, live: false, guest: null, filesystem: null, notes: [] };
  const what = growth.grown ? `grown from ${mibText(previous)} to ${mibText(bytes)}` : `already ${mibText(bytes)}; the image is unchanged`;
  if (vm.live) {
    await request(vm.apiSock, 'PUT', '/vm.resize-disk', { id: disk, desired_size: bytes }, 10_000);
    growth.live = true;
    growth.notes.push(`${disk} ${what}; the running guest was told (virtio-blk config change)`);
    return growth;
  }
  if (growth.grown) {
    let held;
    try {
      held = await lockDisk({ path: d.path, readonly: false });
    } catch (e) {
      if (e instanceof ConfigError) throw new ConflictError(`disk ${disk} of VM "${vm.name}" cannot be grown: ${e.message}`);
      throw e;
    }
    try {
      fs.ftruncateSync(held.fd, bytes);
    } catch (e) {
      throw new ConflictError(`disk ${disk} of VM "${vm.name}" cannot be grown to ${mibText(bytes)}: ${(e as Error).message}`);
    } finally {
      releaseDisks([held]);
    }
  }
  growth.notes.push(`${disk} ${what} offline: VM "${vm.name}" is ${vm.state}; the guest sees the new size when it next boots (grow its file system there, e.g. resize2fs /dev/${disk})`);
  return growth;
}

/** One line per virtio disk in the guest: "vda vessel-disk0 524288 254:0". */
const LIST_DISKS = 'for d in /sys/block/vd*; do [ -e "$d/size" ] || continue; echo "${d##*/} $(cat "$d/serial" 2>/dev/null) $(cat "$d/size") $(cat "$d/dev")"; done';

interface GuestDisk { device: string; serial: string; sectors: number; devno: string }

/** Parses LIST_DISKS' output; lines that do not have its shape are dropped. */
export function parseGuestDisks(text: string): GuestDisk[] {
  const out: GuestDisk[] = [];
  for (const line of text.split('\n')) {
    const m = /^(vd[a-z]{1,3}) ([A-Za-z0-9_.-]{0,20}) (\d{1,15}) (\d{1,4}:\d{1,7})$/.exec(line.trim());
    if (m) out.push({ device: m[1], serial: m[2], sectors: Number(m[3]), devno: m[4] });
  }
  return out;
}

/** The mount of a device (by major:minor) in /proc/self/mountinfo: its mount point and type, or null. */
export function findMount(mountinfo: string, devno: string): { mountPoint: string; type: string } | null {
  for (const line of mountinfo.split('\n')) {
    // "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/root rw"
    const [pre, post] = line.split(' - ');
    if (post === undefined) continue;
    const f = pre.split(' ');
    if (f[2] !== devno || f[3] !== '/') continue;
    const type = post.split(' ')[0];
    const mountPoint = f[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (!mountPoint || !/^[a-z0-9.]{1,20}$/.test(type)) continue;
    return { mountPoint, type };
  }
  return null;
}

/** The size in bytes from `df -Pk <dir>`'s second line, or null. */
export function parseDfBytes(text: string): number | null {
  const line = text.split('\n')[1]?.trim();
  const kib = line?.split(/\s+/)[1];
  return kib !== undefined && /^\d{1,15}$/.test(kib) ? Number(kib) * 1024 : null;
}

async function sh(c: QgaClient, script: string): Promise<string> {
  const r = await c.exec(['sh', '-c', script], { timeoutMs: 10_000 });
  if (r.exit_code !== 0) throw new Error(`the guest's sh exited with ${r.exit_code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * Step 2, for a running VM: through the guest agent, waits until the guest shows the new size
 * and grows a mounted ext2/3/4 file system on the disk with resize2fs. Without an agent (or when
 * it fails) the growth is kept and a note says what the guest has to do; this never throws for
 * the guest's sake.
 */
export async function growGuestFilesystem(vm: AgentVm, growth: DiskGrowth, request: VmmRequest, startedAt: number, index: number): Promise<void> {
  if (!growth.live) return;
  if (vm.state === 'paused') {
    growth.notes.push(`VM "${vm.name}" is paused: the guest sees the new size when it is resumed; its file system was not grown (resize2fs /dev/${growth.disk} in the guest)`);
    return;
  }
  const serial = `vessel-disk${index}`;
  try {
    await withAgent(vm, request, async (c) => {
      let disk: GuestDisk | undefined;
      for (;;) {
        disk = parseGuestDisks(await sh(c, LIST_DISKS)).find((g) => g.serial === serial);
        if (!disk) throw new Error(`the guest has no virtio disk with serial ${serial}`);
        if (disk.sectors * SECTOR === growth.size_bytes) break;
        if (Date.now() - startedAt > GUEST_SEES_TIMEOUT_MS) {
          throw new Error(`the guest still shows ${mibText(disk.sectors * SECTOR)} for /dev/${disk.device} after ${GUEST_SEES_TIMEOUT_MS / 1000} s`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      growth.guest = { device: disk.device, size_bytes: disk.sectors * SECTOR, seen_after_ms: Date.now() - startedAt };
      growth.notes.push(`the guest sees /dev/${disk.device} as ${mibText(growth.guest.size_bytes)} (${growth.guest.seen_after_ms} ms after the request)`);
      const mount = findMount(await sh(c, 'cat /proc/self/mountinfo'), disk.devno);
      if (!mount) {
        growth.notes.push(`/dev/${disk.device} is not mounted in the guest (or holds partitions): no file system was grown`);
        return;
      }
      if (!/^ext[234]$/.test(mount.type)) {
        growth.notes.push(`/dev/${disk.device} holds ${mount.type} on ${mount.mountPoint}: only ext2/3/4 are grown (resize2fs); grow it in the guest`);
        return;
      }
      const fsInfo: NonNullable<DiskGrowth['filesystem']> = { mount_point: mount.mountPoint, type: mount.type, resized: false, size_bytes: null };
      growth.filesystem = fsInfo;
      let r;
      try {
        r = await c.exec(['resize2fs', `/dev/${disk.device}`], { timeoutMs: RESIZE2FS_TIMEOUT_MS });
      } catch (e) {
        if (e instanceof GuestAgentCommandError && /No such file|not found/i.test(e.desc)) {
          growth.notes.push(`the guest has no resize2fs (e2fsprogs; the default image has it from builder 5): the file system on ${mount.mountPoint} was not grown`);
          return;
        }
        throw e;
      }
      const df = await c.exec(['df', '-Pk', mount.mountPoint], { timeoutMs: 10_000 });
      fsInfo.size_bytes = df.exit_code === 0 ? parseDfBytes(df.stdout) : null;
      if (r.exit_code !== 0) {
        const why = (r.stderr.trim().split('\n').filter((l) => l.trim()).pop() ?? '').slice(0, 300);
        growth.notes.push(`resize2fs /dev/${disk.device} failed in the guest (exit ${r.exit_code}): ${why}`);
        return;
      }
      fsInfo.resized = true;
      growth.notes.push(`the ${mount.type} file system on ${mount.mountPoint} was grown online (resize2fs)${fsInfo.size_bytes !== null ? `: df shows ${mibText(fsInfo.size_bytes)}` : ''}`);
    });
  } catch (e) {
    if (e instanceof NoGuestAgentError) {
      growth.notes.push(`no guest agent (${e.message.replace(/^VM "[^"]*" /, '')}): the guest was told the new size; grow its file system in the guest (resize2fs /dev/${growth.disk})`);
    } else {
      growth.notes.push(`the guest agent could not grow the file system: ${(e as Error).message}`);
    }
  }
}
