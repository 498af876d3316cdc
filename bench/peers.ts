// Vessel against its JavaScript/WebAssembly peers, v86 (npm `v86`, 32-bit x86 with its own
// x86-to-wasm JIT) and TinyEMU compiled to wasm (RISC-V, an interpreter; only with its source
// tree, see bench/lib/tinyemu.ts), with QEMU TCG on each ISA as the common reference, in one run.
//
// Every engine boots the same kind of guest: a Debian kernel and a busybox initramfs whose /init
// (bench/lib/peer-initramfs.ts, identical on both ISAs) mounts /proc, /sys and /dev, prints a
// marker and starts a shell on ttyS0, with bench/guest/coremark-like.c built -O2 -static for the
// guest's ISA inside it. riscv64 (Vessel, QEMU): the default image's kernel and initramfs with
// that /init laid over it. i386 (v86, QEMU i386): Debian bookworm's 686 kernel and busybox
// (bench/lib/i386-guest.ts), SeaBIOS. TinyEMU: the riscv64 guest with its console on hvc0 and
// Debian's OpenSBI. Per boot: host seconds from spawn to the marker, the
// program's own timing of --iterations (the guest's CLOCK_MONOTONIC) and, with --sha-mib,
// `dd if=/dev/zero | sha256sum` timed by the guest's clock. --runs rounds, each engine once per
// round, never two at once.
//
//   npm run build && node dist/bench/peers.js --runs 5      # the setting for recorded numbers
//   node dist/bench/peers.js --help

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as zlib from 'node:zlib';

import { ensureDefaultImage } from '../images/build-image.js';
import { Guest, GuestError, GuestShell, withGuest } from './lib/guest.js';
import { compile, CROSS_GCC } from './lib/guest-tools.js';
import { commandRuns, ensureHostPackages, fileNeed, type HostNeed } from './lib/host-packages.js';
import { ensureI386Guest, I386_SUITE } from './lib/i386-guest.js';
import { readOptions, runBench } from './lib/main.js';
import { engineList, intArg, UsageError } from './lib/options.js';
import { PEER_MARKER, PEER_PROGRAM, peerInitramfs, type PeerConsole } from './lib/peer-initramfs.js';
import { ensureQemu, QEMU } from './lib/qemu.js';
import { fmtRatio, fmtS, ratio, summarize, table, type Summary } from './lib/stats.js';
import { EMCC, ensureTinyEmu, OPENSBI_FW_DYNAMIC, type TinyEmuBuild } from './lib/tinyemu.js';

const VESSEL_CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const V86_RUNNER = fileURLToPath(new URL('./lib/v86-runner.js', import.meta.url));
const TINYEMU_RUNNER = fileURLToPath(new URL('./lib/tinyemu-runner.js', import.meta.url));
const SOURCE = fileURLToPath(new URL('../../bench/guest/coremark-like.c', import.meta.url));
const I386_GCC = 'i686-linux-gnu-gcc';
const QEMU_I386 = 'qemu-system-i386';
const SEABIOS = '/usr/share/seabios/bios.bin';
const VGA_BIOS = '/usr/share/seabios/vgabios-stdvga.bin';
const APPEND = 'console=ttyS0';
const MEMORY_MIB = 256;
const RECORDED_RUNS = 5;
/** As bench/cpu.ts: about 3 s per run under QEMU TCG, and the same checksum (0x0c1bb464). */
const DEFAULT_ITERATIONS = 100_000;

