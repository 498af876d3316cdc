// Host benchmark: what `vessel host` does with many VMs on one machine, against QEMU TCG where
// there is a peer to compare with.
//
//   npm run build && node dist/bench/host.js [--vms 4] [--seconds 20] [--skip density,fairness,startup]
//
// It starts its own `vessel host` on a temporary state directory and, at the end (or on a
// failure or Ctrl-C), deletes its VMs and stops it. Every guest is the default image's kernel and
// busybox initramfs (no root disk), with no network device, "console=ttyS0".
//   1. Density: N VMs of 256 MiB, idle for 20 s after their shell prompt: host RSS of each VM
//      process and its CPU use over 10 s (its cgroup's cpuacct.usage); how many would fit in 75%
//      of the host's RAM. Then N QEMU TCG guests the same way (CPU from /proc/<pid>/task/*/schedstat).
//   2. Fairness: busy guests (`while :; do :; done &` on the serial console). Two VMs pinned to
//      host core 1 with weights 200:100, then 200:400 after a live PATCH; one VM alone capped at
//      25%; three VMs unpinned with weights 100:100:200. CPU time from each VM's cgroup.
//   3. Start-up: POST /vms (create + start) -> BOOT_MARKER in the VM's log, 1 VM, then M at once.
// Progress goes to stderr; tables, verdicts and finally one JSON document to stdout.

import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import { parseArgs } from 'node:util';

import { BOOT_MARKER, ensureDefaultImage } from '../images/build-image.js';
import { Cgroups } from '../src/host/cgroups.js';
import { hostCpuSample, hostMemory, processRss, processSchedStat } from '../src/host/proc.js';
import { PROMPT, VesselProcess } from '../test/vessel-cli.js';
import { GuestError } from './lib/guest.js';
import { runBench } from './lib/main.js';
import { intArg, UsageError } from './lib/options.js';
import { ensureQemu, QEMU } from './lib/qemu.js';
import { summarize, table } from './lib/stats.js';
import { VesselHost, type VmInfo } from './lib/vessel-host.js';

const PARTS = ['density', 'fairness', 'startup'] as const;
type Part = typeof PARTS[number];
const APPEND = 'console=ttyS0';
const BOOT_TIMEOUT_MS = 900_000;
const IDLE_SETTLE_S = 20;
const IDLE_WINDOW_S = 10;
const BUSY_LOOP = 'while :; do :; done &\n';
const MiB = 2 ** 20;

const USAGE = `Usage: node dist/bench/host.js [options]

Runs its own \`vessel host\` and measures VM density (RSS, idle CPU; QEMU TCG alongside),
CPU fairness (cgroup weights and caps) and start-up time (POST /vms -> ${BOOT_MARKER}).

Options:
  --vms <n>            idle VMs in the density part, and QEMU guests (default 4)
  --seconds <s>        length of each fairness measurement (default 20)
  --startup-vms <m>    VMs created at once in the start-up part (default 10)
  --skip <list>        parts to leave out: ${PARTS.join(',')}
  -h, --help           this text
`;

interface Options { vms: number; seconds: number; startupVms: number; skip: Set<Part> }

