// VMM benchmark: how quickly `vessel vmm` answers and boots, what it costs in memory, and how
// quickly a pause takes effect, with QEMU's resident memory for the same guest in the same run.
//
//   npm run build && node dist/bench/vmm.js [--runs 3] [--idle-seconds 10] [--json]
//
// Per run, one after the other (never two engines at once):
//   - Vessel: spawn `vessel vmm --api-sock S`, time until GET / answers (API ready), configure
//     the default image with 128 MiB over the API, time InstanceStart -> the /init marker, wait
//     for the shell, let the guest idle, read the VMM's VmRSS; then start a busy loop in the
//     guest and time PATCH /vm Paused round trips (request sent -> 204 received) and the
//     resumes; poweroff.
//   - QEMU TCG: `qemu-system-riscv64 -M virt -m 128 -nographic` with the same kernel, initrd and
//     command line, idle as long after its prompt, VmRSS.
// Then, once per --snapshot-mib size (default 128 and 1024): boot a guest of that size, fill
// --fill-mib of its RAM with non-zero data (a tmpfs file), pause, time PUT /snapshot/create,
// kill the VMM, start a fresh one and time PUT /snapshot/load with resume_vm (request -> reply),
// and check the restored shell answers.
// Progress goes to stderr; the table (or one JSON document with --json) to stdout.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { BOOT_MARKER, ensureDefaultImage } from '../images/build-image.js';
import { api, waitForApi } from '../test/vmm-client.js';
import { CLI, PROMPT, VesselProcess } from '../test/vessel-cli.js';
import { ensureQemu, QEMU } from './lib/qemu.js';
import { fmtS, summarize, table } from './lib/stats.js';

const MEMORY_MIB = 128;
const APPEND = 'console=ttyS0';
const BOOT_TIMEOUT_MS = 600_000;
const PAUSES = 20;

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    'idle-seconds': { type: 'string', default: '10' },
    'snapshot-mib': { type: 'string', default: '128,1024' },
    'fill-mib': { type: 'string', default: '64' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  process.stdout.write('Usage: node dist/bench/vmm.js [--runs N] [--idle-seconds S] [--snapshot-mib 128,1024] [--fill-mib M] [--json]\n');
  process.exit(0);
}
const runs = Number(opts.runs);
const idleMs = Number(opts['idle-seconds']) * 1000;
const snapshotSizes = opts['snapshot-mib'] === '' ? [] : opts['snapshot-mib'].split(',').map(Number);
const fillMiB = Number(opts['fill-mib']);
if (!Number.isInteger(runs) || runs < 1 || !(idleMs >= 0)) {
  process.stderr.write('bench/vmm: --runs must be a positive integer and --idle-seconds a number >= 0\n');
  process.exit(2);
}
if (snapshotSizes.some((m) => !Number.isInteger(m) || m < 64 || m > 2048) || !Number.isInteger(fillMiB) || fillMiB < 0 || snapshotSizes.some((m) => fillMiB > m / 2)) {
  process.stderr.write('bench/vmm: --snapshot-mib takes sizes from 64 to 2048 (comma-separated, or empty for none); --fill-mib at most half the smallest\n');
  process.exit(2);
}

const log = (msg: string): void => { process.stderr.write(`bench/vmm: ${msg}\n`); };

/** Resident set size of a live process, in MiB (from /proc/<pid>/status). */
function rssMiB(pid: number | undefined): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function expect204(sock: string, method: string, url: string, body: unknown): Promise<void> {
  const r = await api(sock, method, url, body);
  if (r.status !== 204) throw new Error(`${method} ${url}: ${r.status} ${r.text}`);
}

interface VesselRun { apiReadyS: number; startToMarkerS: number; rssMiB: number; pauseMs: number[]; resumeMs: number[] }

