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
// root= (and rw/ro) are added only when the command line has none of its own. Like every disk,
// the default root disk is locked while a VM uses it (disks.ts): two guests writing one ext4
// file system would corrupt it.

import { ConfigError } from './errors.js';
import type { DiskOption } from './disks.js';
import { DiskLockError } from '../devices/virtio/disk-lock.js';

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
  /** Set when disks[0] is the default image's root disk (not one the user gave). */
  defaultRootDisk?: string;
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

/** Resolves the request; `image` is asked for only when no --kernel was given. */
export async function chooseBoot(req: BootRequest, image: () => Promise<DefaultImagePaths>): Promise<BootChoice> {
  if (req.kernel) return { kernel: req.kernel, initrd: req.initrd, disks: req.disks, append: req.append };
  const img = await image();
  if (req.initrd) return { kernel: img.kernel, initrd: req.initrd, disks: req.disks, append: req.append };
  if (req.disks.length === 0) {
    const disks = [{ path: img.rootfs, readonly: false }];
    return { kernel: img.kernel, initrd: img.initrd, disks, append: withRootDisk(req.append, disks[0]), defaultRootDisk: img.rootfs };
  }
  return { kernel: img.kernel, initrd: img.initrd, disks: req.disks, append: withRootDisk(req.append, req.disks[0]!) };
}

/**
 * The default root disk's refusal in the words of `vessel run`: what else to boot instead.
 * Other errors are returned as they are.
 */
export function explainDefaultRootDisk(e: unknown, disk: string): unknown {
  if (!(e instanceof ConfigError) || !(e.cause instanceof DiskLockError) || e.cause.path !== disk || e.cause.inThisProcess) return e;
  return new ConfigError(
    `the default root ${e.cause.message}; boot a copy with --disk <copy>, or the initramfs alone with --kernel/--initrd`,
    { cause: e.cause },
  );
}
