// virtio-blk benchmark: Vessel against QEMU TCG on the same kernel, initramfs and disk image.
//
// Each engine boots once with two virtio-blk disks: a data disk (a raw image of random bytes)
// and a small read-only tools disk holding bench/guest/randread.c, cross-compiled here with
// Debian's riscv64-linux-gnu-gcc. In the guest shell, timed with the guest's own clock:
//   seqwrite  dd of zeros to the data disk, 1 MiB blocks, conv=fsync (the flush is included)
//   seqread   dd from the data disk, 1 MiB blocks, after dropping the guest's page cache
//   randread  4 KiB O_DIRECT reads at random block offsets (the same offsets in both engines)
// Each is repeated --runs times in the same boot; min and median are reported.
//
//   npm run build && node dist/bench/disk.js --runs 5      # the setting for recorded numbers
//   node dist/bench/disk.js --help

import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { BOOT_MARKER, ensureDefaultImage } from '../images/build-image.js';
import { Guest, GuestError, GuestShell, withGuest } from './lib/guest.js';
import { ensureQemu, QEMU } from './lib/qemu.js';
import { buildToolsDisk } from './lib/guest-tools.js';
import { readOptions, runBench } from './lib/main.js';
import { engineList, ENGINES, intArg, type EngineName } from './lib/options.js';
import { fmtRatio, ratio, summarize, table, type Summary } from './lib/stats.js';

const VESSEL_CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const RANDREAD_SOURCE = fileURLToPath(new URL('../../bench/guest/randread.c', import.meta.url));
const APPEND = 'console=ttyS0';
const MEMORY_MIB = 256;
const RECORDED_RUNS = 5;

const ENGINE_LABEL: Record<EngineName, string> = { qemu: 'QEMU TCG', vessel: 'Vessel' };

const USAGE = `Usage: node dist/bench/disk.js [options]

Boots Vessel and QEMU (TCG) once each with a data disk and a tools disk, and measures
sequential write, sequential read and 4 KiB random read inside the guest (guest clock).

Options:
  --runs <r>          repetitions of each workload per engine, in one boot (default 3; ${RECORDED_RUNS} for recorded numbers)
  --disk-mib <m>      size of the data disk (default 256)
  --io-mib <m>        MiB per sequential run (default 64; at most the disk size)
  --ops <n>           4 KiB reads per random-read run (default 2000)
  --engines <list>    qemu,vessel (default both; the ratio needs both)
  --timeout <s>       give up on a boot or one workload after this many seconds (default 900)
  --json              print one JSON document instead of the table
  --verbose           copy the guests' console output to stderr
  -h, --help          this text
`;

interface Options {
  runs: number;
  diskMiB: number;
  ioMiB: number;
  ops: number;
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
      'disk-mib': { type: 'string' },
      'io-mib': { type: 'string' },
      ops: { type: 'string' },
      engines: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return null;
  const diskMiB = intArg('disk-mib', values['disk-mib'], 256, 8, 65536);
  return {
    runs: intArg('runs', values.runs, 3, 1, 100),
    diskMiB,
    ioMiB: intArg('io-mib', values['io-mib'], Math.min(64, diskMiB), 1, diskMiB),
    ops: intArg('ops', values.ops, 2000, 1, 10_000_000),
    engines: engineList(values.engines, ENGINES),
    timeoutS: intArg('timeout', values.timeout, 900, 1, 1e6),
    json: values.json ?? false,
    verbose: values.verbose ?? false,
  };
}

function progress(msg: string): void {
  process.stderr.write(`[bench disk] ${msg}\n`);
}

/** A raw image of `mib` MiB of random bytes, written for real so no read hits a sparse hole. */
function buildDataDisk(dir: string, mib: number): string {
  const p = path.join(dir, 'data.img');
  const fd = openSync(p, 'w');
  try {
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < mib; i++) writeSync(fd, randomFillSync(chunk));
  } finally {
    closeSync(fd);
  }
  return p;
}

