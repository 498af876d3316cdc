// A full Debian system on a disk: Debian riscv64 "minbase" (what debootstrap --variant=minbase
// installs) plus systemd as init (systemd, systemd-sysv, udev), in a raw ext4 image. It boots with
// the default image's kernel and initramfs and `root=/dev/vda rw`: the initramfs loads the virtio
// and ext4 modules and hands over to the disk's /sbin/init (systemd) with switch_root
// (images/switch-root.ts). bench/systemd.ts times it from spawn to multi-user.target.
//
//   $VESSEL_CACHE/images/debian-systemd/<suite>-v<N>/rootfs.ext4     the disk (sparse, 2 GiB)
//   $VESSEL_CACHE/images/debian-systemd/<suite>-v<N>/manifest.json   what went in (written last)
//
// Built on this amd64 host with mmdebstrap, which runs the riscv64 packages' maintainer scripts
// under qemu-user through binfmt_misc (registered here when missing; this needs root). The tree
// is staged as a directory, the files below are added, and `mke2fs -d` makes the file system.
// Building takes several minutes of CPU (dpkg and systemd's setup run emulated); it is done once
// and cached.
//
// Run as a script: `node dist/images/debian-systemd.js [--force]` prints the disk's path.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { acquireLock, DEFAULT_SUITES, ensureDefaultImage, imagesDir, type ImageInfo } from './build-image.js';
import { ImageBuildError } from './errors.js';

/** Bump when the package list or the files below change, so a cached disk is rebuilt. */
export const SYSTEMD_IMAGE_VERSION = 2;

/** Printed to the console by a oneshot unit once multi-user.target is reached. */
export const SYSTEMD_MARKER = 'VESSEL-SYSTEMD-MULTI-USER';

/**
 * The whole marker line as the unit prints it; group 1 is the guest's uptime in seconds then.
 * Up to the line's end: console output arrives in pieces, and "uptime=7" may be the start of 735.12.
 */
export const SYSTEMD_MARKER_RE = new RegExp(`${SYSTEMD_MARKER} uptime=(\\d+\\.\\d+)\\r?\\n`);

/** The kernel command line's root part for this disk as the guest's only disk. */
export const SYSTEMD_ROOT_APPEND = 'root=/dev/vda rw';

/** Packages on top of minbase (systemd-sysv makes /sbin/init systemd). */
export const SYSTEMD_PACKAGES = ['systemd', 'systemd-sysv', 'udev'];

/** Size of the file system; sparse on the host, so only written blocks take space. */
export const SYSTEMD_DISK_MIB = 2048;

export const SYSTEMD_HOSTNAME = 'vessel-systemd';

/** Host tools the build runs, each with the Debian package that provides it. */
export const SYSTEMD_IMAGE_HOST_TOOLS: ReadonlyArray<{ tool: string; pkg: string }> = [
  { tool: 'mmdebstrap', pkg: 'mmdebstrap' },
  { tool: 'qemu-riscv64-static', pkg: 'qemu-user-static' },
  { tool: 'arch-test', pkg: 'arch-test' },
  { tool: 'mke2fs', pkg: 'e2fsprogs' },
];

/** Paths dpkg leaves out of the image: documentation and translations nobody reads on a test disk. */
const DPKG_EXCLUDES = ['/usr/share/doc/*', '/usr/share/man/*', '/usr/share/info/*', '/usr/share/locale/*', '/usr/share/lintian/*'];

const BINFMT_DIR = '/proc/sys/fs/binfmt_misc';
const BINFMT_CONF = '/usr/lib/binfmt.d/qemu-riscv64.conf';
const LOG_PREFIX = '[vessel systemd image]';

export interface SystemdImage {
  /** The raw ext4 disk; boot a copy of it when the boots must start from the same state. */
  disk: string;
  /** The default image's kernel and initramfs, which boot the disk. */
  kernel: string;
  initrd: string;
  suite: string;
  manifest: SystemdManifest;
}

export interface SystemdManifest {
  version: number;
  suite: string;
  packages: string[];
  /** `dpkg-query -W` of the built tree: name and version, one per line. */
  installed: string;
  diskMiB: number;
  kernelImage: string;
  builtAt: string;
}

