// Vessel's guest image builder.
//
// Downloads Debian's riscv64 kernel (linux-image-riscv64 and the versioned packages it
// pulls in) and busybox-static through a private apt configuration, extracts them with
// `dpkg-deb -x` (nothing is installed on the host), and builds:
//
//   $VESSEL_CACHE/images/<kernel-version>/Image              the kernel, copied as shipped
//   $VESSEL_CACHE/images/<kernel-version>/initramfs.cpio.gz  busybox + /init + virtio/ext4 modules
//   $VESSEL_CACHE/images/<kernel-version>/rootfs.ext4        the root disk (images/rootfs.ts), persistent
//   $VESSEL_CACHE/images/<kernel-version>/manifest.json      what went in (written last)
//   $VESSEL_CACHE/images/default.json                        points at the image to boot
//
// VESSEL_CACHE defaults to $HOME/.cache/vessel. A complete cache is a fast path: nothing is
// downloaded. Every write goes to a temporary name first and is renamed into place, so an
// interrupted build never leaves something that looks complete.
//
// Run as a script (`npm run image`, i.e. `node dist/images/build-image.js [--force] [--quiet]`)
// or import `ensureDefaultImage()`.

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';

import { ImageBuildError } from './errors.js';
import { buildRootfs, ROOTFS_SIZE_MIB } from './rootfs.js';
import { ROOTFS_MARKER } from './rootfs-files.js';
import { SWITCH_ROOT_SH } from './switch-root.js';

export { ImageBuildError, ROOTFS_MARKER };

/** Bump when the initramfs or root disk layout or /init changes, so cached images are rebuilt. */
export const BUILDER_VERSION = 5;

/** Suites tried in order; the next one is used when a suite's index or packages fail. */
export const DEFAULT_SUITES = ['forky', 'sid', 'trixie'];

/** Modules the guest loads at boot, in load order. Their `depends=` are added before them. */
export const GUEST_MODULES = [
  'virtio_mmio',
  'virtio_blk',
  'failover',
  'net_failover',
  'virtio_net',
  'virtio_balloon',
  'virtio-rng',
  'jbd2',
  'mbcache',
  'crc16',
  'ext4',
];

export const BOOT_MARKER = 'VESSEL-INIT-OK';

/**
 * Debian packages unpacked onto the root disk with everything they depend on: an SSH server
 * (dropbear, started by rcS) for `vessel run --net user,hostfwd=tcp::2222-:22`, the QEMU guest
 * agent (qemu-ga, started by rcS when the VM has its virtio-console port), and e2fsprogs for
 * `resize2fs` (the host grows a mounted ext4 online after it grew the disk, through the agent).
 * Optional: the image is built without them (and says so) when they cannot be had.
 */
export const ROOTFS_PACKAGES = ['dropbear-bin', 'qemu-guest-agent', 'e2fsprogs'];

/** Package files the root disk does without: documentation, translations, iconv modules. */
const ROOTFS_PRUNE = ['usr/share/doc', 'usr/share/man', 'usr/share/info', 'usr/share/lintian', 'usr/share/locale', 'usr/lib/riscv64-linux-gnu/gconv'];

const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const LOG_PREFIX = '[vessel image]';

export interface ImageInfo {
  kernel: string;
  initrd: string;
  /** The root disk (raw ext4), booted as /dev/vda by `vessel run` without --kernel/--initrd/--disk. */
  rootfs: string;
  version: string;
}

export interface DefaultImageJson {
  version: string;
  kernel: string;
  initrd: string;
  rootfs: string;
  suite: string;
  busybox: string;
  kernelPackage: string;
  modules: string[];
  builder: number;
  builtAt: string;
}

export interface EnsureOptions {
  /** Print nothing but errors (apt's output is captured, not passed through). */
  quiet?: boolean;
  /** Rebuild even if the cache is complete. */
  force?: boolean;
}


export function cacheDir(): string {
  const env = process.env['VESSEL_CACHE'];
  if (env && env.length > 0) return path.resolve(env);
  return path.join(os.homedir(), '.cache', 'vessel');
}

export function imagesDir(): string {
  return path.join(cacheDir(), 'images');
}

export function defaultJsonPath(): string {
  return path.join(imagesDir(), 'default.json');
}

// ---------------------------------------------------------------------------------------
// Fast path

function fileNonEmpty(p: string): boolean {
  try {
    return fs.statSync(p).isFile() && fs.statSync(p).size > 0;
  } catch {
    return false;
  }
}

/** The cached default image, if default.json names files that exist and the builder matches. */
export function readDefaultImage(): DefaultImageJson | null {
  let json: DefaultImageJson;
  try {
    json = JSON.parse(fs.readFileSync(defaultJsonPath(), 'utf8')) as DefaultImageJson;
  } catch {
    return null;
  }
  if (json.builder !== BUILDER_VERSION) return null;
  if (typeof json.kernel !== 'string' || typeof json.initrd !== 'string' || typeof json.rootfs !== 'string') return null;
  if (!fileNonEmpty(json.kernel) || !fileNonEmpty(json.initrd) || !fileNonEmpty(json.rootfs)) return null;
  if (!fileNonEmpty(path.join(path.dirname(json.kernel), 'manifest.json'))) return null;
  return json;
}

/**
 * Returns the default guest image, building it first if the cache does not hold a complete
 * one. Throws ImageBuildError (a message meant for a person) when it cannot.
 */
