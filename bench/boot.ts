// Boot and CPU benchmark: Vessel against its peer, QEMU's software RISC-V CPU (TCG).
//
// Boots the same kernel + initramfs in both engines (the default guest image unless --kernel /
// --initrd are given), measures the wall time from spawn to the /init marker line, and runs
// CPU workloads in the guest shell that time themselves with the guest's own clock.
//
//   npm run bench                                    # build, then the defaults below
//   node dist/bench/boot.js --runs 5 [--json]        # the setting for recorded numbers
//   node dist/bench/boot.js --help
//
// Vessel is started through its CLI (`node dist/src/cli/main.js run ...`), QEMU as
// `qemu-system-riscv64 -M virt -m 256 -smp N -nographic ...`. Engines are booted alternately
// (QEMU, Vessel, QEMU, Vessel, ...), never at the same time. Progress goes to stderr; the
// table (or, with --json, one JSON document) goes to stdout.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { BOOT_MARKER, ensureDefaultImage } from '../images/build-image.js';
import { CLOCK_SETUP, escapeRe, Guest, GuestError } from './lib/guest.js';
import { readOptions, runBench } from './lib/main.js';
import { commandRuns, ensureHostPackages } from './lib/host-packages.js';
import { engineList, intArg } from './lib/options.js';
import { ensureQemu, QEMU, QEMU_PACKAGE, qemuVersion } from './lib/qemu.js';
import { fmtCount, fmtRatio, fmtS, ratio, summarize, table, type Summary } from './lib/stats.js';

const VESSEL_CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const APPEND = 'console=ttyS0';
const MEMORY_MIB = 256;
/** The shell prompt of the image's root login shell (PS1='\w \$ ' in /root). */
const PROMPT = '~ # ';
/** Number of runs documented for numbers that get recorded (docs/PERFORMANCE.md). */
const RECORDED_RUNS = 5;

type EngineName = 'qemu' | 'vessel' | 'vessel-interp';
const ENGINE_LABEL: Record<EngineName, string> = { qemu: 'QEMU TCG', vessel: 'Vessel (JIT)', 'vessel-interp': 'Vessel --no-jit' };
const ENGINE_NAMES = Object.keys(ENGINE_LABEL) as EngineName[];
const NATIVE_LABEL = 'native (host busybox)';
/** The Vessel engines, each compared with QEMU. */
const VESSEL_ENGINES: EngineName[] = ['vessel', 'vessel-interp'];

const USAGE = `Usage: node dist/bench/boot.js [options]

Boots the same kernel + initrd in Vessel and in QEMU (TCG), times spawn -> "${BOOT_MARKER}",
then runs CPU workloads in the guest shell timed by the guest's clock.

Options:
  --kernel <path>          kernel Image (default: the default guest image)
  --initrd <path>          initramfs whose /init prints ${BOOT_MARKER} (default: the default image's)
  --cpus <n>               harts in both engines (default 1)
  --runs <r>               boots per engine (default 3; ${RECORDED_RUNS} for recorded numbers)
  --workload-runs <w>      how many of those boots also run the workloads (default 1)
  --loop-iterations <n>    ash while-loop iterations (default 50000)
  --sha-mib <m>            MiB of /dev/zero piped through sha256sum (default 64)
  --gzip-mib <m>           MiB of /dev/zero piped through gzip -6 (default 64)
  --gzip-count <n>         seq 1 <n> piped through gzip -6 (default 100000: 589 KB of text)
  --engines <list>         qemu,vessel,vessel-interp (default all three: QEMU, Vessel with its JIT,
                           Vessel interpreting only (--no-jit); ratios need qemu)
  --boot-timeout <s>       give up on a boot after this many seconds (default 600)
  --workload-timeout <s>   give up on one workload after this many seconds (default 900)
  --json                   print one JSON document instead of the table
  --verbose                copy the guests' console output to stderr
  --ips                    one more Vessel boot, in this process, to count instructions (MIPS)
  --no-native              skip running the workloads natively on the host (busybox-static,
                           amd64, timed by the host's clock the same way; installed with
                           apt-get when missing and running as root)
  -h, --help               this text

If ${QEMU} is missing it is installed with apt-get (${QEMU_PACKAGE}) when running as root.
`;

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  kernel?: string;
  initrd?: string;
  cpus: number;
  runs: number;
  workloadRuns: number;
  loopIterations: number;
  shaMiB: number;
  gzipMiB: number;
  gzipCount: number;
  engines: EngineName[];
  bootTimeoutS: number;
  workloadTimeoutS: number;
  json: boolean;
  verbose: boolean;
  ips: boolean;
  native: boolean;
}

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      kernel: { type: 'string' },
      initrd: { type: 'string' },
      cpus: { type: 'string' },
      runs: { type: 'string' },
      'workload-runs': { type: 'string' },
      'loop-iterations': { type: 'string' },
      'sha-mib': { type: 'string' },
      'gzip-mib': { type: 'string' },
      'gzip-count': { type: 'string' },
      engines: { type: 'string' },
      'boot-timeout': { type: 'string' },
      'workload-timeout': { type: 'string' },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      ips: { type: 'boolean', default: false },
      'no-native': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return null;
  const runs = intArg('runs', values.runs, 3, 1, 1000);
  const engines = engineList(values.engines, ENGINE_NAMES);
  return {
    kernel: values.kernel,
    initrd: values.initrd,
    cpus: intArg('cpus', values.cpus, 1, 1, 64),
    runs,
    workloadRuns: intArg('workload-runs', values['workload-runs'], 1, 0, runs),
    loopIterations: intArg('loop-iterations', values['loop-iterations'], 50_000, 1, 1e9),
    shaMiB: intArg('sha-mib', values['sha-mib'], 64, 0, 4096),
    gzipMiB: intArg('gzip-mib', values['gzip-mib'], 64, 0, 4096),
    gzipCount: intArg('gzip-count', values['gzip-count'], 100_000, 0, 1e9),
    engines,
    bootTimeoutS: intArg('boot-timeout', values['boot-timeout'], 600, 1, 1e6),
    workloadTimeoutS: intArg('workload-timeout', values['workload-timeout'], 900, 1, 1e6),
    json: values.json ?? false,
    verbose: values.verbose ?? false,
    ips: values.ips ?? false,
    native: !values['no-native'],
  };
}

