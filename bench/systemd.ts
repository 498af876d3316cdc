// Full-system boot benchmark: Debian (minbase + systemd, images/debian-systemd.ts) from a
// virtio-blk disk to multi-user.target, Vessel against QEMU TCG with the same kernel, initramfs,
// disk and number of harts.
//
// Each boot starts from a fresh sparse copy of the cached disk (a boot writes to its root: the
// journal, the random seed), and is timed from spawn to two console lines:
//   "Welcome to Debian"          systemd has started (the kernel and the initramfs are done)
//   VESSEL-SYSTEMD-MULTI-USER    a oneshot unit ordered after multi-user.target
// Engines take turns (QEMU, Vessel, QEMU, ...), never two at once. The first boot of each engine
// and hart count also logs in on the serial console (autologin) and prints `systemd-analyze`
// (time, blame top 10, critical-chain): where the guest's own clock says its time went.
//
//   npm run build && node dist/bench/systemd.js --runs 5        # the setting for recorded numbers
//   node dist/bench/systemd.js --help

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { ensureSystemdImage, SYSTEMD_HOSTNAME, SYSTEMD_IMAGE_HOST_TOOLS, SYSTEMD_MARKER, SYSTEMD_MARKER_RE, SYSTEMD_ROOT_APPEND } from '../images/debian-systemd.js';
import { Machine } from '../src/machine/machine.js';
import { escapeRe, Guest, GuestError } from './lib/guest.js';
import { commandRuns, ensureHostPackages } from './lib/host-packages.js';
import { readOptions, runBench } from './lib/main.js';
import { engineList, ENGINES, intArg, UsageError, type EngineName } from './lib/options.js';
import { ensureQemu, QEMU } from './lib/qemu.js';
import { parseAnalyzeTime, parseBlame, parseGuestCounters, type AnalyzeTime, type BlameEntry, type GuestCounters } from './lib/systemd-analyze.js';
import { fmtRatio, fmtS, ratio, summarize, table, type Summary } from './lib/stats.js';

