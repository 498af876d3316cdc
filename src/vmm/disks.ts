/**
 * A VM's disk images: the `PATH[,readonly]` option, the checks before anything starts, and the
 * disk locks (src/devices/virtio/disk-lock.ts) that keep two VMs, or a VM and QEMU, from using
 * one image read-write at the same time.
 */
import { statSync, type Stats } from 'node:fs';
import { DiskLockError, lockDiskImage, releaseDiskImage, type LockedDiskImage } from '../devices/virtio/disk-lock.js';
import { ConfigError } from './errors.js';

export interface DiskOption { path: string; readonly: boolean }

/** Parses `PATH[,readonly]` (also `,ro`); throws ConfigError. */
export function parseDiskOption(spec: string): DiskOption {
  const parts = spec.split(',');
  let readonly = false;
  while (parts.length > 1 && ['readonly', 'ro'].includes(parts[parts.length - 1])) {
    parts.pop();
    readonly = true;
  }
  const path = parts.join(',');
  if (path === '') throw new ConfigError(`--disk "${spec}" names no file`);
  return { path, readonly };
}

/** Checks that a disk image exists, is not a directory and holds at least one sector; throws ConfigError. */
export function checkDisk(disk: DiskOption): void {
  let stat: Stats;
  try {
    stat = statSync(disk.path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new ConfigError(`disk "${disk.path}" does not exist`);
    throw new ConfigError(`disk "${disk.path}" cannot be read: ${(e as Error).message}`);
  }
  if (stat.isDirectory()) throw new ConfigError(`disk "${disk.path}" is a directory, not a disk image`);
  if (stat.isFile() && stat.size < 512) throw new ConfigError(`disk "${disk.path}" is smaller than one 512-byte sector`);
}

/** A disk image this VM holds locked, for as long as the VM lives (across guest reboots). */
export type HeldDisk = LockedDiskImage;

/**
 * Opens and locks one disk image (read-write: exclusive; readonly: shared with other readers);
 * throws ConfigError naming the file when another process (a VM, QEMU) or this VM already uses it.
 */
export async function lockDisk(disk: DiskOption): Promise<HeldDisk> {
  try {
    return await lockDiskImage(disk.path, disk.readonly);
  } catch (e) {
    // The cause says who holds it (the default root disk's message in `vessel run` names the pid).
    if (e instanceof DiskLockError) throw new ConfigError(e.message, { cause: e });
    const err = e as NodeJS.ErrnoException;
    if (typeof err.code === 'string' && err.syscall === 'open') throw new ConfigError(`disk "${disk.path}" cannot be opened: ${err.message}`, { cause: e });
    throw e;
  }
}

/** Locks every disk, in order; on a refusal the ones already locked are released again. */
export async function lockDisks(disks: DiskOption[]): Promise<HeldDisk[]> {
  const held: HeldDisk[] = [];
  try {
    for (const d of disks) held.push(await lockDisk(d));
  } catch (e) {
    releaseDisks(held);
    throw e;
  }
  return held;
}

/** Closes the disks' descriptors, which drops their locks. */
export function releaseDisks(disks: HeldDisk[]): void {
  for (const d of disks) releaseDiskImage(d);
}