export async function ensureDefaultImage(opts: EnsureOptions = {}): Promise<ImageInfo> {
  const log = makeLogger(opts.quiet ?? false);
  if (!opts.force) {
    const cached = readDefaultImage();
    if (cached) {
      log(`using cached image ${cached.version} (${cached.suite}) in ${path.dirname(cached.kernel)}`);
      return imageInfo(cached);
    }
  }
  fs.mkdirSync(imagesDir(), { recursive: true });
  const release = await acquireLock(path.join(imagesDir(), '.build.lock'), log);
  try {
    // Another process may have finished the build while we waited for the lock.
    if (!opts.force) {
      const cached = readDefaultImage();
      if (cached) {
        log(`using cached image ${cached.version} (${cached.suite}) in ${path.dirname(cached.kernel)}`);
        return imageInfo(cached);
      }
    }
    removeStaleTemporaries(imagesDir());
    const built = await buildImage(opts, log);
    return imageInfo(built);
  } finally {
    release();
  }
}

function imageInfo(m: DefaultImageJson): ImageInfo {
  return { kernel: m.kernel, initrd: m.initrd, rootfs: m.rootfs, version: m.version };
}

// ---------------------------------------------------------------------------------------
// Logging, processes, host tools

type Logger = (msg: string) => void;

function makeLogger(quiet: boolean): Logger {
  return quiet ? () => {} : (msg: string) => process.stderr.write(`${LOG_PREFIX} ${msg}\n`);
}

function which(tool: string): boolean {
  const dirs = (process.env['PATH'] ?? '').split(path.delimiter);
  for (const extra of ['/usr/sbin', '/sbin', '/usr/bin', '/bin']) if (!dirs.includes(extra)) dirs.push(extra);
  for (const d of dirs) {
    if (!d) continue;
    try {
      fs.accessSync(path.join(d, tool), fs.constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

function checkHostTools(): void {
  const needed: Array<[string, string]> = [
    ['apt-get', 'apt'],
    ['apt-cache', 'apt'],
    ['dpkg-deb', 'dpkg'],
    ['xz', 'xz-utils'],
  ];
  const missing = needed.filter(([tool]) => !which(tool));
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map(([, pkg]) => pkg))];
    throw new ImageBuildError(
      `missing host tool(s): ${missing.map(([t]) => t).join(', ')}. The image builder needs Debian's apt and dpkg ` +
        `(a Debian or Ubuntu host). Install with: sudo apt-get install -y ${pkgs.join(' ')}  — then run \`npm run image\`.`,
    );
  }
  if (!fs.existsSync(KEYRING)) {
    throw new ImageBuildError(
      `missing ${KEYRING} (Debian's archive signing keys). Install with: sudo apt-get install -y debian-archive-keyring  — then run \`npm run image\`.`,
    );
  }
}

interface RunResult {
  code: number;
  output: string;
}

/** Runs a command, passing its output through to stderr (unless quiet) and capturing it. */
function run(cmd: string, args: string[], opts: { cwd?: string; quiet: boolean }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' },
    });
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (!opts.quiet) process.stderr.write(chunk);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err) => reject(new ImageBuildError(`could not run ${cmd}: ${err.message}`)));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), output }));
  });
}

/** Runs a command silently and returns its stdout; throws with its stderr on failure. */
function capture(cmd: string, args: string[], what: string): string {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, LC_ALL: 'C' },
  });
  if (r.error) throw new ImageBuildError(`${what}: could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new ImageBuildError(`${what}: \`${cmd} ${args.join(' ')}\` failed: ${lastLines(r.stderr || r.stdout, 3)}`);
  }
  return r.stdout;
}

function lastLines(text: string, n: number): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  return lines.slice(-n).join(' | ') || '(no output)';
}

// ---------------------------------------------------------------------------------------
// Build lock (two test processes may ask for the image at once)

/** True while process `pid` exists (EPERM: it exists but is not ours to signal). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function acquireLock(lockPath: string, log: Logger): Promise<() => void> {
  let announced = false;
  for (;;) {
    try {
      const fd = fs.openSync(lockPath, 'wx');
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      return () => {
        try {
          fs.unlinkSync(lockPath);
        } catch {
          /* already gone */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder = NaN;
    try {
      holder = Number.parseInt(fs.readFileSync(lockPath, 'utf8'), 10);
    } catch {
      continue; // vanished between open and read
    }
    if (!Number.isFinite(holder) || !pidAlive(holder)) {
      // Stale lock (a build was killed). A lock just created may not hold its pid yet: give it a moment.
      const age = Date.now() - safeMtime(lockPath);
      if (age > 2000) {
        try {
          fs.unlinkSync(lockPath);
        } catch {
          /* someone else removed it */
        }
        continue;
      }
    } else if (!announced) {
      log(`another build (pid ${holder}) is running; waiting for it`);
      announced = true;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Leftovers of interrupted builds; only called while holding the build lock. */
function removeStaleTemporaries(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    if (/^\.build-|^\..*\.tmp-|\.old-\d+$|\.tmp-\d+$/.test(name)) {
      fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    }
  }
}