export interface SystemdImageOptions {
  quiet?: boolean;
  force?: boolean;
  /** Suites tried in order (default forky, then sid). */
  suites?: string[];
  mirror?: string;
}

/** `mtimeS`: the file's modification time, whole seconds since the epoch (else the time of the build). */
export type StagedFile = { path: string; data: string; mode: number; mtimeS?: number } | { path: string; symlink: string };

/**
 * The files added to the tree after mmdebstrap: hostname, fstab, a machine id (so no boot is a
 * "first boot" with its presets and setup), /etc/.updated and /var/.updated stamped with /usr's
 * modification time (else every boot of a fresh copy runs the after-an-update units: ldconfig,
 * the journal catalog, sysusers), root logged in on the serial console, and the oneshot unit
 * that prints the marker when multi-user.target has been reached.
 */
export function systemdImageFiles(machineId: string, usrMtimeNs: bigint): StagedFile[] {
  if (!/^[0-9a-f]{32}$/.test(machineId)) throw new ImageBuildError(`machine id must be 32 lowercase hex digits, got "${machineId}"`);
  const unit = 'vessel-boot-marker.service';
  // What systemd-update-done writes. ConditionNeedsUpdate= compares the file's mtime with /usr's,
  // seconds first: one second later than /usr reads as "updated" whatever the nanoseconds.
  const stampS = Number(usrMtimeNs / 1_000_000_000n) + 1;
  const updated = `# This file was created by systemd-update-done. The timestamp below is the\n# modification time of /usr for which the most recent updates of /etc and\n# /var have been applied.\nTIMESTAMP_NSEC=${usrMtimeNs}\n`;
  return [
    { path: 'etc/.updated', data: updated, mode: 0o644, mtimeS: stampS },
    { path: 'var/.updated', data: updated, mode: 0o644, mtimeS: stampS },
    { path: 'etc/hostname', data: `${SYSTEMD_HOSTNAME}\n`, mode: 0o644 },
    { path: 'etc/hosts', data: `127.0.0.1 localhost\n127.0.1.1 ${SYSTEMD_HOSTNAME}\n::1 localhost ip6-localhost ip6-loopback\n`, mode: 0o644 },
    // The initramfs mounted the root read-write already; no fsck pass (nothing to check it with before switch_root).
    { path: 'etc/fstab', data: '/dev/vda / ext4 rw,relatime 0 0\n', mode: 0o644 },
    { path: 'etc/machine-id', data: `${machineId}\n`, mode: 0o444 },
    {
      path: 'etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf',
      data: '[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200,57600,38400,9600 - $TERM\n',
      mode: 0o644,
    },
    {
      path: `etc/systemd/system/${unit}`,
      data: [
        '[Unit]',
        'Description=Tell the console that multi-user.target is reached (Vessel benchmark marker)',
        'After=multi-user.target',
        '',
        '[Service]',
        'Type=oneshot',
        `ExecStart=/bin/sh -c 'echo "${SYSTEMD_MARKER} uptime=$(cut -d" " -f1 /proc/uptime)" >/dev/console'`,
        '',
        '[Install]',
        'WantedBy=multi-user.target',
        '',
      ].join('\n'),
      mode: 0o644,
    },
    { path: `etc/systemd/system/multi-user.target.wants/${unit}`, symlink: `/etc/systemd/system/${unit}` },
  ];
}

export function systemdImageDir(suite: string): string {
  return path.join(imagesDir(), 'debian-systemd', `${suite}-v${SYSTEMD_IMAGE_VERSION}`);
}

function makeLogger(quiet: boolean): (msg: string) => void {
  return quiet ? () => {} : (msg) => process.stderr.write(`${LOG_PREFIX} ${msg}\n`);
}

function readManifest(dir: string): SystemdManifest | null {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as SystemdManifest;
    if (m.version !== SYSTEMD_IMAGE_VERSION || !fs.statSync(path.join(dir, 'rootfs.ext4')).isFile()) return null;
    return m;
  } catch {
    return null;
  }
}

