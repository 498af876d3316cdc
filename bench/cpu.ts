// Compiled C CPU benchmark: bench/guest/coremark-like.c in Vessel, in QEMU TCG and natively.
//
// The program is cross-compiled here with Debian's riscv64-linux-gnu-gcc (-O2 -static) and put on
// a small read-only raw "tools" disk; each guest engine boots once (default kernel + initramfs),
// copies it to /tmp with dd and runs it --runs times. The same source is built with the host's gcc
// (-O2) and run --runs times natively. Seconds come from the program's own CLOCK_MONOTONIC timer
// around the timed loop (the guest's clock in a guest); every run must print the same checksum
// in every engine, or the benchmark fails.
//
//   npm run build && node dist/bench/cpu.js --runs 5      # the setting for recorded numbers
//   node dist/bench/cpu.js --help

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { BOOT_MARKER, ensureDefaultImage } from '../images/build-image.js';
import { Guest, GuestError, GuestShell, withGuest } from './lib/guest.js';
import { ensureQemu, QEMU } from './lib/qemu.js';
import { buildToolsDisk, compile } from './lib/guest-tools.js';
import { readOptions, runBench } from './lib/main.js';
import { engineList, intArg } from './lib/options.js';
import { fmtRatio, fmtS, ratio, summarize, table, type Summary } from './lib/stats.js';

const VESSEL_CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const SOURCE = fileURLToPath(new URL('../../bench/guest/coremark-like.c', import.meta.url));
const HOST_GCC = 'gcc';
const APPEND = 'console=ttyS0';
const MEMORY_MIB = 256;
const RECORDED_RUNS = 5;
/** About 3 s per run under QEMU TCG on the development machine. */
const DEFAULT_ITERATIONS = 100_000;

type EngineName = 'native' | 'qemu' | 'vessel' | 'vessel-interp';
type GuestEngine = Exclude<EngineName, 'native'>;
const ALL_ENGINES: EngineName[] = ['native', 'qemu', 'vessel', 'vessel-interp'];
const ENGINE_LABEL: Record<EngineName, string> = {
  native: 'native (host gcc)', qemu: 'QEMU TCG', vessel: 'Vessel (JIT)', 'vessel-interp': 'Vessel --no-jit',
};

const USAGE = `Usage: node dist/bench/cpu.js [options]

Runs bench/guest/coremark-like.c (a CoreMark-style integer workload: linked-list merge sort,
16x16 matrix multiply, a byte state machine with CRC-32, a hash table) inside Vessel and QEMU
(TCG), each booted once, and natively on the host; compares the program's own timings.

Options:
  --runs <r>          runs of the program per engine (default 3; ${RECORDED_RUNS} for recorded numbers)
  --iterations <n>    iterations per run (default ${DEFAULT_ITERATIONS}; the checksum depends on it)
  --engines <list>    native,qemu,vessel,vessel-interp (default all four; vessel-interp is
                      Vessel with --no-jit, the slowest by far)
  --timeout <s>       give up on a boot or one run after this many seconds (default 900)
  --json              print one JSON document instead of the table
  --verbose           copy the guests' console output to stderr
  -h, --help          this text
`;

interface Options {
  runs: number;
  iterations: number;
  engines: EngineName[];
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
      engines: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return null;
  const picked = engineList(values.engines, ALL_ENGINES);
  return {
    runs: intArg('runs', values.runs, 3, 1, 100),
    iterations: intArg('iterations', values.iterations, DEFAULT_ITERATIONS, 1, 2_000_000_000),
    // Keep the documented order so tables line up between runs.
    engines: ALL_ENGINES.filter((e) => picked.includes(e)),
    timeoutS: intArg('timeout', values.timeout, 900, 1, 1e6),
    json: values.json ?? false,
    verbose: values.verbose ?? false,
  };
}

function progress(msg: string): void {
  process.stderr.write(`[bench cpu] ${msg}\n`);
}

/** One run's report: the program's timed seconds and its checksum. */
interface RunResult { seconds: number; checksum: string }

