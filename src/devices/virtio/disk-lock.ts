/**
 * Disk image locks: a whole-file POSIX record lock (fcntl F_SETLK) on the descriptor virtio-blk
 * reads and writes through, F_WRLCK for a read-write disk and F_RDLCK for a read-only one. QEMU
 * locks its images with OFD locks, which conflict with POSIX record locks on Linux, so Vessel
 * and QEMU refuse each other's images too; two read-only users share a file.
 *
 * POSIX locks belong to the process, not to the descriptor: a second lock on the same file from
 * this process would not conflict, and closing ANY descriptor of a locked file drops the lock.
 * So this module keeps the table of the files this process holds (by st_dev and st_ino): a file
 * in it is refused a second time (`DiskLockError` with `inThisProcess`), and VirtioBlk adopts
 * the locked descriptor for such a file instead of opening its own (see `lockedDescriptor`).
 * Nothing here opens and closes a held file.
 *
 * fs-ext's synchronous fcntl cannot take record locks (it passes the lock type where the kernel
 * wants a pointer), so taking a lock is asynchronous: `lockDiskImage` before the board is built.
 */
import * as fs from 'node:fs';
import { constants as fcntlConstants, fcntl } from 'fs-ext';

/** A disk image this process has open and locked. */
export interface LockedDiskImage {
  readonly path: string;
  readonly fd: number;
  readonly readonly: boolean;
  readonly dev: number;
  readonly ino: number;
}

/** Why an image could not be locked; the message names the file. */
export class DiskLockError extends Error {
  override name = 'DiskLockError';
  constructor(message: string, readonly path: string, readonly inThisProcess: boolean, readonly holderPid?: number) {
    super(message);
  }
}

const held = new Map<string, LockedDiskImage>();
const key = (dev: number, ino: number): string => `${dev}:${ino}`;

/** The image this process holds for the file at `path` (by device and inode), if any. */
export function heldImage(path: string): LockedDiskImage | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch {
    return undefined;
  }
  return held.get(key(st.dev, st.ino));
}

/** The locked descriptor VirtioBlk uses for `path`, or undefined when this process holds no lock on it. */
export function lockedDescriptor(path: string, readonly: boolean): number | undefined {
  const image = heldImage(path);
  if (!image) return undefined;
  if (image.readonly !== readonly) throw new DiskLockError(`disk "${path}" is already open ${image.readonly ? 'read-only' : 'read-write'} in this VM as "${image.path}"`, path, true);
  return image.fd;
}

/** The kernel's (major, minor) of a st_dev, as /proc/locks prints them. */
function devParts(dev: number): [number, number] {
  const d = BigInt(dev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  return [major, minor];
}

/** Who else holds a lock on the file, from /proc/locks (best effort: undefined when unknown). */
function otherHolder(dev: number, ino: number): { type: 'READ' | 'WRITE'; pid?: number } | undefined {
  let text: string;
  try {
    text = fs.readFileSync('/proc/locks', 'utf8');
  } catch {
    return undefined;
  }
  const [major, minor] = devParts(dev);
  let found: { type: 'READ' | 'WRITE'; pid?: number } | undefined;
  for (const line of text.split('\n')) {
    // "1: POSIX  ADVISORY  WRITE 3836 fe:00:16039955 0 EOF" (OFD locks show pid -1)
    const m = /^\d+:\s+(?:->\s+)?(\S+)\s+\S+\s+(READ|WRITE)\s+(-?\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (!m) continue;
    if (parseInt(m[4], 16) !== major || parseInt(m[5], 16) !== minor || Number(m[6]) !== ino) continue;
    const pid = Number(m[3]);
    if (pid === process.pid) continue;
    const type = m[2] as 'READ' | 'WRITE';
    if (!found || type === 'WRITE') found = { type, pid: pid > 0 ? pid : undefined };
  }
  return found;
}

function setlk(fd: number, type: number): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => fcntl(fd, 'setlk', type, (err) => resolve(err ?? null)));
}

/**
 * Opens `path` (read-only or read-write) and takes its lock; the descriptor stays open until
 * `releaseDiskImage`. Throws DiskLockError when the file is held by another process or already
 * by this one, and the open's own error (ENOENT, EACCES, ...) when it cannot be opened.
 */
export async function lockDiskImage(path: string, readonly: boolean): Promise<LockedDiskImage> {
  // Checked before opening: opening and closing a file this process holds would drop its lock.
  const already = heldImage(path);
  if (already) throw new DiskLockError(`disk "${path}" is already used by this VM (as "${already.path}"); a disk image can be attached once`, path, true);
  const fd = fs.openSync(path, readonly ? 'r' : 'r+');
  const st = fs.fstatSync(fd);
  const k = key(st.dev, st.ino);
  const raced = held.get(k);
  if (raced) {
    // The path now names a file we hold (renamed meanwhile): keep this descriptor open, or the lock goes.
    held.set(`${k}:extra:${fd}`, { path, fd, readonly, dev: st.dev, ino: st.ino });
    throw new DiskLockError(`disk "${path}" is already used by this VM (as "${raced.path}"); a disk image can be attached once`, path, true);
  }
  // Reserved before the asynchronous fcntl, so that a concurrent attempt in this process sees it.
  const image: LockedDiskImage = { path, fd, readonly, dev: st.dev, ino: st.ino };
  held.set(k, image);
  const err = await setlk(fd, readonly ? fcntlConstants.F_RDLCK : fcntlConstants.F_WRLCK);
  if (!err) return image;
  held.delete(k);
  fs.closeSync(fd);
  if (err.code === 'EAGAIN' || err.code === 'EACCES') {
    const holder = otherHolder(st.dev, st.ino);
    const by = holder?.pid !== undefined ? ` by pid ${holder.pid}` : '';
    const how = holder?.type === 'READ' ? `it is locked read-only${by} (a read-write disk needs it alone)` : `it is locked read-write${by}`;
    throw new DiskLockError(`disk "${path}" is in use by another process (a running VM or QEMU): ${how}`, path, false, holder?.pid);
  }
  throw new DiskLockError(`disk "${path}" cannot be locked: ${err.message}`, path, false);
}

/** Closes the image's descriptor, which drops its lock. */
export function releaseDiskImage(image: LockedDiskImage): void {
  if (held.get(key(image.dev, image.ino)) !== image) return;
  held.delete(key(image.dev, image.ino));
  try { fs.closeSync(image.fd); } catch { /* already closed */ }
}
