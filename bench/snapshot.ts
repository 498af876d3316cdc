// Snapshot benchmark: save and load of a booted guest (1 GiB by default), Vessel's VMM against
// QEMU TCG's migration to a file in the same run.
//
// Each engine boots the default kernel + initramfs once with --mib of RAM and 1 hart; the guest
// fills --fill-mib of its tmpfs with `yes` output (non-zero pages) and is paused. Then:
//   save   Vessel: PUT /snapshot/create (request -> reply), --runs times over the same files.
//          QEMU:   QMP `stop`, then `migrate` to "exec:cat > FILE" (7.2 has no file: URI), timed
//                  from the command to query-migrate's "completed"; `cont` between the --runs saves.
//   load   alternately per round, each in a fresh process whose API/QMP already answers:
//          Vessel: PUT /snapshot/load with resume_vm (request -> reply);
//          QEMU:   `-incoming defer`, QMP migrate-incoming "exec:cat FILE", `cont` once the guest is
//                  back (paused, as it was saved) -> query-status "running".
//          Then the restored shell must answer. Vessel's VMM logs how long the memory file took.
//
//   npm run build && node dist/bench/snapshot.js --runs 5     # the setting for recorded numbers

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { BOOT_MARKER, ensureDefaultImage } from '../images/build-image.js';
import { api, waitForApi } from '../test/vmm-client.js';
import { CLI, PROMPT, VesselProcess } from '../test/vessel-cli.js';
import { GuestError } from './lib/guest.js';
import { readOptions, runBench } from './lib/main.js';
import { intArg } from './lib/options.js';
import { Qmp } from './lib/qmp.js';
import { ensureQemu, QEMU } from './lib/qemu.js';
import { summarize, table, type Summary } from './lib/stats.js';

const APPEND = 'console=ttyS0';
const RECORDED_RUNS = 5;

const USAGE = `Usage: node dist/bench/snapshot.js [options]

Times snapshot save and load of a booted guest in Vessel's VMM and in QEMU TCG (migration
to a file), one process per load, alternating the engines.

Options:
  --mib <m>        guest RAM in MiB (default 1024)
  --fill-mib <m>   MiB of non-zero data the guest writes to its tmpfs first (default 64)
  --runs <r>       saves and loads per engine (default 3; ${RECORDED_RUNS} for recorded numbers)
  --timeout <s>    give up on a boot after this many seconds (default 600)
  --json           print one JSON document instead of the table
  -h, --help       this text
`;

interface Options { mib: number; fillMiB: number; runs: number; timeoutS: number; json: boolean }

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      mib: { type: 'string' },
      'fill-mib': { type: 'string' },
      runs: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return null;
  const mib = intArg('mib', values.mib, 1024, 64, 2048);
  return {
    mib,
    fillMiB: intArg('fill-mib', values['fill-mib'], 64, 0, mib / 2),
    runs: intArg('runs', values.runs, 3, 1, 100),
    timeoutS: intArg('timeout', values.timeout, 600, 1, 1e6),
    json: values.json ?? false,
  };
}

const progress = (msg: string): void => { process.stderr.write(`[bench snapshot] ${msg}\n`); };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function expect204(sock: string, method: string, url: string, body: unknown): Promise<void> {
  const r = await api(sock, method, url, body);
  if (r.status !== 204) throw new GuestError(`${method} ${url}: ${r.status} ${r.text}`);
}

/** Waits for the shell, then has the guest write `fillMiB` MiB of non-zero data to its tmpfs. */
async function bootAndFill(p: VesselProcess, o: Options, label: string): Promise<void> {
  const marker = await p.waitFor(BOOT_MARKER, 0, o.timeoutS * 1000);
  const at = (await p.waitFor(PROMPT, marker.end, o.timeoutS * 1000)).end;
  p.send(`yes vessel-snapshot-bench | head -c ${o.fillMiB}M > /fill; echo FILL$((1+1))ED\n`);
  await p.waitFor(/FILL2ED\r?\n/, at, o.timeoutS * 1000);
  progress(`${label}: booted, ${o.fillMiB} MiB filled`);
}

/** Whether the restored guest's shell answers within `ms`. */
async function answers(p: VesselProcess, ms: number): Promise<boolean> {
  const from = p.stdout.length;
  p.send('echo RESTORED-$((6*7))\n');
  return p.waitFor('RESTORED-42', from, ms).then(() => true, () => false);
}

function vmm(dir: string, name: string): { p: VesselProcess; sock: string } {
  const sock = path.join(dir, `${name}.sock`);
  return { p: new VesselProcess(process.execPath, [CLI, 'vmm', '--api-sock', sock], { cwd: dir }), sock };
}