type EngineName = 'qemu' | 'vessel' | 'tinyemu' | 'qemu-i386' | 'v86';
const ALL_ENGINES: EngineName[] = ['qemu', 'vessel', 'tinyemu', 'qemu-i386', 'v86'];
const ENGINE_LABEL: Record<EngineName, string> = {
  qemu: 'QEMU TCG riscv64', vessel: 'Vessel (JIT, riscv64)', tinyemu: 'TinyEMU wasm (riscv64)', 'qemu-i386': 'QEMU TCG i386', v86: 'v86 (i386)',
};
/** The guest each engine boots: riscv64 on a UART, riscv64 on a virtio console, or i386. */
type GuestKind = 'riscv64' | 'riscv64-hvc0' | 'i386';
const ENGINE_GUEST: Record<EngineName, GuestKind> = { qemu: 'riscv64', vessel: 'riscv64', tinyemu: 'riscv64-hvc0', 'qemu-i386': 'i386', v86: 'i386' };
const GUEST_CONSOLE: Record<GuestKind, PeerConsole> = { riscv64: 'ttyS0', 'riscv64-hvc0': 'hvc0', i386: 'ttyS0' };
/** Where the TinyEMU source tree comes from when --tinyemu-src is not given. */
const TINYEMU_SRC_ENV = 'VESSEL_TINYEMU_SRC';

type WorkloadName = 'boot' | 'coremark' | 'sha256';

const USAGE = `Usage: node dist/bench/peers.js [options]

Measures Vessel (riscv64, JIT) against v86 (npm v86: 32-bit x86 emulated in JavaScript and
WebAssembly) and, given its source, TinyEMU compiled to WebAssembly (riscv64), with QEMU TCG for
each ISA as the reference, in one run. Each engine boots a Debian kernel with the same busybox
/init (riscv64: the default image; i386: bookworm's 686 kernel and busybox-static, fetched into
~/.cache/vessel/peers/ on first use, with SeaBIOS) and runs:
  boot       host seconds from spawn to the /init marker
  coremark   bench/guest/coremark-like.c (-O2 -static for the guest's ISA), timed by the program
  sha256     dd if=/dev/zero bs=1M count=M | sha256sum, timed by the guest's clock
Missing Debian packages (cross compilers, SeaBIOS, QEMU; emscripten and OpenSBI for TinyEMU) are
installed with apt-get when run as root.

Options:
  --runs <r>          boots per engine, one workload run each (default 3; ${RECORDED_RUNS} for recorded numbers)
  --iterations <n>    coremark-like iterations per run (default ${DEFAULT_ITERATIONS})
  --sha-mib <m>       MiB through sha256sum (default 64; 0 leaves the workload out)
  --engines <list>    ${ALL_ENGINES.join(',')} (default: all, but tinyemu
                      only with its source tree)
  --tinyemu-src <dir> TinyEMU's source tree (not on npm or Debian; e.g. the 2019-02-10 release,
                      mirrored on GitHub as fernandotcl/TinyEMU); default $${TINYEMU_SRC_ENV}.
                      It is patched and compiled with Debian's emscripten once, then cached.
  --timeout <s>       give up on a boot or one workload after this many seconds (default 900)
  --json              print one JSON document instead of the tables
  --verbose           copy the guests' console output to stderr
  -h, --help          this text
`;

interface Options {
  runs: number;
  iterations: number;
  shaMiB: number;
  engines: EngineName[];
  tinyemuSrc: string | null;
  timeoutS: number;
  json: boolean;
  verbose: boolean;
}

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      runs: { type: 'string' },
      iterations: { type: 'string' },
      'sha-mib': { type: 'string' },
      engines: { type: 'string' },
      'tinyemu-src': { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return null;
  const tinyemuSrc = values['tinyemu-src'] ?? process.env[TINYEMU_SRC_ENV] ?? null;
  const picked = values.engines || tinyemuSrc ? engineList(values.engines, ALL_ENGINES) : ALL_ENGINES.filter((e) => e !== 'tinyemu');
  if (picked.includes('tinyemu') && !tinyemuSrc) {
    throw new UsageError(`--engines tinyemu needs TinyEMU's source tree: --tinyemu-src <dir> or $${TINYEMU_SRC_ENV} (TinyEMU is not on npm or Debian)`);
  }
  return {
    runs: intArg('runs', values.runs, 3, 1, 100),
    iterations: intArg('iterations', values.iterations, DEFAULT_ITERATIONS, 1, 2_000_000_000),
    shaMiB: intArg('sha-mib', values['sha-mib'], 64, 0, 1024),
    engines: ALL_ENGINES.filter((e) => picked.includes(e)),
    tinyemuSrc,
    timeoutS: intArg('timeout', values.timeout, 900, 1, 1e6),
    json: values.json ?? false,
    verbose: values.verbose ?? false,
  };
}