// ---------------------------------------------------------------------------------------------
// Workloads

interface WorkloadSpec {
  id: string;
  label: string;
  command: string;
  /** Checks the command's output (between the command and its BENCH_ line); null = fine. */
  check?: (output: string) => string | null;
}

function workloads(o: Options): WorkloadSpec[] {
  const list: WorkloadSpec[] = [{
    // Two back-to-back clock reads: the overhead included once in every row below.
    id: 'clock',
    label: 'guest clock read (overhead in each row)',
    command: 't; s=$T; t; echo BENCH_clock_NS=$((T-s))',
  }];
  if (o.loopIterations > 0) {
    list.push({
      id: 'loop',
      label: `ash while loop, ${o.loopIterations} iterations`,
      command: `t; s=$T; i=0; while [ $i -lt ${o.loopIterations} ]; do i=$((i+1)); done; t; echo BENCH_loop_NS=$((T-s)) i=$i`,
      check: (out) => (new RegExp(`BENCH_loop_NS=\\d+ i=${o.loopIterations}\\b`).test(out) ? null : `loop did not count to ${o.loopIterations}`),
    });
  }
  if (o.shaMiB > 0) {
    const expected = sha256OfZeros(o.shaMiB);
    list.push({
      id: 'sha256',
      label: `dd ${o.shaMiB} MiB of /dev/zero | sha256sum`,
      command: `t; s=$T; dd if=/dev/zero bs=1M count=${o.shaMiB} 2>/dev/null | sha256sum; t; echo BENCH_sha256_NS=$((T-s))`,
      check: (out) => {
        const m = /\b([0-9a-f]{64})\s+-/.exec(out);
        if (!m) return 'sha256sum printed no digest';
        return m[1] === expected ? null : `sha256sum printed ${m[1]}, expected ${expected}`;
      },
    });
  }
  if (o.gzipMiB > 0) {
    const expected = gzipSync(Buffer.alloc(o.gzipMiB << 20), { level: 6 }).length;
    list.push({
      id: 'gzipzero',
      label: `dd ${o.gzipMiB} MiB of /dev/zero | gzip -6`,
      command: `t; s=$T; dd if=/dev/zero bs=1M count=${o.gzipMiB} 2>/dev/null | gzip -6 | wc -c; t; echo BENCH_gzipzero_NS=$((T-s))`,
      check: (out) => {
        const m = /^\s*(\d+)\s*$/m.exec(out);
        if (!m) return 'gzip | wc -c printed no byte count';
        // busybox's deflate is not zlib's: allow a few percent (64 MiB: 65,150 bytes against 65,250).
        return Math.abs(Number(m[1]) - expected) <= expected * 0.05 ? null : `gzip wrote ${m[1]} bytes, the host's zlib ${expected}`;
      },
    });
  }
  if (o.gzipCount > 0) {
    // Compressible but not trivial input, generated in the guest; the size is checked on the host.
    const expected = gzipSizeOfSeq(o.gzipCount);
    list.push({
      id: 'gzip',
      label: `seq 1 ${o.gzipCount} | gzip -6`,
      command: `t; s=$T; seq 1 ${o.gzipCount} | gzip -6 | wc -c; t; echo BENCH_gzip_NS=$((T-s))`,
      check: (out) => {
        const m = /^\s*(\d+)\s*$/m.exec(out);
        if (!m) return 'gzip | wc -c printed no byte count';
        // busybox's deflate is not zlib's: allow a few percent.
        return Math.abs(Number(m[1]) - expected) <= expected * 0.05 ? null : `gzip wrote ${m[1]} bytes, the host's zlib ${expected}`;
      },
    });
  }
  return list;
}