function cached(suites: string[]): { dir: string; manifest: SystemdManifest } | null {
  for (const suite of suites) {
    const dir = systemdImageDir(suite);
    const manifest = readManifest(dir);
    if (manifest) return { dir, manifest };
  }
  return null;
}

/** The disk with its kernel and initramfs, building the disk first unless a complete one is cached. */
export async function ensureSystemdImage(opts: SystemdImageOptions = {}): Promise<SystemdImage> {
  const log = makeLogger(opts.quiet ?? false);
  const suites = opts.suites ?? DEFAULT_SUITES.filter((s) => s !== 'trixie');
  const base: ImageInfo = await ensureDefaultImage({ quiet: true });
  const found = async (): Promise<SystemdImage | null> => {
    const c = opts.force ? null : cached(suites);
    return c ? { disk: path.join(c.dir, 'rootfs.ext4'), kernel: base.kernel, initrd: base.initrd, suite: c.manifest.suite, manifest: c.manifest } : null;
  };
  const hit = await found();
  if (hit) return hit;
  fs.mkdirSync(path.join(imagesDir(), 'debian-systemd'), { recursive: true });
  const release = await acquireLock(path.join(imagesDir(), 'debian-systemd', '.build.lock'), log);
  try {
    const again = await found(); // another process may have built it while we waited
    if (again) return again;
    checkHostTools();
    ensureRiscv64Binfmt(log);
    const failures: string[] = [];
    for (const suite of suites) {
      try {
        const manifest = await buildDisk(suite, opts.mirror ?? 'http://deb.debian.org/debian', base, log, opts.quiet ?? false);
        return { disk: path.join(systemdImageDir(suite), 'rootfs.ext4'), kernel: base.kernel, initrd: base.initrd, suite, manifest };
      } catch (e) {
        if (!(e instanceof ImageBuildError)) throw e;
        log(`${suite}: ${e.message}`);
        failures.push(`${suite}: ${e.message}`);
      }
    }
    throw new ImageBuildError(`could not build the Debian systemd disk from any suite:\n  ${failures.join('\n  ')}`);
  } finally {
    release();
  }
}

function onPath(tool: string): boolean {
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter), '/usr/sbin', '/sbin', '/usr/bin'];
  return dirs.some((d) => d && fs.existsSync(path.join(d, tool)));
}

function checkHostTools(): void {
  const missing = SYSTEMD_IMAGE_HOST_TOOLS.filter((t) => !onPath(t.tool));
  if (missing.length) {
    throw new ImageBuildError(`missing host tool(s) ${missing.map((t) => t.tool).join(', ')}: sudo apt-get install -y ${missing.map((t) => t.pkg).join(' ')}`);
  }
  if (process.getuid?.() !== 0) {
    throw new ImageBuildError('building the Debian systemd disk needs root (mmdebstrap in root mode, binfmt_misc for qemu-user, files owned by root)');
  }
}

/**
 * Makes the kernel run riscv64 ELF files with qemu-riscv64-static: mounts binfmt_misc if it is
 * not, and registers Debian's qemu-user-static entry (flag F: the interpreter is opened now, so
 * it works inside mmdebstrap's chroot) if no riscv64 entry is there.
 */
export function ensureRiscv64Binfmt(log: (msg: string) => void): void {
  if (!fs.existsSync(path.join(BINFMT_DIR, 'register'))) {
    const r = spawnSync('mount', ['-t', 'binfmt_misc', 'binfmt_misc', BINFMT_DIR], { encoding: 'utf8' });
    if (r.status !== 0) throw new ImageBuildError(`cannot mount binfmt_misc on ${BINFMT_DIR} (needed to run riscv64 programs with qemu-user): ${(r.stderr || r.error?.message || '').trim()}`);
    log(`mounted binfmt_misc on ${BINFMT_DIR}`);
  }
  const entry = path.join(BINFMT_DIR, 'qemu-riscv64');
  if (fs.existsSync(entry)) {
    if (!/^enabled/m.test(fs.readFileSync(entry, 'utf8'))) throw new ImageBuildError(`${entry} is registered but disabled (echo 1 > ${entry})`);
    return;
  }
  if (!fs.existsSync(BINFMT_CONF)) throw new ImageBuildError(`${BINFMT_CONF} is missing: sudo apt-get install -y qemu-user-static`);
  const line = fs.readFileSync(BINFMT_CONF, 'utf8').split('\n').find((l) => l.startsWith(':'));
  if (!line) throw new ImageBuildError(`${BINFMT_CONF} holds no binfmt_misc registration line`);
  fs.writeFileSync(path.join(BINFMT_DIR, 'register'), line);
  log(`registered qemu-riscv64 in binfmt_misc (${BINFMT_CONF})`);
}