function progress(msg: string): void {
  process.stderr.write(`[bench peers] ${msg}\n`);
}

/** What one engine boots: its kernel, the initramfs with the peers /init, and (x86) the BIOS. */
interface GuestParts { kernel: string; initrd: string; description: string }

/** Checks for the host packages the chosen engines need, installing them when root. */
function ensurePrerequisites(engines: EngineName[]): { qemu: string | null; qemuI386: string | null } {
  const needs: HostNeed[] = [];
  const riscv = engines.some((e) => ENGINE_GUEST[e] !== 'i386');
  const x86 = engines.some((e) => ENGINE_GUEST[e] === 'i386');
  if (riscv) {
    needs.push({ what: CROSS_GCC, present: () => commandRuns(CROSS_GCC, ['--version']), packages: ['gcc-riscv64-linux-gnu'] });
    needs.push(fileNeed('the riscv64 C library for static linking', '/usr/riscv64-linux-gnu/lib/libc.a', ['libc6-dev-riscv64-cross']));
  }
  if (x86) {
    needs.push({ what: I386_GCC, present: () => commandRuns(I386_GCC, ['--version']), packages: ['gcc-i686-linux-gnu'] });
    needs.push(fileNeed('the i386 C library for static linking', '/usr/i686-linux-gnu/lib/libc.a', ['libc6-dev-i386-cross']));
  }
  if (engines.includes('v86')) {
    needs.push(fileNeed('SeaBIOS', SEABIOS, ['seabios']), fileNeed('a VGA BIOS', VGA_BIOS, ['seabios']));
  }
  if (engines.includes('tinyemu')) {
    needs.push({ what: 'emscripten', present: () => commandRuns(EMCC, ['--version']), packages: ['emscripten'] });
    needs.push({ what: 'patch', present: () => commandRuns('patch', ['--version']), packages: ['patch'] });
    needs.push(fileNeed('OpenSBI', OPENSBI_FW_DYNAMIC, ['opensbi']));
  }
  if (engines.includes('qemu-i386')) needs.push({ what: QEMU_I386, present: () => commandRuns(QEMU_I386, ['--version']), packages: ['qemu-system-x86'] });
  ensureHostPackages(needs, progress);
  const version = (cmd: string) => spawnSync(cmd, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0].trim();
  return {
    qemu: engines.includes('qemu') ? ensureQemu() : null,
    qemuI386: engines.includes('qemu-i386') ? version(QEMU_I386) : null,
  };
}