interface Workload {
  id: 'seqwrite' | 'seqread' | 'randread';
  label: string;
  unit: 'MB/s' | 'IOPS';
  command: (run: number) => string;
  /** Work done per run, in the unit's numerator (bytes, or operations). */
  amount: number;
}

function workloadList(o: Options): Workload[] {
  const bytes = o.ioMiB << 20;
  return [
    {
      id: 'seqwrite', label: `sequential write, ${o.ioMiB} MiB in 1 MiB blocks + fsync`, unit: 'MB/s', amount: bytes,
      command: () => `t; s=$T; dd if=/dev/zero of=/dev/$DATA bs=1M count=${o.ioMiB} conv=fsync 2>/dev/null; t; echo BENCH_seqwrite_NS=$((T-s))`,
    },
    {
      id: 'seqread', label: `sequential read, ${o.ioMiB} MiB in 1 MiB blocks, cold cache`, unit: 'MB/s', amount: bytes,
      command: () => `echo 3 >/proc/sys/vm/drop_caches; t; s=$T; dd if=/dev/$DATA of=/dev/null bs=1M count=${o.ioMiB} 2>/dev/null; t; echo BENCH_seqread_NS=$((T-s))`,
    },
    {
      id: 'randread', label: `random read, ${o.ops} x 4 KiB O_DIRECT`, unit: 'IOPS', amount: o.ops,
      // randread times itself; its ns= is reported directly.
      command: (run) => `/tmp/randread /dev/$DATA ${o.ops} ${run * 7919} | sed -e 's/^RANDREAD .*ns=\\([0-9]*\\).*/BENCH_randread_NS=\\1/'`,
    },
  ];
}

function startGuest(engine: EngineName, kernel: string, initrd: string, data: string, tools: string, verbose: boolean): Guest {
  if (engine === 'vessel') {
    return Guest.spawn(ENGINE_LABEL.vessel, process.execPath, [
      VESSEL_CLI, 'run', '--kernel', kernel, '--initrd', initrd, '--append', APPEND, '--memory', `${MEMORY_MIB}M`,
      '--disk', data, '--disk', `${tools},readonly`,
    ], verbose);
  }
  return Guest.spawn(ENGINE_LABEL.qemu, QEMU, [
    '-M', 'virt', '-m', String(MEMORY_MIB), '-smp', '1', '-nographic', '-kernel', kernel, '-initrd', initrd, '-append', APPEND,
    '-drive', `file=${data},format=raw,if=none,id=data,cache=writeback`, '-device', 'virtio-blk-device,drive=data',
    '-drive', `file=${tools},format=raw,if=none,id=tools,readonly=on`, '-device', 'virtio-blk-device,drive=tools',
  ], verbose);
}

/** Seconds per run of each workload. */
type EngineResult = Record<Workload['id'], number[]>;

async function benchEngine(engine: EngineName, o: Options, kernel: string, initrd: string, data: string, tools: { path: string; blocks: number }): Promise<EngineResult> {
  const label = ENGINE_LABEL[engine];
  return withGuest(startGuest(engine, kernel, initrd, data, tools.path, o.verbose), async (guest) => {
    const { shell, bootS } = await GuestShell.boot(guest, BOOT_MARKER, o.timeoutS);
    progress(`${label}: booted in ${bootS.toFixed(1)} s`);
    // The engines may order the two disks differently: the tools disk is the small one.
    const disks = await shell.run('for d in vda vdb; do if [ $(cat /sys/block/$d/size) -lt 65536 ]; then TOOLS=$d; else DATA=$d; fi; done; echo BENCH_DISKS=$DATA,$TOOLS');
    if (!/BENCH_DISKS=vd[ab],vd[ab]/.test(disks)) throw new GuestError(`${label}: the guest does not see both disks`);
    await shell.run(`dd if=/dev/$TOOLS of=/tmp/randread bs=4096 count=${tools.blocks} 2>/dev/null; chmod +x /tmp/randread`);

    const result: EngineResult = { seqwrite: [], seqread: [], randread: [] };
    for (let r = 1; r <= o.runs; r++) {
      for (const w of workloadList(o)) {
        const m = await shell.result(w.command(r), new RegExp(`BENCH_${w.id}_NS=(\\d+)\\s*\\n`), `result of ${w.id}`);
        const seconds = Number(m[1]) / 1e9;
        result[w.id].push(seconds);
        const rate = w.amount / seconds;
        progress(`${label} run ${r}: ${w.id} ${seconds.toFixed(3)} s = ${w.unit === 'MB/s' ? (rate / 1e6).toFixed(1) : rate.toFixed(0)} ${w.unit}`);
      }
    }
    await shell.powerOff();
    return result;
  });
}