/** Runs a command with its output passed to stderr (unless quiet); rejects with its last lines. */
function runTool(cmd: string, args: string[], what: string, quiet: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let tail = '';
    const onData = (chunk: Buffer): void => {
      if (!quiet) process.stderr.write(chunk);
      tail = (tail + chunk.toString('utf8')).slice(-2000);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => reject(new ImageBuildError(`${what}: could not run ${cmd}: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new ImageBuildError(`${what}: ${cmd} exited with ${code}: ${tail.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

function stageFiles(root: string, files: StagedFile[]): void {
  for (const f of files) {
    const p = path.join(root, f.path);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.rmSync(p, { force: true });
    if ('symlink' in f) fs.symlinkSync(f.symlink, p);
    else {
      fs.writeFileSync(p, f.data);
      fs.chmodSync(p, f.mode);
      if (f.mtimeS !== undefined) fs.utimesSync(p, f.mtimeS, f.mtimeS);
    }
  }
}

async function buildDisk(suite: string, mirror: string, base: ImageInfo, log: (msg: string) => void, quiet: boolean): Promise<SystemdManifest> {
  const dir = systemdImageDir(suite);
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  const tree = path.join(tmp, 'tree');
  try {
    log(`building ${suite} minbase + ${SYSTEMD_PACKAGES.join(', ')} with mmdebstrap (qemu-user; several minutes)`);
    await runTool('mmdebstrap', [
      '--mode=root', '--format=directory', '--variant=minbase', `--include=${SYSTEMD_PACKAGES.join(',')}`, '--arch=riscv64',
      // A mirror snapshot's Release file may be past its Valid-Until on a host whose clock runs ahead.
      '--aptopt=Acquire::Check-Valid-Until "false"',
      ...DPKG_EXCLUDES.map((p) => `--dpkgopt=path-exclude=${p}`),
      suite, tree, mirror,
    ], `mmdebstrap ${suite}`, quiet);
    const usrMtimeNs = fs.statSync(path.join(tree, 'usr'), { bigint: true }).mtimeNs;
    stageFiles(tree, systemdImageFiles(randomBytes(16).toString('hex'), usrMtimeNs));
    const installed = spawnSync('dpkg-query', [`--admindir=${path.join(tree, 'var/lib/dpkg')}`, '-W'], { encoding: 'utf8' }).stdout ?? '';
    const disk = path.join(tmp, 'rootfs.ext4');
    log(`formatting ${SYSTEMD_DISK_MIB} MiB ext4 from the tree`);
    await runTool('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'vessel-systemd', '-d', tree, disk, `${SYSTEMD_DISK_MIB}M`], 'formatting the disk', quiet);
    fs.rmSync(tree, { recursive: true, force: true });
    const manifest: SystemdManifest = {
      version: SYSTEMD_IMAGE_VERSION, suite, packages: SYSTEMD_PACKAGES, installed, diskMiB: SYSTEMD_DISK_MIB,
      kernelImage: base.version, builtAt: new Date().toISOString(),
    };
    fs.writeFileSync(path.join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
    log(`built ${path.join(dir, 'rootfs.ext4')}`);
    return manifest;
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

function isMain(): boolean {
  return !!process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
}

if (isMain()) {
  ensureSystemdImage({ force: process.argv.includes('--force') }).then(
    (img) => process.stdout.write(`${img.disk}\n`),
    (e: unknown) => {
      process.stderr.write(`${LOG_PREFIX} ${e instanceof ImageBuildError ? e.message : e instanceof Error ? e.stack : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