function safeMtime(p: string): number {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------
// Private apt configuration

class Apt {
  readonly dir: string;
  constructor(
    readonly suite: string,
    readonly mirror: string,
    readonly quiet: boolean,
  ) {
    this.dir = path.join(cacheDir(), 'apt', suite);
    fs.mkdirSync(path.join(this.dir, 'lists', 'partial'), { recursive: true });
    fs.mkdirSync(path.join(this.dir, 'cache', 'archives', 'partial'), { recursive: true });
    fs.writeFileSync(
      path.join(this.dir, 'sources.list'),
      `deb [arch=riscv64 signed-by=${KEYRING}] ${mirror} ${suite} main\n`,
    );
  }

  options(): string[] {
    const o: Record<string, string> = {
      'Dir::Etc::SourceList': path.join(this.dir, 'sources.list'),
      'Dir::Etc::SourceParts': '/dev/null',
      'Dir::Etc::Preferences': '/dev/null',
      'Dir::Etc::PreferencesParts': '/dev/null',
      'Dir::State::Lists': path.join(this.dir, 'lists'),
      'Dir::State::status': '/dev/null',
      'Dir::Cache': path.join(this.dir, 'cache'),
      'APT::Architecture': 'riscv64',
      'APT::Architectures': 'riscv64',
      'Acquire::Languages': 'none',
      'APT::Get::List-Cleanup': 'true',
    };
    // As root, apt drops to user _apt for downloads, which cannot write into root's home.
    if (process.getuid?.() === 0) o['APT::Sandbox::User'] = 'root';
    return Object.entries(o).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
  }

  async update(): Promise<void> {
    const r = await run('apt-get', [...this.options(), '-q', 'update'], { quiet: this.quiet });
    // apt 2.x exits 0 when an index failed to download ("W: Failed to fetch ..."), so read the output too.
    const failed =
      r.code !== 0 ||
      /^(E:|W: Failed to fetch|W: Some index files failed)/m.test(r.output) ||
      /unexpected size|Mirror sync in progress|Hash Sum mismatch/i.test(r.output);
    if (failed) {
      const reasons = new Set<string>();
      for (const line of r.output.split('\n')) {
        const fetch = /^W: Failed to fetch \S+\s+(.*)$/.exec(line.trim());
        if (fetch && fetch[1]) reasons.add(fetch[1].trim());
        else if (/^E:/.test(line) || /unexpected size|Mirror sync/i.test(line)) reasons.add(line.replace(/^E:\s*/, '').trim());
      }
      const errLine = [...reasons].slice(0, 2).join('; ') || lastLines(r.output, 2);
      throw new ImageBuildError(`could not fetch the ${this.suite} riscv64 package index: ${errLine}`);
    }
  }

  /** Direct Depends/PreDepends of a package (real package names only). */
  depends(pkg: string): string[] {
    const out = capture(
      'apt-cache',
      [...this.options(), 'depends', '--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances', pkg],
      `looking up ${pkg} in ${this.suite}`,
    );
    const deps: string[] = [];
    for (const line of out.split('\n')) {
      const m = /^\s*\|?(?:Pre)?Depends:\s*(\S+)/.exec(line);
      if (m && m[1] && !m[1].startsWith('<')) deps.push(m[1]);
    }
    return deps;
  }

  /** The candidate version of a package, or null if the suite does not have it. */
  version(pkg: string): string | null {
    const r = spawnSync('apt-cache', [...this.options(), 'show', '--no-all-versions', pkg], {
      encoding: 'utf8',
      env: { ...process.env, LC_ALL: 'C' },
      maxBuffer: 16 * 1024 * 1024,
    });
    if (r.status !== 0) return null;
    const m = /^Version:\s*(\S+)/m.exec(r.stdout);
    return m && m[1] ? m[1] : null;
  }

  async download(pkgs: string[], dest: string): Promise<string[]> {
    fs.mkdirSync(dest, { recursive: true });
    const r = await run('apt-get', [...this.options(), '-q', 'download', ...pkgs], { cwd: dest, quiet: this.quiet });
    if (r.code !== 0) {
      throw new ImageBuildError(
        `downloading ${pkgs.join(', ')} from ${this.suite} (riscv64) failed: ${lastLines(r.output, 2)}`,
      );
    }
    const files = fs.readdirSync(dest).filter((f) => f.endsWith('.deb'));
    const result: string[] = [];
    for (const pkg of pkgs) {
      const f = files.find((name) => name.startsWith(`${pkg}_`));
      if (!f) throw new ImageBuildError(`apt-get download said it fetched ${pkg} but no ${pkg}_*.deb is in ${dest}`);
      result.push(path.join(dest, f));
    }
    return result;
  }
}

interface ResolvedPackages {
  kernelRelease: string; // e.g. 7.2.12+deb14-riscv64 (the modules directory name, `uname -r`)
  kernelPackageVersion: string; // e.g. 7.2.12-1
  kernelPackages: string[]; // linux-image-<ver>, linux-binary-<ver>, linux-modules-<ver>, linux-base-<ver>
  busyboxVersion: string;
}

function resolvePackages(apt: Apt): ResolvedPackages {
  const meta = 'linux-image-riscv64';
  if (!apt.version(meta)) throw new ImageBuildError(`package ${meta} not found in ${apt.suite} (riscv64)`);
  const busyboxVersion = apt.version('busybox-static');
  if (!busyboxVersion) throw new ImageBuildError(`package busybox-static not found in ${apt.suite} (riscv64)`);

  const versioned = apt.depends(meta).filter((d) => /^linux-image-\d/.test(d));
  const image = versioned[0];
  if (!image) {
    throw new ImageBuildError(`${meta} in ${apt.suite} depends on no linux-image-<version> package (apt-cache depends ${meta})`);
  }
  const kernelRelease = image.slice('linux-image-'.length);
  // Newer Debian kernels split linux-image-<ver> (now empty) into linux-binary-, linux-modules- and
  // linux-base-<ver>; older ones ship everything in linux-image-<ver>. Take whichever exist.
  const parts = apt
    .depends(image)
    .filter((d) => d.startsWith('linux-') && d.endsWith(`-${kernelRelease}`) && d !== image && !d.includes('headers'));
  const kernelPackages = [image, ...new Set(parts)];
  const kernelPackageVersion = apt.version(image) ?? 'unknown';
  return { kernelRelease, kernelPackageVersion, kernelPackages, busyboxVersion };
}

// ---------------------------------------------------------------------------------------
// Kernel and modules

function findKernel(root: string, release: string): string {
  const candidates = [
    `usr/lib/modules/${release}/vmlinuz`,
    `lib/modules/${release}/vmlinuz`,
    `boot/vmlinuz-${release}`,
    `boot/vmlinux-${release}`,
    `usr/lib/linux/${release}/Image`,
  ];
  for (const c of candidates) {
    const p = path.join(root, c);
    if (fileNonEmpty(p)) return p;
  }
  throw new ImageBuildError(`no kernel found in the downloaded packages (looked for ${candidates.join(', ')})`);
}

/** The kernel as a RISC-V Image ("MZ" at 0 for the PE stub, "RSC\x05" at 0x38). Decompresses a gzip'd one. */
function readKernelImage(file: string): Buffer {
  let data = fs.readFileSync(file);
  if (data[0] === 0x1f && data[1] === 0x8b) data = zlib.gunzipSync(data);
  if (data.length < 0x40 || data.subarray(0x38, 0x3c).toString('latin1') !== 'RSC\x05') {
    throw new ImageBuildError(`${file} is not a RISC-V Linux Image (no "RSC\\x05" magic at 0x38)`);
  }
  return data;
}

function findModulesDir(root: string, release: string): string {
  for (const c of [`usr/lib/modules/${release}`, `lib/modules/${release}`]) {
    const p = path.join(root, c);
    if (fs.existsSync(path.join(p, 'kernel'))) return p;
  }
  throw new ImageBuildError(`no modules directory for ${release} in the downloaded packages`);
}

const MODULE_EXT = /\.ko(\.xz|\.zst|\.gz)?$/;

/** Module name as the kernel knows it: file name without extension, '-' folded to '_'. */
export function moduleName(file: string): string {
  return path.basename(file).replace(MODULE_EXT, '').replace(/-/g, '_');
}

function walk(dir: string, out: string[]): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (MODULE_EXT.test(e.name)) out.push(p);
  }
  return out;
}