/** Builds the program and the initramfs for each ISA the engines need, in `dir`. */
async function buildGuests(engines: EngineName[], dir: string): Promise<Partial<Record<GuestKind, GuestParts>>> {
  const parts: Partial<Record<GuestKind, GuestParts>> = {};
  const kinds = new Set(engines.map((e) => ENGINE_GUEST[e]));
  if (kinds.has('riscv64') || kinds.has('riscv64-hvc0')) {
    const exe = path.join(dir, 'coremark-like.riscv64');
    compile(CROSS_GCC, ['-static'], SOURCE, exe, 'Install the cross compiler with: apt-get install -y gcc-riscv64-linux-gnu libc6-dev-riscv64-cross');
    const image = await ensureDefaultImage({ quiet: true });
    for (const kind of (['riscv64', 'riscv64-hvc0'] as const).filter((k) => kinds.has(k))) {
      const initrd = path.join(dir, `peers-${kind}.cpio.gz`);
      // Appended after the default initramfs: its busybox stays, /init and /etc/inittab are replaced.
      writeFileSync(initrd, Buffer.concat([readFileSync(image.initrd), zlib.gzipSync(peerInitramfs(readFileSync(exe), GUEST_CONSOLE[kind]))]));
      parts[kind] = { kernel: image.kernel, initrd, description: `Debian riscv64 kernel ${image.version}, the default image's busybox, console ${GUEST_CONSOLE[kind]}` };
    }
  }
  if (kinds.has('i386')) {
    const exe = path.join(dir, 'coremark-like.i386');
    compile(I386_GCC, ['-static'], SOURCE, exe, 'Install the cross compiler with: apt-get install -y gcc-i686-linux-gnu libc6-dev-i386-cross');
    const i386 = ensureI386Guest(progress);
    const initrd = path.join(dir, 'peers-i386.cpio.gz');
    writeFileSync(initrd, zlib.gzipSync(peerInitramfs(readFileSync(exe), 'ttyS0', readFileSync(i386.busybox))));
    parts.i386 = { kernel: i386.kernel, initrd, description: `Debian ${I386_SUITE} ${i386.kernelPackage}, ${i386.busyboxPackage}` };
  }
  return parts;
}

function startGuest(engine: EngineName, g: GuestParts, tinyemu: TinyEmuBuild | null, verbose: boolean): Guest {
  const label = ENGINE_LABEL[engine];
  const mem = String(MEMORY_MIB);
  switch (engine) {
    case 'qemu':
      return Guest.spawn(label, QEMU, ['-M', 'virt', '-m', mem, '-smp', '1', '-nographic', '-kernel', g.kernel, '-initrd', g.initrd, '-append', APPEND], verbose);
    case 'qemu-i386':
      return Guest.spawn(label, QEMU_I386, ['-m', mem, '-smp', '1', '-nographic', '-kernel', g.kernel, '-initrd', g.initrd, '-append', APPEND], verbose);
    case 'vessel':
      return Guest.spawn(label, process.execPath, [VESSEL_CLI, 'run', '--kernel', g.kernel, '--initrd', g.initrd, '--append', APPEND, '--memory', `${mem}M`], verbose);
    case 'tinyemu':
      return Guest.spawn(label, process.execPath, [TINYEMU_RUNNER, '--module', tinyemu!.dir, '--bios', OPENSBI_FW_DYNAMIC,
        '--kernel', g.kernel, '--initrd', g.initrd, '--cmdline', 'console=hvc0', '--memory-mib', mem], verbose);
    case 'v86':
      return Guest.spawn(label, process.execPath, [V86_RUNNER, '--bios', SEABIOS, '--vga-bios', VGA_BIOS, '--bzimage', g.kernel,
        '--initrd', g.initrd, '--cmdline', APPEND, '--memory-mib', mem], verbose);
  }
}

/** One boot's results: seconds per workload (guest-timed except boot), and what the guest printed. */
interface RoundResult {
  seconds: Partial<Record<WorkloadName, number>>;
  /** Host seconds from typing the program's command to its result line (a check on the guest's clock). */
  coremarkHostS: number;
  checksum: string;
}

const COREMARK_RE = /COREMARKLIKE iterations=(\d+) ns=(\d+) checksum=(0x[0-9a-f]{8})/;
const SHA_RE = /\b([0-9a-f]{64})\b[\s\S]*BENCH_sha256_NS=(\d+)/;

function sha256OfZeros(mib: number): string {
  const h = createHash('sha256');
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < mib; i++) h.update(block);
  return h.digest('hex');
}