const RESULT_RE = /COREMARKLIKE iterations=(\d+) ns=(\d+) checksum=(0x[0-9a-f]{8})/;

function parseResult(m: RegExpExecArray, iterations: number, where: string): RunResult {
  if (Number(m[1]) !== iterations) throw new GuestError(`${where}: the program ran ${m[1]} iterations, not ${iterations}`);
  return { seconds: Number(m[2]) / 1e9, checksum: m[3] };
}

function benchNative(o: Options, dir: string): RunResult[] {
  const exe = path.join(dir, 'coremark-like.host');
  compile(HOST_GCC, [], SOURCE, exe, 'Install the host compiler with: apt-get install -y gcc');
  const results: RunResult[] = [];
  for (let r = 1; r <= o.runs; r++) {
    const p = spawnSync(exe, [String(o.iterations)], { encoding: 'utf8', timeout: o.timeoutS * 1000 });
    const m = RESULT_RE.exec(p.stdout ?? '');
    if (p.status !== 0 || !m) throw new GuestError(`native run ${r} failed (${p.error?.message ?? `exit ${p.status ?? p.signal}`}): ${p.stdout}${p.stderr}`);
    results.push(parseResult(m, o.iterations, 'native'));
    progress(`${ENGINE_LABEL.native} run ${r}: ${results[r - 1].seconds.toFixed(3)} s, checksum ${results[r - 1].checksum}`);
  }
  return results;
}

function startGuest(engine: GuestEngine, kernel: string, initrd: string, tools: string, verbose: boolean): Guest {
  if (engine === 'qemu') {
    return Guest.spawn(ENGINE_LABEL.qemu, QEMU, [
      '-M', 'virt', '-m', String(MEMORY_MIB), '-smp', '1', '-nographic', '-kernel', kernel, '-initrd', initrd, '-append', APPEND,
      '-drive', `file=${tools},format=raw,if=none,id=tools,readonly=on`, '-device', 'virtio-blk-device,drive=tools',
    ], verbose);
  }
  return Guest.spawn(ENGINE_LABEL[engine], process.execPath, [
    VESSEL_CLI, 'run', '--kernel', kernel, '--initrd', initrd, '--append', APPEND, '--memory', `${MEMORY_MIB}M`,
    '--disk', `${tools},readonly`, ...(engine === 'vessel-interp' ? ['--no-jit'] : []),
  ], verbose);
}

async function benchGuest(engine: GuestEngine, o: Options, kernel: string, initrd: string, tools: { path: string; blocks: number }): Promise<RunResult[]> {
  const label = ENGINE_LABEL[engine];
  return withGuest(startGuest(engine, kernel, initrd, tools.path, o.verbose), async (guest) => {
    const { shell, bootS } = await GuestShell.boot(guest, BOOT_MARKER, o.timeoutS);
    progress(`${label}: booted in ${bootS.toFixed(1)} s`);
    const copied = await shell.result(`dd if=/dev/vda of=/tmp/cm bs=4096 count=${tools.blocks} 2>/dev/null; chmod +x /tmp/cm; echo BENCH_COPIED=$?`,
      /BENCH_COPIED=(\d+)\s*\n/, 'the copy of the program from the tools disk');
    if (copied[1] !== '0') throw new GuestError(`${label}: copying the program from /dev/vda failed`);

    const results: RunResult[] = [];
    for (let r = 1; r <= o.runs; r++) {
      const m = await shell.result(`/tmp/cm ${o.iterations}`, RESULT_RE, `result of run ${r}`);
      const res = parseResult(m, o.iterations, label);
      results.push(res);
      progress(`${label} run ${r}: ${res.seconds.toFixed(3)} s, checksum ${res.checksum}`);
    }
    await shell.powerOff();
    return results;
  });
}

/** All runs in all engines must agree: a wrong checksum means a miscompiled or misexecuted run. */
function checkChecksums(results: Partial<Record<EngineName, RunResult[]>>): string {
  const seen = new Map<string, string[]>();
  for (const [engine, runs] of Object.entries(results)) {
    runs!.forEach((r, i) => seen.set(r.checksum, [...(seen.get(r.checksum) ?? []), `${engine} run ${i + 1}`]));
  }
  if (seen.size !== 1) {
    throw new GuestError(`checksums differ between runs: ${[...seen].map(([c, w]) => `${c} (${w.join(', ')})`).join('; ')}`);
  }
  return [...seen.keys()][0];
}