function parseOptions(argv: string[]): Options | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: {
        vms: { type: 'string' }, seconds: { type: 'string' }, 'startup-vms': { type: 'string' }, skip: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) return null;
  const skip = new Set((values.skip ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  for (const s of skip) if (!(PARTS as readonly string[]).includes(s)) throw new UsageError(`--skip: unknown part "${s}" (${PARTS.join(', ')})`);
  return {
    vms: intArg('vms', values.vms, 4, 1, 64),
    seconds: intArg('seconds', values.seconds, 20, 1, 3600),
    startupVms: intArg('startup-vms', values['startup-vms'], 10, 1, 64),
    skip: skip as Set<Part>,
  };
}

const progress = (msg: string): void => { process.stderr.write(`[bench/host] ${msg}\n`); };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const range = (n: number): number[] => [...Array(n).keys()];
const pct = (x: number): string => `${x.toFixed(1)}%`;
const loadavg = (): string => os.loadavg().map((l) => l.toFixed(2)).join(' ');

/**
 * CPU use over `seconds` of wall time, as percent of one core per counter (`read` returns
 * microseconds of CPU time), with the whole host's busy percent (of ncpu x 100) in the same window.
 */
async function measure(seconds: number, read: () => number[]): Promise<{ percent: number[]; hostBusy: number; loadavg: string }> {
  const h0 = hostCpuSample(), a = read(), t0 = performance.now();
  await sleep(seconds * 1000);
  const b = read(), wallUs = (performance.now() - t0) * 1000, h1 = hostCpuSample();
  return {
    percent: b.map((x, i) => ((x - a[i]) / wallUs) * 100),
    hostBusy: ((h1.busyTicks - h0.busyTicks) / (h1.totalTicks - h0.totalTicks)) * 100 * os.availableParallelism(),
    loadavg: loadavg(),
  };
}

class Bench {
  constructor(readonly host: VesselHost, readonly cg: Cgroups, readonly kernel: string, readonly initrd: string) {}

  /** CPU time of the VM's cgroup (cpuacct.usage on v1), microseconds. */
  cpuUs(vm: VmInfo): number {
    const u = this.cg.usage(vm.id);
    if (!u) throw new GuestError(`no CPU usage for VM ${vm.name}'s cgroup ${this.cg.groupDir(vm.id)}`);
    return u.usageUs;
  }

  create(name: string, memoryMiB: number, extra: Record<string, unknown> = {}): Promise<VmInfo> {
    return this.host.create({ name, memory_mib: memoryMiB, kernel: this.kernel, initrd: this.initrd, append: APPEND, nets: ['none'], ...extra });
  }

  /** Boots VMs at once and waits for each one's shell prompt. */
  async boot(names: string[], memoryMiB: number, extra: (name: string) => Record<string, unknown> = () => ({})): Promise<VmInfo[]> {
    const vms = await Promise.all(names.map((n) => this.create(n, memoryMiB, extra(n))));
    await Promise.all(names.map((n) => this.host.waitForLog(n, [BOOT_MARKER, PROMPT], BOOT_TIMEOUT_MS)));
    progress(`${names.join(', ')}: at the shell prompt (load ${loadavg()})`);
    return vms;
  }

  async busy(vms: VmInfo[]): Promise<void> {
    for (const vm of vms) await this.host.type(vm, BUSY_LOOP);
  }
}

/** `taskset -a -p -c CPUS PID`: every thread of the process on those host CPUs. */
function pin(pid: number, cpus: string): void {
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new GuestError(`taskset -a -p -c ${cpus} ${pid} failed: ${r.error?.message ?? r.stderr.trim()}`);
}

// ---------------------------------------------------------------------------------------------
// 1. Density

async function density(b: Bench, n: number): Promise<Record<string, unknown>> {
  const memTotal = hostMemory().totalBytes;
  progress(`density: booting ${n} Vessel VMs of 256 MiB at once`);
  const names = range(n).map((i) => `idle${i}`);
  const vms = await b.boot(names, 256);
  progress(`density: Vessel VMs idle for ${IDLE_SETTLE_S} s, then ${IDLE_WINDOW_S} s measured`);
  await sleep(IDLE_SETTLE_S * 1000);
  const vesselRss = vms.map((vm) => (processRss(vm.pid!) ?? NaN) / MiB);
  // The host daemon's own CPU in the same window (it samples every VM's use every 2 s).
  const hostPid = b.host.proc.child.pid!;
  const withDaemon = await measure(IDLE_WINDOW_S, () => [...vms.map((vm) => b.cpuUs(vm)), processSchedStat(hostPid)?.runUs ?? NaN]);
  const vesselCpu = { ...withDaemon, percent: withDaemon.percent.slice(0, n) };
  const hostDaemonCpu = withDaemon.percent[n];
  const hostDaemonRss = (processRss(hostPid) ?? NaN) / MiB;
  for (const name of names) await b.host.delete(name);

  progress(`density: booting ${n} QEMU TCG guests of 256 MiB at once`);
  const qemus = range(n).map(() => new VesselProcess(QEMU, ['-M', 'virt', '-m', '256', '-smp', '1', '-nographic', '-nic', 'none',
    '-kernel', b.kernel, '-initrd', b.initrd, '-append', APPEND]));
  let qemuRss: number[], qemuCpu: Awaited<ReturnType<typeof measure>>;
  try {
    await Promise.all(qemus.map(async (q) => { const m = await q.waitFor(BOOT_MARKER, 0, BOOT_TIMEOUT_MS); await q.waitFor(PROMPT, m.end, BOOT_TIMEOUT_MS); }));
    progress(`density: QEMU guests at the shell prompt, idle for ${IDLE_SETTLE_S} s, then ${IDLE_WINDOW_S} s measured`);
    await sleep(IDLE_SETTLE_S * 1000);
    qemuRss = qemus.map((q) => (processRss(q.child.pid!) ?? NaN) / MiB);
    qemuCpu = await measure(IDLE_WINDOW_S, () => qemus.map((q) => processSchedStat(q.child.pid!)?.runUs ?? NaN));
  } finally {
    for (const q of qemus) q.kill();
    await Promise.all(qemus.map((q) => q.exited.catch(() => undefined)));
  }

  const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
  const fit = (rss: number): number => Math.floor((memTotal * 0.75) / MiB / rss);
  const v = { rssMiB: mean(vesselRss), cpu: mean(vesselCpu.percent) }, q = { rssMiB: mean(qemuRss), cpu: mean(qemuCpu.percent) };
  process.stdout.write(`\n1. Density: ${n} guests of 256 MiB (kernel + busybox initramfs, no network), idle ${IDLE_SETTLE_S} s after the prompt, CPU over ${IDLE_WINDOW_S} s\n`);
  process.stdout.write(table([
    ['', 'RSS per VM (MiB)', 'mean', 'idle CPU per VM (% of a core)', 'mean', `fit in 75% of ${(memTotal / 2 ** 30).toFixed(1)} GiB`],
    ['Vessel (vessel host)', vesselRss.map((x) => x.toFixed(0)).join(' '), v.rssMiB.toFixed(1), vesselCpu.percent.map((x) => x.toFixed(2)).join(' '), v.cpu.toFixed(2), String(fit(v.rssMiB))],
    ['QEMU TCG', qemuRss.map((x) => x.toFixed(0)).join(' '), q.rssMiB.toFixed(1), qemuCpu.percent.map((x) => x.toFixed(2)).join(' '), q.cpu.toFixed(2), String(fit(q.rssMiB))],
    ['Vessel / QEMU', '', `${(v.rssMiB / q.rssMiB).toFixed(2)}x`, '', `${(v.cpu / q.cpu).toFixed(2)}x`, ''],
  ], [false, false, true, false, true, true]) + '\n');
  process.stdout.write(`(vessel host daemon itself: ${hostDaemonRss.toFixed(0)} MiB RSS, ${hostDaemonCpu.toFixed(2)}% of a core; whole host busy ${pct(vesselCpu.hostBusy)} / ${pct(qemuCpu.hostBusy)} of ${os.availableParallelism() * 100}% in the two windows)\n`);
  const worst = Math.max(...vesselCpu.percent);
  process.stdout.write(`verdict: idle Vessel VMs use ${v.cpu.toFixed(2)}% of a core each (worst ${worst.toFixed(2)}%; target < 1%: ${worst < 1 ? 'met' : 'NOT met'}), QEMU ${q.cpu.toFixed(2)}%; ` +
    `RSS ${v.rssMiB.toFixed(0)} MiB against QEMU's ${q.rssMiB.toFixed(0)} MiB, so ${fit(v.rssMiB)} such VMs fit in 75% of RAM (QEMU: ${fit(q.rssMiB)})\n`);
  return {
    guests: n, memoryMiB: 256, memTotalBytes: memTotal, hostDaemonRssMiB: hostDaemonRss, hostDaemonCpuPercent: hostDaemonCpu,
    vessel: { rssMiB: vesselRss, idleCpuPercent: vesselCpu.percent, hostBusyPercent: vesselCpu.hostBusy, loadavg: vesselCpu.loadavg, fitIn75PercentOfRam: fit(v.rssMiB) },
    qemu: { rssMiB: qemuRss, idleCpuPercent: qemuCpu.percent, hostBusyPercent: qemuCpu.hostBusy, loadavg: qemuCpu.loadavg, fitIn75PercentOfRam: fit(q.rssMiB) },
    ratio: { rss: v.rssMiB / q.rssMiB, idleCpu: v.cpu / q.cpu },
  };
}

// ---------------------------------------------------------------------------------------------
// 2. Fairness

/**
 * What CFS should give busy VMs of these weights, each able to use at most `maxEach` percent
 * (one vCPU: one core), out of `capacity` percent: weighted max-min (water-filling).
 */
function fairShares(weights: number[], capacity: number, maxEach: number): number[] {
  const share = weights.map(() => 0);
  let open = weights.map((_, i) => i), left = capacity;
  while (open.length) {
    const w = open.reduce((s, i) => s + weights[i], 0);
    const capped = open.filter((i) => (left * weights[i]) / w >= maxEach);
    if (!capped.length) { for (const i of open) share[i] = (left * weights[i]) / w; break; }
    for (const i of capped) { share[i] = maxEach; left -= maxEach; }
    open = open.filter((i) => !capped.includes(i));
  }
  return share;
}

async function fairness(b: Bench, seconds: number): Promise<Record<string, unknown>> {
  const ncpu = os.availableParallelism();
  const allCpus = `0-${ncpu - 1}`;
  const rows: string[][] = [['case', 'weights (cap)', 'CPU, % of a core', 'split', 'expected', 'host busy', '']];
  const out: Record<string, unknown> = { seconds };
  const within = (x: number, target: number, tol: number): boolean => Math.abs(x - target) <= tol;

  progress('fairness: two busy VMs, weights 200:100, pinned to host core 1');
  const [fa, fb] = await b.boot(['fa', 'fb'], 128, (n) => ({ cpu_weight: n === 'fa' ? 200 : 100 }));
  await b.busy([fa, fb]);
  for (const vm of [fa, fb]) pin(vm.pid!, '1');
  await sleep(2000);
  const w1 = await measure(seconds, () => [b.cpuUs(fa), b.cpuUs(fb)]);
  const r1 = w1.percent[0] / w1.percent[1];
  rows.push(['pinned to core 1', '200:100', w1.percent.map(pct).join(' : '), `${r1.toFixed(2)}:1`, '2:1 ± 10%', pct(w1.hostBusy), within(r1, 2, 0.2) ? 'met' : 'NOT met']);

  progress('fairness: PATCH fb cpu_weight 400 (live)');
  await b.host.update('fb', { cpu_weight: 400 });
  await sleep(1000);
  const w2 = await measure(seconds, () => [b.cpuUs(fa), b.cpuUs(fb)]);
  const r2 = w2.percent[0] / w2.percent[1];
  rows.push(['after PATCH fb', '200:400', w2.percent.map(pct).join(' : '), `${r2.toFixed(2)}:1`, '0.5:1 ± 10%', pct(w2.hostBusy), within(r2, 0.5, 0.05) ? 'met' : 'NOT met']);

  progress('fairness: fa alone, cpu_cap 25, unpinned');
  await b.host.delete('fb');
  await b.host.update('fa', { cpu_weight: 100, cpu_cap: 25 });
  pin(fa.pid!, allCpus);
  await sleep(1000);
  const thr0 = b.cg.usage(fa.id);
  const w3 = await measure(seconds, () => [b.cpuUs(fa)]);
  const thr1 = b.cg.usage(fa.id);
  const throttledPeriods = (thr1?.throttledPeriods ?? NaN) - (thr0?.throttledPeriods ?? NaN);
  rows.push(['alone, capped', '100 (cap 25%)', pct(w3.percent[0]), '', '25% ± 5', pct(w3.hostBusy), within(w3.percent[0], 25, 5) ? 'met' : 'NOT met']);

  progress('fairness: three busy VMs, weights 100:100:200, unpinned');
  await b.host.update('fa', { cpu_cap: 0 });
  const [fc, fd] = await b.boot(['fc', 'fd'], 128, (n) => ({ cpu_weight: n === 'fc' ? 100 : 200 }));
  await b.busy([fc, fd]);
  await sleep(2000);
  const w4 = await measure(seconds, () => [b.cpuUs(fa), b.cpuUs(fc), b.cpuUs(fd)]);
  const ideal = fairShares([100, 100, 200], ncpu * 100, 100);
  const unit = w4.percent[0];
  rows.push([`unpinned, ${ncpu} cores`, '100:100:200', w4.percent.map(pct).join(' : '), w4.percent.map((x) => (x / unit).toFixed(2)).join(':'),
    ideal.map((x) => x.toFixed(0)).join(' : ') + '%', pct(w4.hostBusy), '']);
  for (const n of ['fa', 'fc', 'fd']) await b.host.delete(n);

  process.stdout.write(`\n2. Fairness: busy guests (${BUSY_LOOP.trim()}), 1 vCPU and 128 MiB each, CPU from each VM's cgroup over ${seconds} s\n`);
  process.stdout.write(table(rows, [false, false, true, true, false, true, false]) + '\n');
  const sum4 = w4.percent.reduce((s, x) => s + x, 0);
  process.stdout.write(`verdict: weights 200:100 on one core split ${r1.toFixed(2)}:1 (${within(r1, 2, 0.2) ? 'met' : 'NOT met'}), ` +
    `200:400 after a live PATCH ${r2.toFixed(2)}:1 (${within(r2, 0.5, 0.05) ? 'met' : 'NOT met'}); ` +
    `cap 25% gave ${pct(w3.percent[0])} (${within(w3.percent[0], 25, 5) ? 'met' : 'NOT met'}; throttled in ${throttledPeriods} of ~${seconds * 10} periods); ` +
    `100:100:200 unpinned got ${w4.percent.map(pct).join(' : ')} (sum ${pct(sum4)} of ${ncpu * 100}%; weighted fair with 1 core per VM at most: ${ideal.map((x) => x.toFixed(0)).join(' : ')}%)\n`);
  Object.assign(out, {
    pinned200to100: { percent: w1.percent, ratio: r1, hostBusyPercent: w1.hostBusy, loadavg: w1.loadavg, met: within(r1, 2, 0.2) },
    pinned200to400AfterPatch: { percent: w2.percent, ratio: r2, hostBusyPercent: w2.hostBusy, loadavg: w2.loadavg, met: within(r2, 0.5, 0.05) },
    cap25: { percent: w3.percent[0], throttledPeriods, hostBusyPercent: w3.hostBusy, loadavg: w3.loadavg, met: within(w3.percent[0], 25, 5) },
    unpinned100to100to200: { percent: w4.percent, expectedPercent: ideal, hostBusyPercent: w4.hostBusy, loadavg: w4.loadavg },
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// 3. Start-up

/** POST /vms -> its reply, and -> BOOT_MARKER in the VM's log, in seconds. */
async function startUp(b: Bench, name: string): Promise<{ postS: number; markerS: number }> {
  const t0 = performance.now();
  await b.create(name, 128);
  const postS = (performance.now() - t0) / 1000;
  const [at] = await b.host.waitForLog(name, [BOOT_MARKER], BOOT_TIMEOUT_MS);
  return { postS, markerS: (at - t0) / 1000 };
}

async function startup(b: Bench, m: number): Promise<Record<string, unknown>> {
  progress('start-up: 1 VM');
  const one = [await startUp(b, 'boot0')];
  await b.host.delete('boot0');
  progress(`start-up: ${m} VMs created at once`);
  const names = range(m).map((i) => `boot${i}`);
  const many = await Promise.all(names.map((n) => startUp(b, n)));
  const load = loadavg();
  for (const n of names) await b.host.delete(n);

  const row = (label: string, xs: number[]): string[] => {
    const s = summarize(xs)!;
    return [label, s.min.toFixed(1), s.median.toFixed(1), Math.max(...xs).toFixed(1)];
  };
  process.stdout.write(`\n3. Start-up: POST /vms (create + start, 128 MiB, kernel + initramfs, --net none) -> ${BOOT_MARKER} in the VM's log (±0.2 s: the host polls the log)\n`);
  process.stdout.write(table([
    ['', 'min s', 'median s', 'max s'],
    row('1 VM', one.map((r) => r.markerS)),
    row(`${m} VMs at once`, many.map((r) => r.markerS)),
    row(`  of which POST /vms`, many.map((r) => r.postS)),
  ], [false, true, true, true]) + '\n');
  const med = summarize(many.map((r) => r.markerS))!.median;
  process.stdout.write(`verdict: one VM reaches its init in ${one[0].markerS.toFixed(1)} s; ${m} at once on ${os.availableParallelism()} cores take ${med.toFixed(1)} s (median), ` +
    `${(med / one[0].markerS).toFixed(1)}x as long (boots are CPU-bound: ${m} guests share the cores; load ${load})\n`);
  return { one, many, loadavgAfter: load };
}

// ---------------------------------------------------------------------------------------------

async function main(o: Options): Promise<number> {
  const qemuVersion = o.skip.has('density') ? null : ensureQemu();
  const image = await ensureDefaultImage({ quiet: true });
  const cg = Cgroups.probe().cgroups;
  if (!cg) throw new UsageError('no usable cgroup CPU controller (vessel host would not enforce weights or caps): run as root on Linux');
  process.stdout.write(`${process.version}, ${qemuVersion ?? 'QEMU not used'}, ${os.availableParallelism()} CPUs, ` +
    `${(hostMemory().totalBytes / 2 ** 30).toFixed(1)} GiB, cgroups ${cg.mode}, image ${image.version}, load average at start ${loadavg()}\n`);

  const host = await VesselHost.start();
  const onSignal = (): void => { progress('interrupted: deleting the VMs and stopping the host'); void host.stop().finally(() => process.exit(130)); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const results: Record<string, unknown> = { node: process.version, qemuVersion, cpus: os.availableParallelism(), cgroups: cg.mode, image: image.version, startedAt: new Date().toISOString() };
  try {
    const b = new Bench(host, cg, image.kernel, image.initrd);
    if (!o.skip.has('density')) results['density'] = await density(b, o.vms);
    if (!o.skip.has('fairness')) results['fairness'] = await fairness(b, o.seconds);
    if (!o.skip.has('startup')) results['startup'] = await startup(b, o.startupVms);
  } finally {
    await host.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  process.stdout.write('\n' + JSON.stringify(results, null, 2) + '\n');
  return 0;
}

let options: Options | null;
try {
  options = parseOptions(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`bench/host: ${(e as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (options === null) {
  process.stdout.write(USAGE);
} else {
  const o = options;
  runBench(() => main(o));
}