async function bootOnce(engine: EngineName, g: GuestParts, tinyemu: TinyEmuBuild | null, o: Options, shaDigest: string): Promise<RoundResult> {
  const label = ENGINE_LABEL[engine];
  return withGuest(startGuest(engine, g, tinyemu, o.verbose), async (guest) => {
    const { shell, bootS } = await GuestShell.boot(guest, PEER_MARKER, o.timeoutS);
    const seconds: RoundResult['seconds'] = { boot: bootS };

    const typed = performance.now();
    const m = await shell.result(`${PEER_PROGRAM} ${o.iterations}`, COREMARK_RE, 'the coremark-like result');
    const coremarkHostS = (performance.now() - typed) / 1000;
    if (Number(m[1]) !== o.iterations) throw new GuestError(`${label}: the program ran ${m[1]} iterations, not ${o.iterations}`);
    seconds.coremark = Number(m[2]) / 1e9;

    if (o.shaMiB > 0) {
      const out = await shell.run(`t; s=$T; dd if=/dev/zero bs=1M count=${o.shaMiB} 2>/dev/null | sha256sum; t; echo BENCH_sha256_NS=$((T-s))`);
      const s = SHA_RE.exec(out);
      if (!s) throw new GuestError(`${label}: no sha256sum digest and time in:\n${out}`);
      if (s[1] !== shaDigest) throw new GuestError(`${label}: sha256sum printed ${s[1]}, expected ${shaDigest}`);
      seconds.sha256 = Number(s[2]) / 1e9;
    }
    await guest.kill();
    progress(`${label}: boot ${fmtS(bootS)} s, coremark-like ${fmtS(seconds.coremark)} s (host saw ${fmtS(coremarkHostS)} s), ` +
      `checksum ${m[3]}${seconds.sha256 !== undefined ? `, sha256 ${fmtS(seconds.sha256)} s` : ''}`);
    return { seconds, coremarkHostS, checksum: m[3] };
  });
}

/** Ratios of engine a's times to engine b's (above 1: a is slower). */
const RATIOS: { a: EngineName; b: EngineName }[] = [
  { a: 'vessel', b: 'v86' },
  { a: 'vessel', b: 'tinyemu' },
  { a: 'vessel', b: 'qemu' },
  { a: 'tinyemu', b: 'qemu' },
  { a: 'v86', b: 'qemu-i386' },
];