function decompressModule(file: string): Buffer {
  if (file.endsWith('.ko')) return fs.readFileSync(file);
  if (file.endsWith('.gz')) return zlib.gunzipSync(fs.readFileSync(file));
  const tool = file.endsWith('.xz') ? ['xz', '-dc'] : ['zstd', '-dcq'];
  const r = spawnSync(tool[0]!, [...tool.slice(1), file], { maxBuffer: 256 * 1024 * 1024 });
  if (r.error || r.status !== 0) {
    throw new ImageBuildError(
      `could not decompress ${path.basename(file)} with ${tool[0]}: ${r.error?.message ?? r.stderr.toString().trim()}` +
        (r.error ? ` (install it: sudo apt-get install -y ${tool[0] === 'xz' ? 'xz-utils' : 'zstd'})` : ''),
    );
  }
  return r.stdout;
}

/** The key=value strings of an ELF64 little-endian module's .modinfo section. */
export function readModinfo(elf: Buffer): Map<string, string[]> {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) {
    throw new Error('not an ELF64 little-endian file');
  }
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  const sec = (i: number) => {
    const b = shoff + i * shentsize;
    return { name: elf.readUInt32LE(b), offset: Number(elf.readBigUInt64LE(b + 0x18)), size: Number(elf.readBigUInt64LE(b + 0x20)) };
  };
  const strtab = sec(shstrndx);
  const info = new Map<string, string[]>();
  for (let i = 0; i < shnum; i++) {
    const s = sec(i);
    const nameStart = strtab.offset + s.name;
    const nameEnd = elf.indexOf(0, nameStart);
    if (elf.toString('latin1', nameStart, nameEnd) !== '.modinfo') continue;
    for (const entry of elf.toString('latin1', s.offset, s.offset + s.size).split('\0')) {
      const eq = entry.indexOf('=');
      if (eq <= 0) continue;
      const k = entry.slice(0, eq);
      const list = info.get(k) ?? [];
      list.push(entry.slice(eq + 1));
      info.set(k, list);
    }
  }
  return info;
}

interface ResolvedModule {
  name: string; // kernel name (underscores)
  fileName: string; // file name in the initramfs, e.g. virtio-rng.ko
  data: Buffer; // uncompressed .ko
  depends: string[];
}

/**
 * Resolves the wanted modules and their `depends=` (recursively), plus `softdep=pre:` modules
 * that exist as modules (found by name or alias), in a valid load order.
 */
