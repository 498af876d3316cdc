// What `vessel run` boots for the choices the user left open.
//
//   no --kernel, --initrd or --disk  the default image: kernel + initramfs + its root disk
//                                    (rootfs.ext4, persistent) as /dev/vda, root=/dev/vda rw
//   --disk, no --kernel/--initrd     the default kernel + initramfs, the user's disks; the first
//                                    one is the root (root=/dev/vda, ro if it is readonly); the
//                                    initramfs stays in its own shell if that disk has no init
//   --initrd, no --kernel            the default kernel with that initramfs, nothing added
//   --kernel                         exactly what was given, as QEMU does
//
// root= (and rw/ro) are added only when the command line has none of its own. The default root
// disk is locked while a VM uses it: two guests writing one ext4 file system would corrupt it.

import * as fs from 'node:fs';

import { pidAlive } from '../../images/build-image.js';
import { UsageError, type DiskOption } from './run.js';

export interface BootRequest {
  kernel?: string;
  initrd?: string;
  disks: DiskOption[];
  append: string;
}

export interface BootChoice {
  kernel: string;
  initrd?: string;
  disks: DiskOption[];
  append: string;
}

export interface DefaultImagePaths {
  kernel: string;
  initrd: string;
  rootfs: string;
}

/** True when `param` (e.g. "root" or "rw") is one of the command line's words, bare or as `param=...`. */
function hasParam(cmdline: string, param: string): boolean {
  return cmdline.split(/\s+/).some((word) => word === param || word.startsWith(`${param}=`));
}

/** Adds `root=/dev/vda` and rw/ro for the first disk, unless the command line names a root itself. */
export function withRootDisk(append: string, root: DiskOption): string {
  if (hasParam(append, 'root')) return append;
  const mode = hasParam(append, 'rw') || hasParam(append, 'ro') ? '' : root.readonly ? ' ro' : ' rw';
  return `${append} root=/dev/vda${mode}`;
}

/**
 * Marks `disk` as used by this process until it exits (`<disk>.lock` holds the pid). A lock
 * left by a process that died is taken over; one held by a live process is a usage error.
 */
export function lockRootDisk(disk: string): void {
  const lock = `${disk}.lock`;
  for (;;) {
    try {
      fs.writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
      process.on('exit', () => fs.rmSync(lock, { force: true }));
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new UsageError(`cannot lock the root disk ${disk}: ${(e as Error).message}`);
    }
    let holder = NaN;
    try {
      holder = Number.parseInt(fs.readFileSync(lock, 'utf8'), 10);
    } catch {
      continue; // removed meanwhile
    }
    if (Number.isInteger(holder) && holder !== process.pid && pidAlive(holder)) {
      throw new UsageError(
        `the default root disk ${disk} is in use by another vessel (pid ${holder}); ` +
          'boot a copy with --disk <copy>, or the initramfs alone with --kernel/--initrd',
      );
    }
    fs.rmSync(lock, { force: true });
  }
}

/**
 * Resolves the request; `image` is asked for only when no --kernel was given, and `lock` is
 * called with the default root disk when it is used.
 */
export async function chooseBoot(
  req: BootRequest,
  image: () => Promise<DefaultImagePaths>,
  lock: (disk: string) => void = lockRootDisk,
): Promise<BootChoice> {
  if (req.kernel) return { kernel: req.kernel, initrd: req.initrd, disks: req.disks, append: req.append };
  const img = await image();
  if (req.initrd) return { kernel: img.kernel, initrd: req.initrd, disks: req.disks, append: req.append };
  let disks = req.disks;
  if (disks.length === 0) {
    lock(img.rootfs);
    disks = [{ path: img.rootfs, readonly: false }];
  }
  return { kernel: img.kernel, initrd: img.initrd, disks, append: withRootDisk(req.append, disks[0]!) };
}
