// The 32-bit x86 guest parts for bench/peers.ts (v86 and QEMU i386): Debian bookworm's i386
// kernel (linux-image-686's versioned package, a bzImage) and busybox-static, downloaded with a
// private apt configuration (APT::Architecture=i386; nothing is installed on the host) and
// extracted with dpkg-deb. Cached in $VESSEL_CACHE/peers/i386/ (~/.cache/vessel by default);
// `current.json` there names the files, and a cache it describes is used without any download.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { cacheDir } from '../../images/build-image.js';
import { UsageError } from './options.js';

export const I386_SUITE = 'bookworm';
/** The metapackage that names the current 686 (non-PAE) kernel; v86 has no PAE. */
const KERNEL_META = 'linux-image-686';
const BUSYBOX_PACKAGE = 'busybox-static';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const CACHE_FORMAT = 1;

export interface I386Guest {
  /** The kernel, a bzImage. */
  kernel: string;
  /** `<package>_<version>` of the kernel and of busybox, for the report. */
  kernelPackage: string;
  busybox: string;
  busyboxPackage: string;
}

interface CurrentJson extends I386Guest { format: number }

export function peersCacheDir(): string {
  return path.join(cacheDir(), 'peers');
}

function run(cmd: string, args: string[], what: string, cwd?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd, maxBuffer: 64 << 20, env: { ...process.env, LC_ALL: 'C' } });
  if (r.error) throw new UsageError(`${what}: could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    const tail = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ');
    throw new UsageError(`${what}: \`${cmd} ${args.join(' ')}\` failed: ${tail}`);
  }
  return r.stdout;
}

function readCurrent(file: string): I386Guest | null {
  try {
    const j = JSON.parse(fs.readFileSync(file, 'utf8')) as CurrentJson;
    if (j.format !== CACHE_FORMAT || !fs.statSync(j.kernel).size || !fs.statSync(j.busybox).size) return null;
    return { kernel: j.kernel, kernelPackage: j.kernelPackage, busybox: j.busybox, busyboxPackage: j.busyboxPackage };
  } catch {
    return null;
  }
}

/** apt-get/apt-cache options that use only files under `dir` and the i386 index of I386_SUITE. */
function aptOptions(dir: string): string[] {
  for (const d of ['lists/partial', 'cache/archives/partial']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const sources = path.join(dir, 'sources.list');
  fs.writeFileSync(sources, `deb [arch=i386 signed-by=${KEYRING}] http://deb.debian.org/debian ${I386_SUITE} main\n`);
  return [
    `Dir::Etc::SourceList=${sources}`, 'Dir::Etc::SourceParts=/dev/null', `Dir::State::Lists=${path.join(dir, 'lists')}`,
    'Dir::State::status=/dev/null', `Dir::Cache=${path.join(dir, 'cache')}`, 'APT::Architecture=i386', 'APT::Architectures=i386',
  ].flatMap((o) => ['-o', o]);
}

/** The i386 kernel and busybox, downloaded and extracted when the cache does not have them. */
export function ensureI386Guest(log: (msg: string) => void): I386Guest {
  const base = path.join(peersCacheDir(), 'i386');
  const currentFile = path.join(base, 'current.json');
  const cached = readCurrent(currentFile);
  if (cached) return cached;
  if (!fs.existsSync(KEYRING)) throw new UsageError(`missing ${KEYRING}. Install with: sudo apt-get install -y debian-archive-keyring`);

  const aptDir = path.join(peersCacheDir(), 'apt');
  const o = aptOptions(aptDir);
  log(`downloading Debian ${I386_SUITE} i386 package lists`);
  run('apt-get', [...o, 'update'], `apt-get update (${I386_SUITE}, i386)`);
  // linux-image-686 depends on exactly one linux-image-<abi>-686 package: the kernel.
  const depends = run('apt-cache', [...o, 'depends', KERNEL_META], `apt-cache depends ${KERNEL_META}`);
  const kernelPkg = /Depends: (linux-image-[0-9][^\s]*-686)\s/.exec(depends)?.[1];
  if (!kernelPkg) throw new UsageError(`${KERNEL_META} (${I386_SUITE}, i386) names no kernel package:\n${depends}`);

  const work = fs.mkdtempSync(path.join(base + '-'));
  try {
    log(`downloading ${kernelPkg} and ${BUSYBOX_PACKAGE} (i386)`);
    run('apt-get', [...o, 'download', kernelPkg, BUSYBOX_PACKAGE], 'apt-get download', work);
    const debs = fs.readdirSync(work).filter((f) => f.endsWith('.deb'));
    const deb = (pkg: string) => {
      const f = debs.find((d) => d.startsWith(`${pkg}_`));
      if (!f) throw new UsageError(`apt-get download left no ${pkg}_*.deb in ${work}`);
      return path.join(work, f);
    };
    const root = path.join(work, 'root');
    for (const pkg of [kernelPkg, BUSYBOX_PACKAGE]) run('dpkg-deb', ['-x', deb(pkg), root], `extracting ${path.basename(deb(pkg))}`);
    const vmlinuz = fs.readdirSync(path.join(root, 'boot')).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new UsageError(`${kernelPkg} has no /boot/vmlinuz-*`);
    const version = (pkg: string) => run('dpkg-deb', ['-f', deb(pkg), 'Version'], `reading ${pkg}'s version`).trim();

    const dir = path.join(base, vmlinuz.slice('vmlinuz-'.length));
    fs.mkdirSync(dir, { recursive: true });
    const guest: I386Guest = {
      kernel: path.join(dir, vmlinuz),
      kernelPackage: `${kernelPkg}_${version(kernelPkg)}`,
      busybox: path.join(dir, 'busybox'),
      busyboxPackage: `${BUSYBOX_PACKAGE}_${version(BUSYBOX_PACKAGE)}`,
    };
    fs.copyFileSync(path.join(root, 'boot', vmlinuz), guest.kernel);
    fs.copyFileSync(path.join(root, 'bin', 'busybox'), guest.busybox);
    const tmp = `${currentFile}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify({ format: CACHE_FORMAT, ...guest }, null, 2) + '\n');
    fs.renameSync(tmp, currentFile); // written last: a cache it describes is complete
    log(`i386 guest parts cached in ${dir}`);
    return guest;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