function resolveModules(modDir: string, wanted: string[], log: Logger): { modules: ResolvedModule[]; builtin: string[] } {
  const byName = new Map<string, string>();
  for (const f of walk(path.join(modDir, 'kernel'), [])) byName.set(moduleName(f), f);
  const builtinFile = path.join(modDir, 'modules.builtin');
  const builtin = new Set(
    fs.existsSync(builtinFile)
      ? fs
          .readFileSync(builtinFile, 'utf8')
          .split('\n')
          .filter((l) => l)
          .map(moduleName)
      : [],
  );

  const infoCache = new Map<string, { data: Buffer; info: Map<string, string[]> }>();
  const load = (name: string) => {
    let e = infoCache.get(name);
    if (!e) {
      const file = byName.get(name)!;
      const data = decompressModule(file);
      let info: Map<string, string[]>;
      try {
        info = readModinfo(data);
      } catch (err) {
        throw new ImageBuildError(`cannot read .modinfo of ${path.basename(file)}: ${(err as Error).message}`);
      }
      e = { data, info };
      infoCache.set(name, e);
    }
    return e;
  };

  // softdep names are often aliases (jbd2: "pre: crypto-crc32c" is crc32c-cryptoapi's alias).
  const findByAlias = (alias: string): string | null => {
    const direct = alias.replace(/-/g, '_');
    if (byName.has(direct)) return direct;
    const stem = alias.replace(/^crypto-/, '').replace(/-/g, '_');
    for (const name of byName.keys()) {
      if (!name.includes(stem)) continue;
      if ((load(name).info.get('alias') ?? []).includes(alias)) return name;
    }
    return null;
  };

  const order: string[] = [];
  const skippedBuiltin: string[] = [];
  const visiting = new Set<string>();
  const visit = (raw: string, required: boolean, chain: string[]) => {
    const name = raw.replace(/-/g, '_');
    if (order.includes(name) || visiting.has(name)) return;
    if (!byName.has(name)) {
      if (builtin.has(name)) {
        if (!skippedBuiltin.includes(name)) skippedBuiltin.push(name);
        return;
      }
      if (required) {
        throw new ImageBuildError(`kernel module ${name} (needed by ${chain.join(' -> ') || 'the guest'}) is neither a module nor built in`);
      }
      return;
    }
    visiting.add(name);
    const { info } = load(name);
    for (const dep of (info.get('depends') ?? []).flatMap((d) => d.split(',')).filter((d) => d)) {
      visit(dep, true, [...chain, name]);
    }
    for (const sd of info.get('softdep') ?? []) {
      const m = /pre:\s*([^:]*?)(?:\s+post:|$)/.exec(sd);
      for (const alias of (m?.[1] ?? '').split(/\s+/).filter((a) => a)) {
        const found = findByAlias(alias);
        if (found) visit(found, false, [...chain, name]);
        else log(`softdep ${alias} of ${name} is not a module (built in or absent); skipped`);
      }
    }
    visiting.delete(name);
    order.push(name);
  };
  for (const w of wanted) visit(w, true, []);

  const modules = order.map((name) => {
    const { data, info } = load(name);
    const file = byName.get(name)!;
    return {
      name,
      fileName: path.basename(file).replace(MODULE_EXT, '.ko'),
      data,
      depends: (info.get('depends') ?? []).flatMap((d) => d.split(',')).filter((d) => d),
    };
  });
  return { modules, builtin: skippedBuiltin };
}

// ---------------------------------------------------------------------------------------
// Busybox applets

/**
 * Busybox keeps its applet names as one sorted, NUL-separated table that starts with "[" and
 * "[[". Reading it lets the initramfs carry the applet symlinks without running the riscv64
 * binary on the host. Returns [] if the table is not found (then /init runs --install).
 */
export function busyboxApplets(bin: Buffer): string[] {
  const start = bin.indexOf(Buffer.from('[\0[[\0', 'latin1'));
  if (start < 0) return [];
  const names: string[] = [];
  let i = start;
  for (;;) {
    const end = bin.indexOf(0, i);
    if (end <= i) break;
    const name = bin.toString('latin1', i, end);
    if (!/^[a-z0-9_.\-[]+$/.test(name)) break;
    if (names.length > 0 && name <= names[names.length - 1]!) break;
    names.push(name);
    i = end + 1;
  }
  const essential = ['sh', 'init', 'mount', 'insmod', 'poweroff'];
  return essential.every((e) => names.includes(e)) && names.length > 50 ? names : [];
}

// ---------------------------------------------------------------------------------------
// cpio (newc) writer

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Buffer; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; major: number; minor: number; mode?: number };

/** A cpio "newc" archive, owned by root, with a fixed mtime (reproducible). */
export function cpioNewc(entries: CpioEntry[], mtime = 0): Buffer {
  const chunks: Buffer[] = [];
  let ino = 1;
  const pad4 = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const hex = (n: number) => (n >>> 0).toString(16).padStart(8, '0');
  const emit = (name: string, mode: number, data: Buffer, nlink: number, rmaj = 0, rmin = 0) => {
    const nameBuf = Buffer.from(name + '\0', 'utf8');
    const header =
      '070701' +
      hex(name === 'TRAILER!!!' ? 0 : ino++) +
      hex(mode) +
      hex(0) + // uid
      hex(0) + // gid
      hex(nlink) +
      hex(mtime) +
      hex(data.length) +
      hex(0) + // devmajor
      hex(0) + // devminor
      hex(rmaj) +
      hex(rmin) +
      hex(nameBuf.length) +
      hex(0); // check
    const h = Buffer.from(header, 'latin1');
    chunks.push(h, nameBuf, pad4(h.length + nameBuf.length), data, pad4(data.length));
  };
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    switch (e.kind) {
      case 'dir':
        emit(name, S_IFDIR | (e.mode ?? 0o755), Buffer.alloc(0), 2);
        break;
      case 'file':
        emit(name, S_IFREG | (e.mode ?? 0o644), e.data, 1);
        break;
      case 'symlink':
        emit(name, S_IFLNK | 0o777, Buffer.from(e.target, 'utf8'), 1);
        break;
      case 'chardev':
        emit(name, S_IFCHR | (e.mode ?? 0o600), Buffer.alloc(0), 1, e.major, e.minor);
        break;
    }
  }
  emit('TRAILER!!!', 0, Buffer.alloc(0), 1);
  return Buffer.concat(chunks);
}