async function main(): Promise<number> {
  const o = readOptions(parseOptions, USAGE);
  if (typeof o === 'number') return o;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vessel-bench-cpu-'));
  try {
    const guestEngines = o.engines.filter((e): e is GuestEngine => e !== 'native');
    const tools = guestEngines.length ? buildToolsDisk(SOURCE, dir) : null;
    const qemuVersion = o.engines.includes('qemu') ? ensureQemu() : null;
    const image = guestEngines.length ? await ensureDefaultImage({ quiet: true }) : null;
    progress(`${o.iterations} iterations, ${o.runs} run(s) per engine, engines ${o.engines.join(', ')}`);

    const results: Partial<Record<EngineName, RunResult[]>> = {};
    if (o.engines.includes('native')) results.native = benchNative(o, dir);
    for (const engine of guestEngines) results[engine] = await benchGuest(engine, o, image!.kernel, image!.initrd, tools!);
    const checksum = checkChecksums(results);

    const seconds: Partial<Record<EngineName, Summary>> = {};
    for (const e of o.engines) seconds[e] = summarize(results[e]!.map((r) => r.seconds))!;
    // Time ratios: Vessel/QEMU above 1 means Vessel is slower. min pairs the fastest runs.
    const ratios = (['vessel', 'vessel-interp'] as const).filter((e) => seconds[e]).map((e) => ({
      engine: e,
      toQemu: ratio(seconds[e], seconds.qemu),
      toNative: ratio(seconds[e], seconds.native),
    }));
    const env = {
      date: new Date().toISOString(),
      host: `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`,
      qemu: qemuVersion,
      vessel: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', cwd: path.dirname(VESSEL_CLI) }).stdout.trim() || 'unknown',
    };
    if (o.json) {
      process.stdout.write(JSON.stringify({ command: ['node', 'dist/bench/cpu.js', ...process.argv.slice(2)].join(' '), environment: env, settings: o, checksum, seconds, ratios }, null, 2) + '\n');
      return 0;
    }
    const rows: string[][] = [['engine', 'seconds min / median', 'iterations/s (median)', 'runs (s)']];
    for (const e of o.engines) {
      const s = seconds[e]!;
      rows.push([ENGINE_LABEL[e], `${fmtS(s.min)} / ${fmtS(s.median)}`, (o.iterations / s.median).toFixed(0), s.values.map(fmtS).join(' ')]);
    }
    const ratioRows: string[][] = [['time ratio (min / median)', 'to QEMU TCG', 'to native']];
    const fmtPair = (r: { min: number; median: number } | null) => (r ? `${fmtRatio(r.min)} / ${fmtRatio(r.median)}` : '-');
    for (const r of ratios) ratioRows.push([ENGINE_LABEL[r.engine], fmtPair(r.toQemu), fmtPair(r.toNative)]);
    process.stdout.write([
      `Vessel compiled C CPU benchmark (bench/guest/coremark-like.c), ${env.date}`,
      `host: ${env.host}; ${env.qemu ?? 'QEMU not used'}; Vessel ${env.vessel}`,
      `guests: default kernel + initramfs, 1 cpu, ${MEMORY_MIB} MiB; gcc -O2 (riscv64 static / host); ${o.iterations} iterations; ` +
        `${o.runs} run(s) per engine` + (o.runs < RECORDED_RUNS ? ` (fewer than the ${RECORDED_RUNS} documented for recorded numbers)` : ''),
      `checksum ${checksum} in every run of every engine`,
      '',
      'Program-timed seconds (lower is better)',
      table(rows, [false, true, true, false]),
      ...(ratioRows.length > 1 ? ['', 'Vessel time / other engine time (above 1: Vessel is slower)', table(ratioRows, [false, true, true])] : []),
    ].join('\n') + '\n');
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

runBench(main);