/** What the host's zlib makes of the same text at level 6 (busybox gzip may differ by a few bytes). */
function gzipSizeOfSeq(count: number): number {
  const lines: string[] = [];
  for (let i = 1; i <= count; i++) lines.push(String(i));
  return gzipSync(Buffer.from(lines.join('\n') + '\n'), { level: 6 }).length;
}

function sha256OfZeros(mib: number): string {
  const h = createHash('sha256');
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < mib; i++) h.update(block);
  return h.digest('hex');
}

/**
 * Runs each workload once on the host with busybox's shell (the same program as the guest's,
 * built for amd64), timed by the same shell clock function; returns seconds by workload id.
 */
function runNative(specs: WorkloadSpec[], timeoutS: number): Record<string, number> {
  ensureHostPackages([{ what: 'busybox', present: () => commandRuns('busybox', ['true']), packages: ['busybox-static'] }],
    (msg) => progress(msg));
  const seconds: Record<string, number> = {};
  for (const w of specs) {
    progress(`native: ${w.label} ...`);
    const r = spawnSync('busybox', ['sh', '-c', [...CLOCK_SETUP, w.command].join('\n')], { encoding: 'utf8', timeout: timeoutS * 1000 });
    const m = new RegExp(`BENCH_${w.id}_NS=(-?\\d+)`).exec(r.stdout ?? '');
    if (r.status !== 0 || !m) throw new GuestError(`native: "${w.label}" failed (${r.error?.message ?? `exit ${r.status}`}): ${(r.stderr ?? '').trim()}`);
    const problem = w.check?.(r.stdout);
    if (problem) throw new GuestError(`native: ${problem}`);
    seconds[w.id] = Number(m[1]) / 1e9;
    progress(`native: ${w.id}: ${seconds[w.id].toFixed(3)} s (host clock)`);
  }
  return seconds;
}

// ---------------------------------------------------------------------------------------------
// One boot

interface WorkloadResult {
  id: string;
  /** Guest clock, seconds. */
  guestS: number;
  /** Host wall time from typing the command to its result line, seconds (includes echo and the prompt). */
  hostS: number;
  /** Instructions retired in that host interval (in-process Vessel only). */
  instructions?: number;
}

/** `vessel-inprocess` is the extra --ips boot: Vessel's Machine inside the bench process. */
type RunKind = EngineName | 'vessel-inprocess';
const RUN_LABEL: Record<RunKind, string> = { ...ENGINE_LABEL, 'vessel-inprocess': 'Vessel (in-process)' };

interface RunResult {
  engine: RunKind;
  run: number;
  /** Wall seconds from spawn to the marker line. */
  bootS: number;
  /** CPU seconds (user + system, all threads) the engine used until the marker. */
  bootCpuS?: number;
  /** Instructions retired until the marker (in-process Vessel only). */
  bootInstructions?: number;
  clock?: string;
  workloads: WorkloadResult[];
  /** Seconds from typing `poweroff` to the engine's exit. */
  poweroffS?: number;
  exitCode?: number | null;
}