async function vesselRun(kernel: string, initrd: string, dir: string): Promise<VesselRun> {
  const sock = path.join(dir, 'api.sock');
  const vmm = new VesselProcess(process.execPath, [CLI, 'vmm', '--api-sock', sock], { cwd: dir });
  try {
    let apiReadyS = NaN;
    for (;;) {
      if (vmm.exit) throw new Error(`vessel vmm exited early\n${vmm.describe()}`);
      try {
        if ((await api(sock, 'GET', '/')).status === 200) { apiReadyS = vmm.elapsed(); break; }
      } catch { /* not yet */ }
      await sleep(2);
    }
    await expect204(sock, 'PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: MEMORY_MIB });
    await expect204(sock, 'PUT', '/boot-source', { kernel_image_path: kernel, initrd_path: initrd, boot_args: APPEND });
    const start = vmm.elapsed();
    await expect204(sock, 'PUT', '/actions', { action_type: 'InstanceStart' });
    const marker = await vmm.waitFor(BOOT_MARKER, 0, BOOT_TIMEOUT_MS);
    const startToMarkerS = vmm.elapsed() - start;
    const prompt = await vmm.waitFor(PROMPT, marker.end, BOOT_TIMEOUT_MS);
    await sleep(idleMs);
    const rss = rssMiB(vmm.child.pid);
    // A busy guest: the harts run whole slices, the worst case for a pause request.
    vmm.send('while :; do :; done &\n');
    await vmm.waitFor(PROMPT, prompt.end, BOOT_TIMEOUT_MS);
    await sleep(500);
    const pauseMs: number[] = [];
    const resumeMs: number[] = [];
    for (let i = 0; i < PAUSES; i++) {
      let t = performance.now();
      await expect204(sock, 'PATCH', '/vm', { state: 'Paused' });
      pauseMs.push(performance.now() - t);
      await sleep(20);
      t = performance.now();
      await expect204(sock, 'PATCH', '/vm', { state: 'Resumed' });
      resumeMs.push(performance.now() - t);
      await sleep(30 + Math.random() * 20);
    }
    vmm.send('kill %1; poweroff -f\n');
    await vmm.waitExit(60_000);
    return { apiReadyS, startToMarkerS, rssMiB: rss, pauseMs, resumeMs };
  } finally {
    vmm.kill();
  }
}

interface SnapshotRun { memMiB: number; createMs: number; loadMs: number; memFileMiB: number; allocatedMiB: number }

/** Boot, fill RAM, pause, snapshot; then restore in a fresh VMM and check the shell. */
async function snapshotRun(kernel: string, initrd: string, dir: string, memMiB: number): Promise<SnapshotRun> {
  const snap = path.join(dir, 'vm.snap');
  const mem = path.join(dir, 'vm.mem');
  const first = new VesselProcess(process.execPath, [CLI, 'vmm', '--api-sock', path.join(dir, 'a.sock')], { cwd: dir });
  let second: VesselProcess | undefined;
  try {
    await waitForApi(first, path.join(dir, 'a.sock'));
    const sock = path.join(dir, 'a.sock');
    await expect204(sock, 'PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: memMiB });
    await expect204(sock, 'PUT', '/boot-source', { kernel_image_path: kernel, initrd_path: initrd, boot_args: APPEND });
    await expect204(sock, 'PUT', '/actions', { action_type: 'InstanceStart' });
    const marker = await first.waitFor(BOOT_MARKER, 0, BOOT_TIMEOUT_MS);
    let at = (await first.waitFor(PROMPT, marker.end, BOOT_TIMEOUT_MS)).end;
    // Non-zero pages, so the memory file is not all holes: `yes` output kept in the initramfs.
    first.send(`yes vessel-snapshot-bench | head -c ${fillMiB}M > /fill; echo FILLED\n`);
    at = (await first.waitFor(/FILLED\r?\n/, at, BOOT_TIMEOUT_MS)).end;
    await expect204(sock, 'PATCH', '/vm', { state: 'Paused' });
    let t = performance.now();
    await expect204(sock, 'PUT', '/snapshot/create', { snapshot_type: 'Full', snapshot_path: snap, mem_file_path: mem });
    const createMs = performance.now() - t;
    first.kill();
    await first.exited;
    const st = fs.statSync(mem);

    const sock2 = path.join(dir, 'b.sock');
    second = new VesselProcess(process.execPath, [CLI, 'vmm', '--api-sock', sock2], { cwd: dir });
    await waitForApi(second, sock2);
    t = performance.now();
    await expect204(sock2, 'PUT', '/snapshot/load', { snapshot_path: snap, mem_backend: { backend_type: 'File', backend_path: mem }, resume_vm: true });
    const loadMs = performance.now() - t;
    second.send('echo RESTORED-$((6*7))\n');
    await second.waitFor('RESTORED-42', 0, BOOT_TIMEOUT_MS);
    second.send('poweroff -f\n');
    await second.waitExit(60_000);
    return { memMiB, createMs, loadMs, memFileMiB: st.size / 2 ** 20, allocatedMiB: st.blocks * 512 / 2 ** 20 };
  } finally {
    first.kill();
    second?.kill();
    fs.rmSync(snap, { force: true });
    fs.rmSync(mem, { force: true });
  }
}

async function qemuRss(kernel: string, initrd: string): Promise<{ markerS: number; rssMiB: number }> {
  const q = new VesselProcess(QEMU, ['-M', 'virt', '-m', String(MEMORY_MIB), '-smp', '1', '-nographic', '-kernel', kernel, '-initrd', initrd, '-append', APPEND]);
  try {
    const marker = await q.waitFor(BOOT_MARKER, 0, BOOT_TIMEOUT_MS);
    const markerS = q.elapsed();
    await q.waitFor(PROMPT, marker.end, BOOT_TIMEOUT_MS);
    await sleep(idleMs);
    return { markerS, rssMiB: rssMiB(q.child.pid) };
  } finally {
    q.kill();
    await q.exited;
  }
}

let qemuVersion: string;
try {
  qemuVersion = ensureQemu();
} catch (e) {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
const image = await ensureDefaultImage({ quiet: true });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-bench-vmm-'));
const vessel: VesselRun[] = [];
const qemu: { markerS: number; rssMiB: number }[] = [];
const snapshots: SnapshotRun[] = [];
try {
  for (let i = 0; i < runs; i++) {
    log(`run ${i + 1}/${runs}: QEMU`);
    qemu.push(await qemuRss(image.kernel, image.initrd));
    log(`run ${i + 1}/${runs}: Vessel`);
    vessel.push(await vesselRun(image.kernel, image.initrd, dir));
  }
  for (const memMiB of snapshotSizes) {
    log(`snapshot of a ${memMiB} MiB guest with ${fillMiB} MiB filled`);
    snapshots.push(await snapshotRun(image.kernel, image.initrd, dir, memMiB));
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

const s = {
  apiReady: summarize(vessel.map((r) => r.apiReadyS * 1000)),
  startToMarker: summarize(vessel.map((r) => r.startToMarkerS)),
  vesselRss: summarize(vessel.map((r) => r.rssMiB)),
  qemuRss: summarize(qemu.map((r) => r.rssMiB)),
  qemuMarker: summarize(qemu.map((r) => r.markerS)),
  pause: summarize(vessel.flatMap((r) => r.pauseMs)),
  resume: summarize(vessel.flatMap((r) => r.resumeMs)),
};
const maxPause = Math.max(...vessel.flatMap((r) => r.pauseMs));
if (opts.json) {
  process.stdout.write(JSON.stringify({ node: process.version, qemuVersion, memoryMiB: MEMORY_MIB, idleSeconds: idleMs / 1000, runs, vessel, qemu, summary: s, maxPauseMs: maxPause, fillMiB, snapshots }, null, 2) + '\n');
} else {
  const row = (name: string, x: ReturnType<typeof summarize>, unit: string, fmt = fmtS): string[] =>
    [name, x ? fmt(x.min) : '-', x ? fmt(x.median) : '-', unit, x ? x.values.map(fmt).join(' ') : ''];
  const one = (x: number): string => x.toFixed(1);
  process.stdout.write(`${process.version}, ${qemuVersion}, guest ${MEMORY_MIB} MiB, 1 hart, RSS after ${idleMs / 1000} s idle at the prompt\n\n`);
  process.stdout.write(table([
    ['measure', 'min', 'median', 'unit', 'all runs'],
    row('vessel vmm: process start -> API answers', s.apiReady, 'ms', one),
    row('vessel vmm: InstanceStart -> init marker', s.startToMarker, 's'),
    row('QEMU TCG: process start -> init marker', s.qemuMarker, 's'),
    row('vessel vmm: RSS, idle guest', s.vesselRss, 'MiB', one),
    row('QEMU TCG: RSS, idle guest', s.qemuRss, 'MiB', one),
  ], [false, true, true, false, false]) + '\n\n');
  process.stdout.write(`PATCH /vm Paused round trip on a busy guest (${PAUSES} per run): min ${s.pause?.min.toFixed(2)} ms, median ${s.pause?.median.toFixed(2)} ms, max ${maxPause.toFixed(2)} ms\n`);
  process.stdout.write(`PATCH /vm Resumed round trip: min ${s.resume?.min.toFixed(2)} ms, median ${s.resume?.median.toFixed(2)} ms\n`);  if (snapshots.length) {
    process.stdout.write(`\nSnapshot (one run per size; ${fillMiB} MiB of guest RAM filled with non-zero data; request -> reply)\n`);
    process.stdout.write(table([
      ['guest RAM', 'create', 'load + resume', 'memory file', 'allocated'],
      ...snapshots.map((r) => [`${r.memMiB} MiB`, `${r.createMs.toFixed(0)} ms`, `${r.loadMs.toFixed(0)} ms`, `${r.memFileMiB.toFixed(0)} MiB`, `${r.allocatedMiB.toFixed(1)} MiB`]),
    ], [false, true, true, true, true]) + '\n');
  }
}