interface Files { state: string; memory: string }

async function vesselSave(o: Options, kernel: string, initrd: string, dir: string, files: Files): Promise<number[]> {
  const { p, sock } = vmm(dir, 'save');
  try {
    await waitForApi(p, sock);
    await expect204(sock, 'PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: o.mib });
    await expect204(sock, 'PUT', '/boot-source', { kernel_image_path: kernel, initrd_path: initrd, boot_args: APPEND });
    await expect204(sock, 'PUT', '/actions', { action_type: 'InstanceStart' });
    await bootAndFill(p, o, 'Vessel');
    await expect204(sock, 'PATCH', '/vm', { state: 'Paused' });
    const ms: number[] = [];
    for (let r = 0; r < o.runs; r++) {
      // Each save writes new files, as QEMU's does: truncating the last 1 GiB sparse file took seconds on ext4 with discard.
      fs.rmSync(files.memory, { force: true });
      const t = performance.now();
      await expect204(sock, 'PUT', '/snapshot/create', { snapshot_type: 'Full', snapshot_path: files.state, mem_file_path: files.memory });
      ms.push(performance.now() - t);
      progress(`Vessel save ${r + 1}: ${ms[r].toFixed(0)} ms`);
    }
    return ms;
  } finally {
    p.kill();
    await p.exited;
  }
}

/** Load time (request -> reply) and the VMM's own log of the memory file's part. */
async function vesselLoad(dir: string, files: Files): Promise<{ ms: number; memoryMs: number }> {
  const { p, sock } = vmm(dir, 'load');
  try {
    await waitForApi(p, sock);
    await expect204(sock, 'PUT', '/logger', { level: 'Info' }); // "snapshot loaded" on stderr has memory_ms
    const t = performance.now();
    await expect204(sock, 'PUT', '/snapshot/load', { snapshot_path: files.state, mem_backend: { backend_type: 'File', backend_path: files.memory }, resume_vm: true });
    const ms = performance.now() - t;
    if (!(await answers(p, 60_000))) throw new GuestError(`Vessel: the restored guest does not answer\n${p.describe()}`);
    const logged = /"memory_ms":(\d+)/.exec(p.stderr);
    return { ms, memoryMs: logged ? Number(logged[1]) : NaN };
  } finally {
    p.kill();
    await p.exited;
  }
}

function qemu(o: Options, kernel: string, initrd: string, qmpPath: string, extra: string[]): VesselProcess {
  return new VesselProcess(QEMU, ['-M', 'virt', '-m', String(o.mib), '-smp', '1', '-nographic', '-kernel', kernel, '-initrd', initrd,
    '-append', APPEND, '-qmp', `unix:${qmpPath},server=on,wait=off`, ...extra]);
}

async function qemuSave(o: Options, kernel: string, initrd: string, dir: string, file: string): Promise<number[]> {
  const qmpPath = path.join(dir, 'qemu-save.qmp');
  const p = qemu(o, kernel, initrd, qmpPath, []);
  const qmp = await Qmp.connect(qmpPath);
  try {
    await bootAndFill(p, o, 'QEMU');
    const ms: number[] = [];
    for (let r = 0; r < o.runs; r++) {
      // A migrated VM stays paused ("postmigrate") and refuses another migration until it runs again.
      if (r > 0) await qmp.command('cont');
      await qmp.command('stop');
      fs.rmSync(file, { force: true });
      const t = performance.now();
      await qmp.command('migrate', { uri: `exec:cat > ${file}` });
      for (;;) {
        const s = (await qmp.command<{ status?: string }>('query-migrate')).status;
        if (s === 'completed') break;
        if (s === 'failed' || s === 'cancelled') throw new GuestError(`QEMU: migration to ${file} ${s}`);
        await sleep(2);
      }
      ms.push(performance.now() - t);
      progress(`QEMU save ${r + 1}: ${ms[r].toFixed(0)} ms`);
    }
    return ms;
  } finally {
    qmp.close();
    p.kill();
    await p.exited;
  }
}

async function qemuLoad(o: Options, kernel: string, initrd: string, dir: string, file: string): Promise<{ ms: number; answered: boolean }> {
  const qmpPath = path.join(dir, 'qemu-load.qmp');
  fs.rmSync(qmpPath, { force: true });
  const p = qemu(o, kernel, initrd, qmpPath, ['-incoming', 'defer']);
  const qmp = await Qmp.connect(qmpPath);
  try {
    const t = performance.now();
    await qmp.command('migrate-incoming', { uri: `exec:cat ${file}` });
    // The guest comes back in the state it was saved in, paused ("inmigrate" until then): resume it.
    for (let s = ''; s !== 'running';) {
      s = (await qmp.command<{ status: string }>('query-status')).status;
      if (s === 'paused') await qmp.command('cont');
      else if (s !== 'running') await sleep(2);
    }
    const ms = performance.now() - t;
    // QEMU 7.2's restored riscv64 guest here echoes the typed line but at times never runs it: counted, not fatal.
    return { ms, answered: await answers(p, 20_000) };
  } finally {
    qmp.close();
    p.kill();
    await p.exited;
  }
}

const mib = (bytes: number): number => bytes / 2 ** 20;

async function main(): Promise<number> {
  const o = readOptions(parseOptions, USAGE);
  if (typeof o === 'number') return o;
  const qemuVersion = ensureQemu();
  const image = await ensureDefaultImage({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-bench-snapshot-'));
  try {
    const files: Files = { state: path.join(dir, 'vm.snap'), memory: path.join(dir, 'vm.mem') };
    const qemuFile = path.join(dir, 'qemu.mig');
    const saves = { vessel: await vesselSave(o, image.kernel, image.initrd, dir, files), qemu: await qemuSave(o, image.kernel, image.initrd, dir, qemuFile) };
    const loads = { vessel: [] as number[], vesselMemory: [] as number[], qemu: [] as number[], qemuAnswered: 0 };
    for (let r = 0; r < o.runs; r++) {
      const v = await vesselLoad(dir, files);
      loads.vessel.push(v.ms);
      loads.vesselMemory.push(v.memoryMs);
      const q = await qemuLoad(o, image.kernel, image.initrd, dir, qemuFile);
      loads.qemu.push(q.ms);
      if (q.answered) loads.qemuAnswered++;
      progress(`load ${r + 1}: Vessel ${v.ms.toFixed(0)} ms (memory file ${v.memoryMs} ms), QEMU ${q.ms.toFixed(0)} ms${q.answered ? '' : ' (its guest did not answer)'}`);
    }
    const mem = fs.statSync(files.memory);
    const sizes = { vesselMemoryFileMiB: mib(mem.size), vesselAllocatedMiB: mib(mem.blocks * 512), vesselStateKiB: fs.statSync(files.state).size / 1024, qemuFileMiB: mib(fs.statSync(qemuFile).size) };
    const summary = {
      saveVessel: summarize(saves.vessel), saveQemu: summarize(saves.qemu),
      loadVessel: summarize(loads.vessel), loadVesselMemory: summarize(loads.vesselMemory), loadQemu: summarize(loads.qemu),
    };
    const env = { date: new Date().toISOString(), host: `${os.cpus().length} cores, Node ${process.version}`, load: os.loadavg().map((x) => x.toFixed(2)).join(' '), qemu: qemuVersion };
    if (o.json) {
      process.stdout.write(JSON.stringify({ environment: env, settings: o, sizes, saves, loads, summary }, null, 2) + '\n');
      return 0;
    }
    const cell = (s: Summary | null): string => (s ? `${s.min.toFixed(0)} / ${s.median.toFixed(0)}` : '-');
    const rows = [
      ['measure (ms)', 'Vessel min / median', 'QEMU TCG min / median', 'Vessel/QEMU (median)'],
      ['save (paused guest)', cell(summary.saveVessel), cell(summary.saveQemu), (summary.saveVessel!.median / summary.saveQemu!.median).toFixed(2) + 'x'],
      ['load, resumed', cell(summary.loadVessel), cell(summary.loadQemu), (summary.loadVessel!.median / summary.loadQemu!.median).toFixed(2) + 'x'],
      ['  of which the memory file', cell(summary.loadVesselMemory), '', ''],
    ];
    process.stdout.write([
      `Vessel snapshot benchmark, ${env.date}; ${env.host}; load average ${env.load}; ${qemuVersion}`,
      `guest: ${o.mib} MiB, 1 hart, ${o.fillMiB} MiB filled; ${o.runs} run(s)` + (o.runs < RECORDED_RUNS ? ` (fewer than the ${RECORDED_RUNS} documented for recorded numbers)` : ''),
      `restored guests that answered on the console: Vessel ${o.runs} of ${o.runs} (required), QEMU ${loads.qemuAnswered} of ${o.runs}`,
      `files: Vessel memory ${sizes.vesselMemoryFileMiB.toFixed(0)} MiB (${sizes.vesselAllocatedMiB.toFixed(1)} MiB allocated) + state ${sizes.vesselStateKiB.toFixed(0)} KiB; QEMU ${sizes.qemuFileMiB.toFixed(1)} MiB`,
      '',
      table(rows, rows[0].map((_, i) => i > 0)),
    ].join('\n') + '\n');
    return 0;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

runBench(main);
