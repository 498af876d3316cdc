// The default root disk: a raw ext4 image with busybox, its configuration (rootfs-files.ts) and
// the kernel's modules, made without root or loop mounts: the tree is laid out in a staging
// directory and `mke2fs -d` copies it into a new file system.
//
// Layout (merged /usr, like current Debian): /bin, /sbin and /lib are symlinks into /usr;
// busybox is /usr/bin/busybox with one symlink per applet in /usr/bin, and /usr/sbin -> bin, so
// every applet is found under /bin, /sbin, /usr/bin and /usr/sbin.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { ImageBuildError } from './errors.js';
import * as files from './rootfs-files.js';

/**
 * Size of the file system. 256 MiB leaves ~230 MiB free for the user's files next to the ~5 MiB
 * userland and an 8 MiB journal, while the image stays sparse on the host: only written blocks
 * take space (about 15 MiB after the build).
 */
export const ROOTFS_SIZE_MIB = 256;

/** The file system label; `root=LABEL=vessel-root` finds the disk too. */
export const ROOTFS_LABEL = 'vessel-root';

export interface RootfsInput {
  /** Kernel release (`uname -r`), the name of the modules directory. */
  release: string;
  busybox: Buffer;
  /** Applet names from busybox's applet table. */
  applets: string[];
  /** Uncompressed kernel modules, stored flat in /lib/modules/<release>/. */
  modules: ReadonlyArray<{ fileName: string; data: Buffer }>;
  /** modules.dep for those modules, so `modprobe` works. */
  modulesDep: string;
  /** Written to /etc/vessel/manifest.json. */
  manifest: object;
  /** A directory tree (e.g. extracted Debian packages) copied over the layout, or none. */
  overlay?: string;
}

type Entry =
  | { kind: 'dir'; path: string; mode: number }
  | { kind: 'file'; path: string; data: string | Buffer; mode: number }
  | { kind: 'symlink'; path: string; target: string };

/** Everything on the disk except the overlay, in creation order (parents first). */
export function rootfsEntries(input: RootfsInput): Entry[] {
  if (input.applets.length === 0) {
    throw new ImageBuildError("busybox's applet table was not found in the binary; cannot lay out the root disk's applet links");
  }
  const dir = (p: string, mode = 0o755): Entry => ({ kind: 'dir', path: p, mode });
  const file = (p: string, data: string | Buffer, mode = 0o644): Entry => ({ kind: 'file', path: p, data, mode });
  const link = (p: string, target: string): Entry => ({ kind: 'symlink', path: p, target });
  const mods = `usr/lib/modules/${input.release}`;
  const entries: Entry[] = [
    dir('usr'), dir('usr/bin'), dir('usr/lib'), dir('usr/lib/modules'), dir(mods), dir('usr/share'), dir('usr/share/udhcpc'),
    link('usr/sbin', 'bin'), link('bin', 'usr/bin'), link('sbin', 'usr/sbin'), link('lib', 'usr/lib'),
    dir('dev'), dir('proc', 0o555), dir('sys', 0o555), dir('run'), dir('tmp', 0o1777), dir('mnt'), dir('home'), dir('root', 0o700),
    dir('var'), dir('var/log'), dir('var/tmp', 0o1777), link('var/run', '../run'), link('var/lock', '../run/lock'),
    dir('etc'), dir('etc/init.d'), dir('etc/network'), dir('etc/profile.d'), dir('etc/vessel'),
    file('usr/bin/busybox', input.busybox, 0o755),
  ];
  for (const a of input.applets) {
    if (a !== 'busybox' && a !== 'shutdown' && !a.includes('/')) entries.push(link(`usr/bin/${a}`, 'busybox'));
  }
  entries.push(
    file('etc/inittab', files.INITTAB),
    file('etc/init.d/rcS', files.RCS, 0o755),
    file('etc/init.d/rcK', files.RCK, 0o755),
    file('usr/bin/autologin', files.AUTOLOGIN, 0o755),
    file('usr/bin/shutdown', files.SHUTDOWN, 0o755),
    file('usr/share/udhcpc/default.script', files.UDHCPC_SCRIPT, 0o755),
    file('etc/fstab', files.FSTAB),
    file('etc/profile', files.PROFILE),
    file('etc/passwd', files.PASSWD),
    file('etc/group', files.GROUP),
    file('etc/shadow', files.SHADOW, 0o600),
    file('etc/shells', files.SHELLS),
    file('etc/hostname', 'vessel\n'),
    file('etc/hosts', files.HOSTS),
    file('etc/network/interfaces', files.NETWORK_INTERFACES),
    file('etc/motd', files.MOTD),
    file('etc/os-release', files.OS_RELEASE),
    // udhcpc writes the servers it is given; /run is a tmpfs, so this works on a read-only root too.
    link('etc/resolv.conf', '../run/resolv.conf'),
    file('etc/vessel/manifest.json', JSON.stringify(input.manifest, null, 2) + '\n'),
    file(`${mods}/modules.dep`, input.modulesDep),
    ...input.modules.map((m) => file(`${mods}/${m.fileName}`, m.data)),
  );
  return entries;
}