async function main(): Promise<number> {
  const o = readOptions(parseOptions, USAGE);
  if (typeof o === 'number') return o;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vessel-bench-peers-'));
  try {
    const versions = ensurePrerequisites(o.engines);
    const parts = await buildGuests(o.engines, dir);
    const tinyemu = o.engines.includes('tinyemu') ? ensureTinyEmu(o.tinyemuSrc!, progress) : null;
    const shaDigest = sha256OfZeros(o.shaMiB);
    const workloads: WorkloadName[] = ['boot', 'coremark', ...(o.shaMiB > 0 ? ['sha256' as const] : [])];
    progress(`${o.runs} round(s) of ${o.engines.join(', ')}; ${o.iterations} iterations; sha256 of ${o.shaMiB} MiB`);

    const results: Partial<Record<EngineName, RoundResult[]>> = {};
    for (let r = 1; r <= o.runs; r++) {
      for (const engine of o.engines) {
        progress(`round ${r}: ${ENGINE_LABEL[engine]}`);
        (results[engine] ??= []).push(await bootOnce(engine, parts[ENGINE_GUEST[engine]]!, tinyemu, o, shaDigest));
      }
    }
    const checksums = new Set(Object.values(results).flatMap((rs) => rs!.map((x) => x.checksum)));
    if (checksums.size !== 1) throw new GuestError(`coremark-like checksums differ between engines or runs: ${[...checksums].join(', ')}`);

    const stats: Partial<Record<EngineName, Partial<Record<WorkloadName, Summary>>>> = {};
    for (const e of o.engines) {
      stats[e] = Object.fromEntries(workloads.map((w) => [w, summarize(results[e]!.map((x) => x.seconds[w]!))!]));
    }
    const ratios = RATIOS.filter((p) => stats[p.a] && stats[p.b]).map((p) => ({
      ...p, byWorkload: Object.fromEntries(workloads.map((w) => [w, ratio(stats[p.a]![w], stats[p.b]![w])])),
    }));
    const require = createRequire(import.meta.url);
    const env = {
      date: new Date().toISOString(),
      host: `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`,
      qemu: versions.qemu, qemuI386: versions.qemuI386,
      v86: o.engines.includes('v86') ? (require('v86/package.json') as { version: string }).version : null,
      tinyemu: tinyemu?.version ?? null,
      vessel: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', cwd: path.dirname(VESSEL_CLI) }).stdout.trim() || 'unknown',
      guests: Object.fromEntries(Object.entries(parts).map(([isa, g]) => [isa, g.description])),
    };
    if (o.json) {
      process.stdout.write(JSON.stringify({
        command: ['node', 'dist/bench/peers.js', ...process.argv.slice(2)].join(' '), environment: env, settings: o,
        checksum: [...checksums][0], results, seconds: stats, ratios,
      }, null, 2) + '\n');
      return 0;
    }
    const WORKLOAD_LABEL: Record<WorkloadName, string> = {
      boot: 'boot to /init marker (host)', coremark: `coremark-like x${o.iterations}`, sha256: `dd ${o.shaMiB} MiB | sha256sum`,
    };
    const rows: string[][] = [['engine', ...workloads.map((w) => WORKLOAD_LABEL[w])]];
    for (const e of o.engines) rows.push([ENGINE_LABEL[e], ...workloads.map((w) => `${fmtS(stats[e]![w]!.min)} / ${fmtS(stats[e]![w]!.median)}`)]);
    const ratioRows: string[][] = [['time ratio (min / median)', ...workloads.map((w) => WORKLOAD_LABEL[w])]];
    for (const r of ratios) {
      ratioRows.push([`${ENGINE_LABEL[r.a]} / ${ENGINE_LABEL[r.b]}`, ...workloads.map((w) => {
        const x = r.byWorkload[w];
        return x ? `${fmtRatio(x.min)} / ${fmtRatio(x.median)}` : '-';
      })]);
    }
    const allRuns: string[] = [];
    for (const e of o.engines) for (const w of workloads) allRuns.push(`  ${ENGINE_LABEL[e]} ${w}: ${stats[e]![w]!.values.map(fmtS).join(' ')}`);
    process.stdout.write([
      `Vessel against JavaScript/WebAssembly peers (bench/peers.ts), ${env.date}`,
      `host: ${env.host}; Vessel ${env.vessel}; ${[env.qemu && `${QEMU}: ${env.qemu}`, env.qemuI386 && `${QEMU_I386}: ${env.qemuI386}`, env.v86 && `v86 ${env.v86}`, env.tinyemu && `TinyEMU ${env.tinyemu} (patched, emscripten)`].filter(Boolean).join('; ')}`,
      ...Object.entries(env.guests).map(([isa, d]) => `${isa} guest: ${d}`),
      `1 cpu, ${MEMORY_MIB} MiB, append "${APPEND}" (TinyEMU: "console=hvc0"); ${o.runs} boot(s) per engine` +
        (o.runs < RECORDED_RUNS ? ` (fewer than the ${RECORDED_RUNS} documented for recorded numbers)` : '') +
        `; coremark-like checksum ${[...checksums][0]} in every run`,
      '',
      'Seconds, min / median (lower is better; boot is host wall time, the rest the guest\'s clock)',
      table(rows, [false, ...workloads.map(() => true)]),
      '',
      'Time ratios (above 1: the first engine is slower)',
      table(ratioRows, [false, ...workloads.map(() => true)]),
      '',
      'All runs (s):',
      ...allRuns,
    ].join('\n') + '\n');
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

runBench(main);