// ---------------------------------------------------------------------------------------
// The guest's userspace

function initScript(release: string, modules: ResolvedModule[], installApplets: boolean): string {
  const modList = modules.map((m) => m.fileName).join(' ');
  return `#!/bin/sh
# Vessel guest /init (generated by images/build-image.ts, builder ${BUILDER_VERSION}).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
${installApplets ? '/bin/busybox --install -s /bin\n' : ''}mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
echo vessel > /proc/sys/kernel/hostname

# Kernel modules in load order; one that fails prints one line and boot goes on.
cd /lib/modules/${release}
for m in ${modList}; do
  insmod "$m" 2>/tmp/insmod.err || { read -r e </tmp/insmod.err; echo "vessel-init: module $m failed to load: $e"; }
done
rm -f /tmp/insmod.err
cd /

# The initramfs is up (modules loaded); with root= the disk's init prints its own marker next.
echo ${BOOT_MARKER}
${SWITCH_ROOT_SH}
# Give busybox init's shell the real console device (ttyS0 or hvc0), so it gets job control.
con=console
if read -r active </sys/class/tty/console/active 2>/dev/null; then
  for c in $active; do con=$c; done
fi
[ -c "/dev/$con" ] || con=console
sed -i "s|^console::respawn:|$con::respawn:|" /etc/inittab

exec /bin/busybox init
`;
}

const INITTAB = `# Vessel guest inittab (busybox init). /init swaps "console" for the active console tty.
console::respawn:-/bin/sh
::ctrlaltdel:/bin/reboot
::shutdown:/bin/sync
::shutdown:/bin/umount -a -r 2>/dev/null
`;

const PROFILE = `export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
export PS1='\\w \\$ '
cd "$HOME"
`;

/** modules.dep for modules stored flat in one directory: "<file>: <dependency files>" per module. */
function modulesDep(modules: ResolvedModule[]): string {
  const byName = new Map(modules.map((m) => [m.name, m]));
  return modules
    .map((m) => `${m.fileName}:${m.depends.map((d) => ' ' + (byName.get(d.replace(/-/g, '_'))?.fileName ?? `${d}.ko`)).join('')}\n`)
    .join('');
}

function buildInitramfs(
  release: string,
  busybox: Buffer,
  modules: ResolvedModule[],
  manifest: object,
): { cpio: Buffer; applets: number } {
  const applets = busyboxApplets(busybox);
  const entries: CpioEntry[] = [];
  for (const d of ['bin', 'dev', 'etc', 'etc/vessel', 'lib', 'lib/modules', `lib/modules/${release}`, 'proc', 'sys', 'tmp', 'root', 'mnt', 'run', 'var']) {
    entries.push({ kind: 'dir', path: d, mode: d === 'tmp' ? 0o1777 : d === 'root' ? 0o700 : 0o755 });
  }
  entries.push({ kind: 'chardev', path: 'dev/console', major: 5, minor: 1 });
  entries.push({ kind: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 });
  entries.push({ kind: 'symlink', path: 'sbin', target: 'bin' });
  entries.push({ kind: 'dir', path: 'usr' });
  entries.push({ kind: 'symlink', path: 'usr/bin', target: '../bin' });
  entries.push({ kind: 'symlink', path: 'usr/sbin', target: '../bin' });
  entries.push({ kind: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 });
  for (const a of applets) {
    if (a === 'busybox' || a.includes('/')) continue;
    entries.push({ kind: 'symlink', path: `bin/${a}`, target: 'busybox' });
  }
  if (applets.length === 0) entries.push({ kind: 'symlink', path: 'bin/sh', target: 'busybox' });
  entries.push({ kind: 'file', path: 'init', data: Buffer.from(initScript(release, modules, applets.length === 0)), mode: 0o755 });
  entries.push({ kind: 'file', path: 'etc/inittab', data: Buffer.from(INITTAB) });
  entries.push({ kind: 'file', path: 'etc/profile', data: Buffer.from(PROFILE) });
  entries.push({ kind: 'file', path: 'etc/hostname', data: Buffer.from('vessel\n') });
  entries.push({ kind: 'file', path: 'etc/passwd', data: Buffer.from('root:x:0:0:root:/root:/bin/sh\n') });
  entries.push({ kind: 'file', path: 'etc/group', data: Buffer.from('root:x:0:\n') });
  entries.push({ kind: 'file', path: 'etc/vessel/manifest.json', data: Buffer.from(JSON.stringify(manifest, null, 2) + '\n') });
  // modules.dep so that `modprobe <name>` works in the guest shell too.
  entries.push({ kind: 'file', path: `lib/modules/${release}/modules.dep`, data: Buffer.from(modulesDep(modules)) });
  for (const m of modules) {
    entries.push({ kind: 'file', path: `lib/modules/${release}/${m.fileName}`, data: m.data });
  }
  const mtime = Number.parseInt(process.env['SOURCE_DATE_EPOCH'] ?? '0', 10) || 0;
  return { cpio: cpioNewc(entries, mtime), applets: applets.length };
}