const VESSEL_CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
// A device (here /dev/ttyS0, for the serial getty) waits at most 90 s by default: a slow boot would
// be cut short by that timeout and look faster than it is. 15 minutes is longer than any boot.
const APPEND = `${SYSTEMD_ROOT_APPEND} console=ttyS0 systemd.default_device_timeout_sec=900`;
const MEMORY_MIB = 1024;
const RECORDED_RUNS = 5;
const WELCOME = 'Welcome to Debian';
/** systemd's welcome line, with the colour codes it puts around the system's name. */
const WELCOME_RE = /Welcome to (?:\x1b\[[0-9;]*m)*Debian/;
const ENGINE_LABEL: Record<EngineName, string> = { qemu: 'QEMU TCG', vessel: 'Vessel' };
/** The root shell's prompt after autologin (bash's default PS1 in Debian's /root/.bashrc). */
const PROMPT = `root@${SYSTEMD_HOSTNAME}:~# `;

const USAGE = `Usage: node dist/bench/systemd.js [options]

Boots Debian minbase + systemd from a virtio-blk disk in Vessel and QEMU (TCG), and times
spawn -> "${WELCOME}" (systemd starts) and spawn -> "${SYSTEMD_MARKER}" (multi-user.target).
The disk is built once (mmdebstrap + qemu-user, several minutes; root) and cached.

Options:
  --runs <r>          boots per engine and hart count (default 3; ${RECORDED_RUNS} for recorded numbers)
  --cpus <list>       hart counts, each booted in both engines (default 2,1)
  --engines <list>    qemu,vessel (default both; ratios need both)
  --no-analyze        skip the systemd-analyze login after each engine's first boot
  --stats             one more Vessel boot with the first hart count, its Machine inside this
                      process: instructions retired per phase and the JIT's statistics
  --timeout <s>       give up on a boot after this many seconds (default 900)
  --json              print one JSON document instead of the tables
  --verbose           copy the guests' console output to stderr
  -h, --help          this text
`;

interface Options {
  runs: number;
  cpus: number[];
  engines: EngineName[];
  analyze: boolean;
  stats: boolean;
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
      cpus: { type: 'string' },
      engines: { type: 'string' },
      'no-analyze': { type: 'boolean', default: false },
      stats: { type: 'boolean', default: false },
      timeout: { type: 'string' },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return null;
  const cpus = (values.cpus ?? '2,1').split(',').map((s) => intArg('cpus', s.trim(), 0, 1, 64));
  if (new Set(cpus).size !== cpus.length) throw new UsageError(`--cpus: a hart count is named twice in "${values.cpus}"`);
  return {
    runs: intArg('runs', values.runs, 3, 1, 100),
    cpus,
    engines: engineList(values.engines, ENGINES),
    analyze: !values['no-analyze'],
    stats: values.stats ?? false,
    timeoutS: intArg('timeout', values.timeout, 900, 1, 1e6),
    json: values.json ?? false,
    verbose: values.verbose ?? false,
  };
}

function progress(msg: string): void {
  process.stderr.write(`[bench systemd] ${msg}\n`);
}

function startGuest(engine: EngineName, cpus: number, kernel: string, initrd: string, disk: string, verbose: boolean): Guest {
  if (engine === 'vessel') {
    return Guest.spawn(ENGINE_LABEL.vessel, process.execPath, [
      VESSEL_CLI, 'run', '--kernel', kernel, '--initrd', initrd, '--append', APPEND,
      '--cpus', String(cpus), '--memory', `${MEMORY_MIB}M`, '--disk', disk, '--net', 'none',
    ], verbose);
  }
  // Vessel's board has a virtio-rng device by default: QEMU gets one too.
  return Guest.spawn(ENGINE_LABEL.qemu, QEMU, [
    '-M', 'virt', '-m', String(MEMORY_MIB), '-smp', String(cpus), '-nographic', '-nic', 'none',
    '-kernel', kernel, '-initrd', initrd, '-append', APPEND,
    '-drive', `file=${disk},format=raw,if=none,id=root,cache=writeback`, '-device', 'virtio-blk-device,drive=root',
    '-device', 'virtio-rng-device',
  ], verbose);
}

interface Analysis {
  time: AnalyzeTime | null;
  blame: BlameEntry[];
  /** `systemd-analyze critical-chain` as printed. */
  criticalChain: string;
  /** The guest kernel's counters once the boot is finished. */
  counters: GuestCounters | null;
}

interface BootResult {
  engine: EngineName;
  cpus: number;
  run: number;
  /** Wall seconds from spawn to systemd's welcome line, and to the marker. */
  welcomeS: number;
  markerS: number;
  /** The guest's /proc/uptime when the marker unit ran. */
  guestUptimeS: number;
  /** CPU seconds (user + system, all threads) the engine used until the marker. */
  cpuS?: number;
  analysis?: Analysis;
}

/** Sparse copy of the cached disk, so every boot starts from the same state. */
function freshDisk(source: string, dir: string, name: string): string {
  const copy = path.join(dir, name);
  const r = spawnSync('cp', ['--sparse=always', source, copy], { encoding: 'utf8' });
  if (r.status !== 0) throw new GuestError(`copying ${source} to ${copy} failed: ${(r.stderr || r.error?.message || '').trim()}`);
  return copy;
}

async function analyze(guest: Guest, timeoutS: number): Promise<Analysis> {
  const p = await guest.waitFor(new RegExp(escapeRe(PROMPT)), 0, timeoutS, 'the autologin shell prompt');
  const from = p.match.index + p.match[0].length;
  // systemd-analyze refuses while jobs are still running ("Bootup is not yet finished").
  guest.type('export SYSTEMD_PAGER=cat SYSTEMD_COLORS=0; until systemd-analyze time >/dev/null 2>&1; do sleep 1; done; ' +
    'echo BENCH_TIME_$((1)); systemd-analyze time; echo BENCH_BLAME_$((2)); systemd-analyze blame | head -n 10; ' +
    'echo BENCH_CHAIN_$((3)); systemd-analyze critical-chain; echo BENCH_COUNTERS_$((4)); cat /proc/stat /proc/vmstat /proc/interrupts; echo BENCH_END_$((5))');
  const end = await guest.waitFor(/BENCH_END_5\r?\n/, from, timeoutS, 'systemd-analyze output');
  const out = guest.output.slice(from, end.match.index);
  // The echoed command shows `$((n))`, so only the printed marker lines match.
  const part = (name: string): string => new RegExp(`BENCH_${name}_\\d\\r?\\n([\\s\\S]*?)(?=BENCH_\\w+_\\d\\r?\\n|$)`).exec(out)?.[1] ?? '';
  return { time: parseAnalyzeTime(part('TIME')), blame: parseBlame(part('BLAME')), criticalChain: part('CHAIN').replace(/\r/g, '').trimEnd(),
    counters: parseGuestCounters(part('COUNTERS')) };
}

async function bootOnce(engine: EngineName, cpus: number, run: number, o: Options, img: { kernel: string; initrd: string; disk: string }, dir: string): Promise<BootResult> {
  const disk = freshDisk(img.disk, dir, `${engine}-${cpus}-${run}.ext4`);
  const label = `${ENGINE_LABEL[engine]} ${cpus} hart(s) run ${run}`;
  const guest = startGuest(engine, cpus, img.kernel, img.initrd, disk, o.verbose);
  try {
    const welcome = await guest.waitFor(WELCOME_RE, 0, o.timeoutS, `"${WELCOME}" (systemd starting)`);
    const marker = await guest.waitFor(SYSTEMD_MARKER_RE, welcome.match.index, o.timeoutS, SYSTEMD_MARKER);
    const result: BootResult = {
      engine, cpus, run, welcomeS: welcome.at, markerS: marker.at, guestUptimeS: Number(marker.match[1]), cpuS: guest.cpuSeconds(),
    };
    progress(`${label}: systemd at ${welcome.at.toFixed(2)} s, multi-user at ${marker.at.toFixed(2)} s ` +
      `(guest uptime ${result.guestUptimeS.toFixed(2)} s${result.cpuS !== undefined ? `, ${result.cpuS.toFixed(1)} s CPU` : ''})`);
    if (o.analyze && run === 1) {
      result.analysis = await analyze(guest, o.timeoutS);
      progress(`${label}: systemd-analyze time: ${JSON.stringify(result.analysis.time)}`);
    }
    await guest.kill();
    return result;
  } catch (e) {
    await guest.kill();
    if (e instanceof GuestError) throw new GuestError(`${label}: ${e.message}\nlast console lines:\n${guest.tail()}`);
    throw e;
  } finally {
    rmSync(disk, { force: true });
  }
}

interface InProcessStats {
  cpus: number;
  /** Wall seconds, and instructions retired by all harts, from the Machine's start to each line. */
  welcome: { s: number; instructions: number };
  marker: { s: number; instructions: number };
  /** Machine.jitStats(): one entry per thread that runs harts. */
  jit: unknown[];
}

/** A Vessel boot with its Machine in this process, the only place its instruction count and JIT statistics can be read. */
async function inProcessBoot(cpus: number, o: Options, img: { kernel: string; initrd: string; disk: string }, dir: string): Promise<InProcessStats> {
  const disk = freshDisk(img.disk, dir, `stats-${cpus}.ext4`);
  let text = '';
  let welcome: InProcessStats['welcome'] | null = null;
  let marker: InProcessStats['marker'] | null = null;
  const start = performance.now();
  const at = (): { s: number; instructions: number } => ({ s: (performance.now() - start) / 1000, instructions: machine.instructionsRetired });
  const machine: Machine = new Machine({
    cpus, memoryBytes: MEMORY_MIB << 20,
    boot: { kind: 'linux', kernel: readFileSync(img.kernel), kernelName: img.kernel, initrd: readFileSync(img.initrd), cmdline: APPEND },
    virtio: { disks: [{ path: disk }], rng: true },
    onConsoleOutput: (d) => {
      if (o.verbose) process.stderr.write(d);
      text = (text + Buffer.from(d).toString('latin1')).slice(-4096);
      if (!welcome && WELCOME_RE.test(text)) welcome = at();
      if (welcome && !marker && SYSTEMD_MARKER_RE.test(text)) {
        marker = at();
        machine.stop({ kind: 'poweroff', code: 0 });
      }
    },
  });
  const timer = setTimeout(() => machine.stop({ kind: 'error', message: `no ${SYSTEMD_MARKER} within ${o.timeoutS} s` }), o.timeoutS * 1000);
  try {
    const stop = await machine.run();
    if (!marker || !welcome) throw new GuestError(`in-process Vessel boot stopped (${JSON.stringify(stop)}) before ${SYSTEMD_MARKER}:\n${machine.recentConsole.slice(-1500)}`);
    const jit = machine.jitStats();
    return { cpus, welcome, marker, jit };
  } finally {
    clearTimeout(timer);
    machine.close();
    rmSync(disk, { force: true });
  }
}

function load(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

async function main(): Promise<number> {
  const o = readOptions(parseOptions, USAGE);
  if (typeof o === 'number') return o;
  const qemuVersion = o.engines.includes('qemu') ? ensureQemu() : null;
  ensureHostPackages(SYSTEMD_IMAGE_HOST_TOOLS.map((t) => ({ what: t.tool, present: () => commandRuns('sh', ['-c', `command -v ${t.tool}`]), packages: [t.pkg] })), progress);
  const img = await ensureSystemdImage({});
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vessel-bench-systemd-'));
  const loadBefore = load();
  progress(`disk ${img.disk} (${img.suite}); ${o.runs} run(s) per engine and hart count; harts ${o.cpus.join(', ')}; load ${loadBefore}`);
  const results: BootResult[] = [];
  let stats: InProcessStats | null = null;
  try {
    for (const cpus of o.cpus) {
      for (let run = 1; run <= o.runs; run++) {
        for (const engine of o.engines) results.push(await bootOnce(engine, cpus, run, o, img, dir));
      }
    }
    if (o.stats) {
      stats = await inProcessBoot(o.cpus[0], o, img, dir);
      progress(`in-process Vessel, ${stats.cpus} hart(s): systemd at ${stats.welcome.s.toFixed(2)} s, multi-user at ${stats.marker.s.toFixed(2)} s`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const loadAfter = load();

  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', cwd: path.dirname(VESSEL_CLI) }).stdout.trim() || 'unknown';
  const env = {
    date: new Date().toISOString(),
    host: `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`,
    qemu: qemuVersion, vessel: commit, loadBefore, loadAfter,
  };
  type Row = { cpus: number; marker: Partial<Record<EngineName, Summary | null>>; welcome: Partial<Record<EngineName, Summary | null>>; cpu: Partial<Record<EngineName, Summary | null>> };
  const rows: Row[] = o.cpus.map((cpus) => {
    const pick = (e: EngineName, f: (r: BootResult) => number | undefined) =>
      summarize(results.filter((r) => r.engine === e && r.cpus === cpus).flatMap((r) => { const v = f(r); return v === undefined ? [] : [v]; }));
    const row: Row = { cpus, marker: {}, welcome: {}, cpu: {} };
    for (const e of o.engines) {
      row.marker[e] = pick(e, (r) => r.markerS);
      row.welcome[e] = pick(e, (r) => r.welcomeS);
      row.cpu[e] = pick(e, (r) => r.cpuS);
    }
    return row;
  });

  if (o.json) {
    process.stdout.write(JSON.stringify({
      command: ['node', 'dist/bench/systemd.js', ...process.argv.slice(2)].join(' '), environment: env,
      settings: { ...o, append: APPEND, memoryMiB: MEMORY_MIB, disk: img.disk, suite: img.suite },
      summary: rows.map((r) => ({ ...r, ratioVesselToQemu: ratio(r.marker.vessel, r.marker.qemu) })), runs: results, inProcess: stats,
    }, null, 2) + '\n');
    return 0;
  }
  const out: string[] = [
    `Vessel full-system boot benchmark (Debian ${img.suite} minbase + systemd from virtio-blk), ${env.date}`,
    `host: ${env.host}; ${env.qemu ?? 'QEMU not used'}; Vessel ${env.vessel}; load ${loadBefore} before, ${loadAfter} after`,
    `guest: ${img.kernel} + initramfs, -append "${APPEND}", ${MEMORY_MIB} MiB; ${o.runs} run(s) per engine and hart count` +
      (o.runs < RECORDED_RUNS ? ` (fewer than the ${RECORDED_RUNS} documented for recorded numbers)` : ''),
    '',
    `Wall time from spawn, s: to "${WELCOME}" (systemd starts) and to multi-user.target (the marker); CPU: user+system until the marker`,
  ];
  const t: string[][] = [['harts', 'engine', 'systemd starts (median)', 'multi-user min', 'median', 'CPU median', 'all runs']];
  for (const r of rows) {
    for (const e of o.engines) {
      const m = r.marker[e], w = r.welcome[e], c = r.cpu[e];
      if (m) t.push([String(r.cpus), ENGINE_LABEL[e], w ? fmtS(w.median) : '-', fmtS(m.min), fmtS(m.median), c ? fmtS(c.median) : '-', m.values.map(fmtS).join(' ')]);
    }
    const rm = ratio(r.marker.vessel, r.marker.qemu), rw = ratio(r.welcome.vessel, r.welcome.qemu), rc = ratio(r.cpu.vessel, r.cpu.qemu);
    if (rm) t.push([String(r.cpus), 'Vessel/QEMU', rw ? fmtRatio(rw.median) : '-', fmtRatio(rm.min), fmtRatio(rm.median), rc ? fmtRatio(rc.median) : '-', '']);
  }
  out.push(table(t, [true, false, true, true, true, true, false]));
  for (const r of results.filter((x) => x.analysis)) {
    const a = r.analysis!;
    out.push('', `systemd-analyze, ${ENGINE_LABEL[r.engine]}, ${r.cpus} hart(s), run ${r.run} (guest clock):`);
    out.push(a.time ? `  time: kernel+initrd ${fmtS(a.time.kernelS)} s, userspace ${fmtS(a.time.userspaceS)} s, total ${fmtS(a.time.totalS)} s` +
      (a.time.target ? `; ${a.time.target.unit} after ${fmtS(a.time.target.seconds)} s in userspace` : '') : '  time: not printed');
    out.push('  blame (top 10):', ...a.blame.map((b) => `    ${fmtS(b.seconds).padStart(8)} s  ${b.unit}`));
    out.push('  critical-chain:', ...a.criticalChain.split('\n').filter((l) => l.trim()).map((l) => `    ${l}`));
    const c = a.counters;
    if (c) {
      const s = (x: number): string => x.toFixed(1);
      out.push(`  guest kernel counters at login (all harts): user ${s(c.cpu.user)} s, system ${s(c.cpu.system)} s, idle ${s(c.cpu.idle)} s, ` +
        `iowait ${s(c.cpu.iowait)} s, irq+softirq ${s(c.cpu.irq + c.cpu.softirq)} s; ${c.processes} processes, ${c.ctxt} context switches, ` +
        `${c.pgfault} page faults (${c.pgmajfault} major), ${(c.pgpginKiB / 1024).toFixed(1)} MiB read`);
      out.push(`  IPIs: ${Object.entries(c.ipis).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
    }
  }
  if (stats) {
    const { welcome: w, marker: m } = stats;
    const mips = (n: number, sec: number): string => (n / sec / 1e6).toFixed(1);
    out.push('', `In-process Vessel boot, ${stats.cpus} hart(s) (--stats): instructions retired by all harts, host wall time`);
    out.push(table([
      ['phase', 'instructions', 'wall s', 'MIPS'],
      ['kernel + initramfs (to systemd)', (w.instructions / 1e9).toFixed(2) + ' G', fmtS(w.s), mips(w.instructions, w.s)],
      ['systemd to multi-user', ((m.instructions - w.instructions) / 1e9).toFixed(2) + ' G', fmtS(m.s - w.s), mips(m.instructions - w.instructions, m.s - w.s)],
      ['total', (m.instructions / 1e9).toFixed(2) + ' G', fmtS(m.s), mips(m.instructions, m.s)],
    ], [false, true, true, true]));
    out.push('JIT statistics per hart thread:', ...stats.jit.map((j) => `  ${JSON.stringify(j)}`));
  }
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

runBench(main);