function startGuest(kind: RunKind, kernel: string, initrd: string, cpus: number, verbose: boolean): Guest {
  const label = RUN_LABEL[kind];
  switch (kind) {
    case 'vessel': case 'vessel-interp':
      return Guest.spawn(label, process.execPath, [
        VESSEL_CLI, 'run', '--kernel', kernel, '--initrd', initrd, '--append', APPEND,
        '--cpus', String(cpus), '--memory', `${MEMORY_MIB}M`, ...(kind === 'vessel-interp' ? ['--no-jit'] : []),
      ], verbose);
    case 'qemu':
      return Guest.spawn(label, QEMU, [
        '-M', 'virt', '-m', String(MEMORY_MIB), '-smp', String(cpus), '-nographic',
        '-kernel', kernel, '-initrd', initrd, '-append', APPEND,
      ], verbose);
    case 'vessel-inprocess':
      return Guest.inProcess(label, kernel, initrd, cpus, MEMORY_MIB, APPEND, verbose);
  }
}

function progress(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

async function bootOnce(kind: RunKind, run: number, o: Options, kernel: string, initrd: string, withWorkloads: boolean): Promise<RunResult> {
  const guest = startGuest(kind, kernel, initrd, o.cpus, o.verbose);
  const label = RUN_LABEL[kind];
  try {
    const marker = await guest.waitFor(new RegExp(BOOT_MARKER), 0, o.bootTimeoutS, BOOT_MARKER);
    const result: RunResult = {
      engine: kind, run, bootS: marker.at, bootCpuS: guest.cpuSeconds(), bootInstructions: guest.instructions(), workloads: [],
    };
    progress(`${label} run ${run}: ${BOOT_MARKER} after ${marker.at.toFixed(2)} s` +
      (result.bootCpuS !== undefined ? ` (${result.bootCpuS.toFixed(2)} s CPU)` : ''));
    if (!withWorkloads) {
      await guest.kill();
      return result;
    }

    let from = marker.match.index + BOOT_MARKER.length;
    const prompt = async (): Promise<void> => {
      const p = await guest.waitFor(new RegExp(escapeRe(PROMPT)), from, o.bootTimeoutS, 'shell prompt');
      from = p.match.index + p.match[0].length;
    };
    await prompt();
    for (const line of CLOCK_SETUP) {
      guest.type(line);
      await prompt();
    }
    const clock = /BENCH_CLOCK=(\w+)/.exec(guest.output.slice(marker.match.index));
    result.clock = clock ? clock[1] : 'unknown';

    for (const w of workloads(o)) {
      progress(`${label} run ${run}: ${w.label} ...`);
      const startAt = from;
      const typed = guest.elapsed();
      const instr0 = guest.instructions();
      guest.type(w.command);
      // The echoed command shows `$((T-s))`, never digits, so only the result line matches.
      // Output arrives in chunks: wait for the whole line, so no digits are cut off.
      const r = await guest.waitFor(new RegExp(`BENCH_${w.id}_NS=(-?\\d+)[^\\n]*\\n`), startAt, o.workloadTimeoutS, `result of "${w.label}"`);
      const instr1 = guest.instructions();
      const res: WorkloadResult = { id: w.id, guestS: Number(r.match[1]) / 1e9, hostS: r.at - typed };
      if (instr0 !== undefined && instr1 !== undefined) res.instructions = instr1 - instr0;
      from = r.match.index;
      await prompt();
      const problem = w.check?.(guest.output.slice(startAt, from));
      if (problem) throw new GuestError(`${label}: ${problem}`);
      progress(`${label} run ${run}: ${w.id}: ${res.guestS.toFixed(3)} s (guest clock)`);
      result.workloads.push(res);
    }

    const offAt = guest.elapsed();
    guest.type('poweroff');
    const exitTimer = setTimeout(() => {
      progress(`${label} run ${run}: no exit 300 s after poweroff; killing it`);
      void guest.kill();
    }, 300_000);
    await guest.exitPromise;
    clearTimeout(exitTimer);
    result.poweroffS = guest.elapsed() - offAt;
    result.exitCode = guest.exited?.code ?? null;
    if (result.exitCode !== 0) progress(`${label} run ${run}: exited with ${guest.exited?.signal ?? `code ${result.exitCode}`} after poweroff`);
    return result;
  } catch (e) {
    await guest.kill();
    if (e instanceof GuestError) throw new GuestError(`${e.message}\nlast console lines:\n${guest.tail()}`);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const o = readOptions(parseOptions, USAGE);
  if (typeof o === 'number') return o;

  const qemuVer = o.engines.includes('qemu') ? ensureQemu() : qemuVersion();
  let kernel = o.kernel, initrd = o.initrd;
  if (!kernel || !initrd) {
    const img = await ensureDefaultImage({ quiet: true });
    kernel ??= img.kernel;
    initrd ??= img.initrd;
  }
  const here = fileURLToPath(new URL('.', import.meta.url));
  const gitCommit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', cwd: here });
  const gitDirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', cwd: here });
  const env = {
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.release()}` },
    node: process.version,
    qemu: qemuVer,
    vessel: gitCommit.status === 0 ? gitCommit.stdout.trim() + (gitDirty.stdout.trim() ? ' (with uncommitted changes)' : '') : 'unknown',
  };
  const fewRuns = o.runs < RECORDED_RUNS;
  if (fewRuns) progress(`${o.runs} run(s) per engine; numbers for the record use --runs ${RECORDED_RUNS} or more`);
  progress(`kernel ${kernel}`);
  progress(`initrd ${initrd}`);
  progress(`cpus ${o.cpus}, memory ${MEMORY_MIB} MiB, engines ${o.engines.join(', ')}${o.ips ? ', plus one in-process Vessel boot for --ips' : ''}`);

  const results: RunResult[] = [];
  let native: Record<string, number> | null = null;
  try {
    for (let run = 1; run <= o.runs; run++) {
      for (const engine of o.engines) results.push(await bootOnce(engine, run, o, kernel, initrd, run <= o.workloadRuns));
    }
    if (o.ips) results.push(await bootOnce('vessel-inprocess', 1, o, kernel, initrd, o.workloadRuns > 0));
    if (o.native && o.workloadRuns > 0) native = runNative(workloads(o), o.workloadTimeoutS);
  } catch (e) {
    if (!(e instanceof GuestError)) throw e;
    process.stderr.write(`bench: ${e.message}\n`);
    return 1;
  }

  const specs = workloads(o);
  const boot: Partial<Record<EngineName, Summary | null>> = {};
  const bootCpu: Partial<Record<EngineName, Summary | null>> = {};
  const work: Record<string, Partial<Record<EngineName, Summary | null>>> = {};
  for (const engine of o.engines) {
    const mine = results.filter((r) => r.engine === engine);
    boot[engine] = summarize(mine.map((r) => r.bootS));
    bootCpu[engine] = summarize(mine.flatMap((r) => (r.bootCpuS === undefined ? [] : [r.bootCpuS])));
    for (const w of specs) {
      (work[w.id] ??= {})[engine] = summarize(mine.flatMap((r) => r.workloads.filter((x) => x.id === w.id).map((x) => x.guestS)));
    }
  }
  const clocks = [...new Set(results.map((r) => r.clock).filter((c): c is string => !!c))];

  // Instructions per second of the in-process boot: instructions / host wall time.
  const ipsRun = results.find((r) => r.engine === 'vessel-inprocess');
  const ips = ipsRun && ipsRun.bootInstructions !== undefined ? [
    { phase: `boot to ${BOOT_MARKER}`, instructions: ipsRun.bootInstructions, wallS: ipsRun.bootS, cpuS: ipsRun.bootCpuS, mips: ipsRun.bootInstructions / ipsRun.bootS / 1e6 },
    ...ipsRun.workloads.filter((w) => w.instructions !== undefined).map((w) => ({
      phase: specs.find((s) => s.id === w.id)?.label ?? w.id, instructions: w.instructions!, wallS: w.hostS, cpuS: undefined, mips: w.instructions! / w.hostS / 1e6,
    })),
  ] : null;

  if (o.json) {
    const doc = {
      command: ['node', 'dist/bench/boot.js', ...process.argv.slice(2)].join(' '),
      environment: env,
      settings: {
        kernel, initrd, append: APPEND, cpus: o.cpus, memoryMiB: MEMORY_MIB, runs: o.runs, workloadRuns: o.workloadRuns,
        loopIterations: o.loopIterations, shaMiB: o.shaMiB, recordedRunsSetting: RECORDED_RUNS, guestClock: clocks,
      },
      boot: {
        wallS: boot, cpuS: bootCpu, ratioVesselToQemu: ratio(boot.vessel, boot.qemu),
        ratioInterpreterToQemu: ratio(boot['vessel-interp'], boot.qemu),
      },
      workloads: specs.map((w) => ({
        id: w.id, label: w.label, guestS: work[w.id], ratioVesselToQemu: ratio(work[w.id]?.vessel, work[w.id]?.qemu),
        ratioInterpreterToQemu: ratio(work[w.id]?.['vessel-interp'], work[w.id]?.qemu),
        nativeS: native?.[w.id] ?? null,
        ratioVesselToNative: native ? ratio(work[w.id]?.vessel, summarize([native[w.id]])) : null,
      })),
      vesselInstructionsPerSecond: ips,
      runs: results,
    };
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
    return 0;
  }

  const out: string[] = [];
  out.push(`Vessel boot + CPU benchmark, ${env.date}`);
  out.push(`host: ${env.host.cpus} cores (${env.host.cpuModel}), ${env.host.memoryGiB} GiB, ${env.host.platform}; Node ${env.node}; ${env.qemu ?? 'QEMU not used'}; Vessel ${env.vessel}`);
  out.push(`guest: ${kernel} + ${initrd}, -append "${APPEND}", ${o.cpus} cpu(s), ${MEMORY_MIB} MiB`);
  out.push(`runs: ${o.runs} boot(s) per engine, workloads in ${o.workloadRuns} of them` +
    (fewRuns ? ` (fewer than the ${RECORDED_RUNS} runs documented for recorded numbers)` : ''));
  out.push('');
  out.push(`Boot: wall time from spawn to "${BOOT_MARKER}", s (CPU: user+system time of the engine until then)`);
  const bootRows: string[][] = [['engine', 'min', 'median', 'CPU median', 'all runs']];
  for (const e of o.engines) {
    const s = boot[e], c = bootCpu[e];
    if (s) bootRows.push([ENGINE_LABEL[e], fmtS(s.min), fmtS(s.median), c ? fmtS(c.median) : '-', s.values.map(fmtS).join(' ')]);
  }
  for (const v of VESSEL_ENGINES) {
    const br = ratio(boot[v], boot.qemu);
    const cr = ratio(bootCpu[v], bootCpu.qemu);
    if (br) bootRows.push([`${ENGINE_LABEL[v]}/QEMU`, fmtRatio(br.min), fmtRatio(br.median), cr ? fmtRatio(cr.median) : '-', '']);
  }
  out.push(table(bootRows, [false, true, true, true, false]));

  if (specs.length && o.workloadRuns > 0 && o.engines.some((e) => specs.some((w) => work[w.id]?.[e]))) {
    out.push('');
    out.push(`Workloads: guest clock (${clocks.join(', ') || 'n/a'}), s` + (o.workloadRuns > 1 ? `, min / median of ${o.workloadRuns}` : ', one run each'));
    const head = ['workload'];
    for (const e of o.engines) head.push(ENGINE_LABEL[e]);
    const compared = o.engines.includes('qemu') ? VESSEL_ENGINES.filter((v) => o.engines.includes(v)) : [];
    for (const v of compared) head.push(`${ENGINE_LABEL[v]}/QEMU`);
    const againstNative = native ? VESSEL_ENGINES.filter((v) => o.engines.includes(v)) : [];
    if (native) head.push(NATIVE_LABEL);
    for (const v of againstNative) head.push(`${ENGINE_LABEL[v]}/native`);
    const rows: string[][] = [head];
    for (const w of specs) {
      const row = [w.label];
      for (const e of o.engines) {
        const s = work[w.id]?.[e];
        row.push(!s ? '-' : o.workloadRuns > 1 ? `${fmtS(s.min)} / ${fmtS(s.median)}` : fmtS(s.median));
      }
      for (const v of compared) {
        const r = ratio(work[w.id]?.[v], work[w.id]?.qemu);
        row.push(!r ? '-' : o.workloadRuns > 1 ? `${fmtRatio(r.min)} / ${fmtRatio(r.median)}` : fmtRatio(r.median));
      }
      if (native) row.push(fmtS(native[w.id]));
      for (const v of againstNative) {
        const r = ratio(work[w.id]?.[v], summarize([native![w.id]]));
        row.push(!r ? '-' : o.workloadRuns > 1 ? `${fmtRatio(r.min)} / ${fmtRatio(r.median)}` : fmtRatio(r.median));
      }
      rows.push(row);
    }
    out.push(table(rows, rows[0].map((_, i) => i > 0)));
  }
  out.push('');
  if (ips) {
    out.push(`Vessel instructions per second (--ips: one more boot, Vessel's Machine inside this process; host wall time)`);
    const rows: string[][] = [['phase', 'instructions', 'wall s', 'MIPS']];
    for (const p of ips) rows.push([p.phase, fmtCount(p.instructions), fmtS(p.wallS), p.mips.toFixed(1)]);
    out.push(table(rows, [false, true, true, true]));
  } else {
    out.push('Vessel instructions per second: not measured (the CLI reports no instruction count; --ips adds an in-process boot that counts them).');
  }
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

runBench(main);