// ---------------------------------------------------------------------------------------
// The build

function extractDeb(deb: string, dest: string): void {
  capture('dpkg-deb', ['-x', deb, dest], `extracting ${path.basename(deb)}`);
}

function debArch(deb: string): string {
  return capture('dpkg-deb', ['-f', deb, 'Architecture'], `reading ${path.basename(deb)}`).trim();
}

function writeFileAtomic(file: string, data: string | Buffer): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

async function buildImage(opts: EnsureOptions, log: Logger): Promise<DefaultImageJson> {
  checkHostTools();
  const quiet = opts.quiet ?? false;
  const mirror = process.env['VESSEL_DEBIAN_MIRROR'] || 'http://deb.debian.org/debian';
  const suites = (process.env['VESSEL_SUITES'] || DEFAULT_SUITES.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s);

  const root = imagesDir();
  const work = fs.mkdtempSync(path.join(root, '.build-'));
  try {
    const failures: Array<[string, string]> = [];
    for (const suite of suites) {
      try {
        return await buildFromSuite(suite, mirror, work, quiet, log, opts.force ?? false);
      } catch (e) {
        if (!(e instanceof ImageBuildError)) throw e;
        failures.push([suite, e.message]);
        log(`${suite}: ${e.message}`);
        if (suite !== suites[suites.length - 1]) log('trying the next suite');
        fs.rmSync(work, { recursive: true, force: true });
        fs.mkdirSync(work, { recursive: true });
      }
    }
    // One message: the same cause for every suite (no network, typically) is said once.
    const causes = [...new Set(failures.map(([suite, msg]) => msg.split(suite).join('<suite>')))];
    const detail =
      causes.length === 1
        ? causes[0]!.replace(/<suite>/g, suites.join('/'))
        : failures.map(([suite, msg]) => `${suite}: ${msg}`).join('; ');
    throw new ImageBuildError(
      `could not get the Debian riscv64 packages linux-image-riscv64 and busybox-static from ${mirror} ` +
        `(tried suites ${suites.join(', ')}): ${detail}. Check that ${new URL(mirror).host} is reachable, then retry: npm run image`,
    );
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

async function buildFromSuite(
  suite: string,
  mirror: string,
  work: string,
  quiet: boolean,
  log: Logger,
  force: boolean,
): Promise<DefaultImageJson> {
  const apt = new Apt(suite, mirror, quiet);
  log(`updating the riscv64 package index for ${suite} (${mirror})`);
  await apt.update();
  const pkgs = resolvePackages(apt);
  log(
    `${suite}: kernel ${pkgs.kernelRelease} (${pkgs.kernelPackageVersion}, packages ${pkgs.kernelPackages.join(', ')}), ` +
      `busybox-static ${pkgs.busyboxVersion}`,
  );

  const root = imagesDir();
  const finalDir = path.join(root, pkgs.kernelRelease);
  const existing = readManifest(finalDir);
  if (!force && existing && existing.builder === BUILDER_VERSION && existing.busybox === pkgs.busyboxVersion) {
    log(`image for ${pkgs.kernelRelease} already built in ${finalDir}`);
    return publishDefault(existing);
  }

  const overlay = await rootfsPackages(apt, path.join(work, 'rootfs-debs'), path.join(work, 'overlay'), log);
  log(`downloading ${[...pkgs.kernelPackages, 'busybox-static'].join(', ')}`);
  const debs = await apt.download([...pkgs.kernelPackages, 'busybox-static'], path.join(work, 'debs'));
  const tree = path.join(work, 'root');
  fs.mkdirSync(tree, { recursive: true });
  for (const deb of debs) {
    const arch = debArch(deb);
    if (arch !== 'riscv64' && arch !== 'all') throw new ImageBuildError(`${path.basename(deb)} is for ${arch}, not riscv64`);
    log(`extracting ${path.basename(deb)}`);
    extractDeb(deb, tree);
    fs.rmSync(deb);
  }

  const kernel = readKernelImage(findKernel(tree, pkgs.kernelRelease));
  const modDir = findModulesDir(tree, pkgs.kernelRelease);
  log('resolving kernel modules and their dependencies');
  const { modules, builtin } = resolveModules(modDir, GUEST_MODULES, log);
  log(`modules in load order: ${modules.map((m) => m.name).join(', ')}${builtin.length ? ` (built in: ${builtin.join(', ')})` : ''}`);

  const busyboxPath = ['usr/bin/busybox', 'bin/busybox'].map((p) => path.join(tree, p)).find(fileNonEmpty);
  if (!busyboxPath) throw new ImageBuildError('busybox-static contained no bin/busybox');
  const busybox = fs.readFileSync(busyboxPath);

  const outTmp = fs.mkdtempSync(path.join(root, `.${pkgs.kernelRelease}.tmp-`));
  const manifest: DefaultImageJson = {
    version: pkgs.kernelRelease,
    kernel: path.join(finalDir, 'Image'),
    initrd: path.join(finalDir, 'initramfs.cpio.gz'),
    rootfs: path.join(finalDir, 'rootfs.ext4'),
    suite,
    busybox: pkgs.busyboxVersion,
    kernelPackage: pkgs.kernelPackageVersion,
    modules: modules.map((m) => m.fileName),
    builder: BUILDER_VERSION,
    builtAt: new Date().toISOString(),
  };
  try {
    log('building the initramfs (cpio newc + gzip)');
    const guestManifest = {
      kernel: pkgs.kernelRelease,
      kernelPackage: pkgs.kernelPackageVersion,
      suite,
      busybox: pkgs.busyboxVersion,
      modules: manifest.modules,
      builder: BUILDER_VERSION,
    };
    const { cpio, applets } = buildInitramfs(pkgs.kernelRelease, busybox, modules, guestManifest);
    const gz = zlib.gzipSync(cpio, { level: 9 });
    fs.writeFileSync(path.join(outTmp, 'Image'), kernel);
    fs.writeFileSync(path.join(outTmp, 'initramfs.cpio.gz'), gz);
    log(`building the root disk (ext4, ${ROOTFS_SIZE_MIB} MiB sparse)`);
    const rootfs = path.join(outTmp, 'rootfs.ext4');
    buildRootfs(
      {
        release: pkgs.kernelRelease,
        busybox,
        applets: busyboxApplets(busybox),
        modules,
        modulesDep: modulesDep(modules),
        manifest: { ...guestManifest, packages: overlay?.packages ?? [] },
        overlay: overlay?.dir,
      },
      path.join(work, 'rootfs'),
      rootfs,
    );
    fs.writeFileSync(path.join(outTmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    log(
      `Image ${kernel.length} bytes; initramfs ${gz.length} bytes gzip (${cpio.length} cpio), ` +
        `${applets} busybox applets, ${modules.length} modules; rootfs.ext4 ${ROOTFS_SIZE_MIB} MiB ` +
        `(${Math.round((fs.statSync(rootfs).blocks * 512) / 2 ** 20)} MiB allocated)`,
    );
    fs.chmodSync(outTmp, 0o755);
    // Replace an older build of the same kernel (other builder version or busybox). Its root
    // disk may hold the user's files: keep it next to the new one.
    if (fs.existsSync(finalDir)) {
      const previous = path.join(finalDir, 'rootfs.ext4');
      if (fs.existsSync(previous)) {
        fs.renameSync(previous, path.join(outTmp, 'rootfs.previous.ext4'));
        log(`the previous root disk is kept as ${path.join(finalDir, 'rootfs.previous.ext4')}`);
      }
      const old = `${finalDir}.old-${process.pid}`;
      fs.renameSync(finalDir, old);
      fs.rmSync(old, { recursive: true, force: true });
    }
    fs.renameSync(outTmp, finalDir);
  } finally {
    fs.rmSync(outTmp, { recursive: true, force: true });
  }
  return publishDefault(manifest);
}

/** `pkgs` and everything they depend on, recursively. */
function dependencyClosure(apt: Apt, pkgs: string[]): string[] {
  const seen = new Set<string>();
  const queue = [...pkgs];
  for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
    if (seen.has(p)) continue;
    seen.add(p);
    queue.push(...apt.depends(p));
  }
  return [...seen];
}

/** Downloads ROOTFS_PACKAGES and their dependencies and unpacks them into `dir`; null if that fails. */
async function rootfsPackages(apt: Apt, debDir: string, dir: string, log: Logger): Promise<{ dir: string; packages: string[] } | null> {
  try {
    const names = dependencyClosure(apt, ROOTFS_PACKAGES);
    log(`downloading ${names.join(', ')} for the root disk`);
    const packages: string[] = [];
    for (const deb of await apt.download(names, debDir)) {
      extractDeb(deb, dir);
      packages.push(path.basename(deb, '.deb'));
      fs.rmSync(deb);
    }
    for (const p of ROOTFS_PRUNE) fs.rmSync(path.join(dir, p), { recursive: true, force: true });
    return { dir, packages };
  } catch (e) {
    if (!(e instanceof ImageBuildError)) throw e;
    log(`the root disk gets no ${ROOTFS_PACKAGES.join(', ')}: ${e.message}`);
    return null;
  }
}

function readManifest(dir: string): DefaultImageJson | null {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as DefaultImageJson;
    if (!['Image', 'initramfs.cpio.gz', 'rootfs.ext4'].every((f) => fileNonEmpty(path.join(dir, f)))) return null;
    return m;
  } catch {
    return null;
  }
}

function publishDefault(m: DefaultImageJson): DefaultImageJson {
  writeFileAtomic(defaultJsonPath(), JSON.stringify(m, null, 2) + '\n');
  return m;
}

// ---------------------------------------------------------------------------------------
// Script entry point

function isMain(): boolean {
  const arg = process.argv[1];
  if (!arg) return false;
  try {
    return fs.realpathSync(arg) === fs.realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(
      'usage: node dist/images/build-image.js [--force] [--quiet]\n' +
        'Builds (or finds in the cache) the default Vessel guest image and prints its paths.\n' +
        'Env: VESSEL_CACHE (default ~/.cache/vessel), VESSEL_SUITES (default forky,sid,trixie), VESSEL_DEBIAN_MIRROR.\n',
    );
  } else {
    ensureDefaultImage({ force: args.includes('--force'), quiet: args.includes('--quiet') }).then(
      (img) => {
        process.stdout.write(`version ${img.version}\nkernel  ${img.kernel}\ninitrd  ${img.initrd}\nrootfs  ${img.rootfs}\n`);
      },
      (err: unknown) => {
        if (err instanceof ImageBuildError) process.stderr.write(`vessel image: error: ${err.message}\n`);
        else process.stderr.write(`vessel image: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
        process.exitCode = 1;
      },
    );
  }
}