function stage(dir: string, entries: Entry[]): void {
  for (const e of entries) {
    const p = path.join(dir, e.path);
    switch (e.kind) {
      case 'dir':
        fs.mkdirSync(p);
        fs.chmodSync(p, e.mode); // mkdir's mode is filtered by the umask
        break;
      case 'file':
        fs.writeFileSync(p, e.data);
        fs.chmodSync(p, e.mode);
        break;
      case 'symlink':
        fs.symlinkSync(e.target, p);
        break;
    }
  }
}

/** Copies `from` over `to`, merging directories; a path that is a symlink in `to` is followed. */
function copyOverlay(from: string, to: string): void {
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, e.name);
    const dst = path.join(to, e.name);
    if (e.isDirectory()) {
      if (!fs.existsSync(dst)) {
        fs.mkdirSync(dst);
        fs.chmodSync(dst, fs.statSync(src).mode & 0o7777);
      }
      copyOverlay(src, dst);
    } else if (e.isSymbolicLink()) {
      fs.rmSync(dst, { force: true });
      fs.symlinkSync(fs.readlinkSync(src), dst);
    } else if (e.isFile()) {
      fs.rmSync(dst, { force: true });
      fs.copyFileSync(src, dst);
      fs.chmodSync(dst, fs.statSync(src).mode & 0o7777);
    }
  }
}

function tool(cmd: string, args: string[], what: string, input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 16 * 1024 * 1024 });
  if (r.error) {
    const hint = (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? ' (install it: sudo apt-get install -y e2fsprogs)' : '';
    throw new ImageBuildError(`${what}: could not run ${cmd}: ${r.error.message}${hint}`);
  }
  if (r.status !== 0) throw new ImageBuildError(`${what}: ${cmd} exited with ${r.status}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

function walk(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    out.push(p);
    if (e.isDirectory()) out.push(...walk(root, p));
  }
  return out;
}

/**
 * Lays out the root disk in `staging` (must not exist) and formats `out` (a new sparse file) as
 * ext4 holding it. Every file is owned by root, whoever runs the build.
 */
export function buildRootfs(input: RootfsInput, staging: string, out: string): void {
  fs.mkdirSync(staging);
  stage(staging, rootfsEntries(input));
  if (input.overlay) copyOverlay(input.overlay, staging);
  fs.rmSync(out, { force: true });
  // mke2fs punches holes into a regular file before formatting, so it knows the blocks read as
  // zero and neither writes the inode tables nor leaves them for the guest's lazy init.
  tool('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', ROOTFS_LABEL, '-E', 'root_owner=0:0', '-d', staging, out, `${ROOTFS_SIZE_MIB}M`], 'formatting the root disk');
  // mke2fs -d copies the owners of the staged files: the builder's user unless that is root.
  if (process.getuid?.() !== 0) {
    const script = walk(staging).map((p) => `sif "/${p}" uid 0\nsif "/${p}" gid 0\n`).join('');
    tool('debugfs', ['-w', '-f', '-', out], 'making root own the root disk\'s files', script);
  }
}