/** Rate summaries (higher is better) from per-run seconds: min is the slowest run. */
function rates(seconds: number[], amount: number, unit: Workload['unit']): Summary | null {
  const scale = unit === 'MB/s' ? 1e6 : 1;
  return summarize(seconds.map((s) => amount / s / scale));
}

async function main(): Promise<number> {
  const o = readOptions(parseOptions, USAGE);
  if (typeof o === 'number') return o;
  const qemuVersion = o.engines.includes('qemu') ? ensureQemu() : null;
  const image = await ensureDefaultImage({ quiet: true });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vessel-bench-disk-'));
  try {
    const tools = buildToolsDisk(RANDREAD_SOURCE, dir);
    const data = buildDataDisk(dir, o.diskMiB);
    progress(`data disk ${o.diskMiB} MiB, ${o.runs} run(s) of each workload per engine, engines ${o.engines.join(', ')}`);
    const results: Partial<Record<EngineName, EngineResult>> = {};
    for (const engine of o.engines) results[engine] = await benchEngine(engine, o, image.kernel, image.initrd, data, tools);

    const list = workloadList(o);
    const summary = list.map((w) => {
      const per: Partial<Record<EngineName, Summary | null>> = {};
      for (const e of o!.engines) per[e] = rates(results[e]![w.id], w.amount, w.unit);
      // Rates: Vessel/QEMU above 1 means Vessel is faster.
      return { id: w.id, label: w.label, unit: w.unit, rate: per, ratioVesselToQemu: ratio(per.vessel, per.qemu) };
    });
    const env = {
      date: new Date().toISOString(),
      host: `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`,
      qemu: qemuVersion,
      vessel: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', cwd: path.dirname(VESSEL_CLI) }).stdout.trim() || 'unknown',
    };
    if (o.json) {
      process.stdout.write(JSON.stringify({ command: ['node', 'dist/bench/disk.js', ...process.argv.slice(2)].join(' '), environment: env, settings: o, workloads: summary, seconds: results }, null, 2) + '\n');
      return 0;
    }
    const rows: string[][] = [['workload', 'unit', ...o.engines.map((e) => `${ENGINE_LABEL[e]} min / median`), ...(o.engines.length === 2 ? ['Vessel/QEMU (median)'] : [])]];
    const fmt = (x: number, unit: Workload['unit']) => (unit === 'MB/s' ? x.toFixed(1) : x.toFixed(0));
    for (const s of summary) {
      rows.push([s.label, s.unit, ...o.engines.map((e) => { const r = s.rate[e]; return r ? `${fmt(r.min, s.unit)} / ${fmt(r.median, s.unit)}` : '-'; }),
        ...(o.engines.length === 2 ? [s.ratioVesselToQemu ? fmtRatio(s.ratioVesselToQemu.median) : '-'] : [])]);
    }
    process.stdout.write([
      `Vessel virtio-blk benchmark, ${env.date}`,
      `host: ${env.host}; ${env.qemu ?? 'QEMU not used'}; Vessel ${env.vessel}`,
      `guest: ${image.kernel} + initramfs, 1 cpu, ${MEMORY_MIB} MiB; data disk ${o.diskMiB} MiB raw; ${o.runs} run(s) per workload` +
        (o.runs < RECORDED_RUNS ? ` (fewer than the ${RECORDED_RUNS} documented for recorded numbers)` : ''),
      '',
      'Throughput in the guest (higher is better; min is the slowest run)',
      table(rows, rows[0].map((_, i) => i > 1)),
    ].join('\n') + '\n');
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

runBench(main);
