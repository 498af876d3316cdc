// Memory benchmark (issue 27): how much of what a guest frees goes back to the host, how many
// VMs fit with the memory policy on and off, how fast eight VMs give back what they freed, and
// what huge pages change about it.
//
//   npm run build && node dist/bench/memory.js [--skip returned,density,giveback,hugepages]
//
// Every guest is the default image's kernel and busybox initramfs, "console=ttyS0", no network.
//   1. returned: guests of --vm-mib (512) fill a tmpfs with --fill-mib (300) and delete it; the
//      process's RSS before, at the peak, and every second for --watch-s (60) after; then the
//      balloon is inflated to leave --keep-mib (256). Vessel (`vessel vmm`, PUT /balloon) and QEMU
//      TCG (`-device virtio-balloon-device,free-page-reporting=on|off`, QMP `balloon`), each with
//      free page reporting on and off: four guests at once, the same script in each.
//   2. density: --vms (4) VMs of 256 MiB with the policy on (memory_min 64 MiB) and as many with
//      it off (memory_min = memory_max: the balloon cannot move; free page reporting stays on),
//      all under one `vessel host`, idle for --settle-s (60); RSS per VM and how many would fit
//      in 75% of host RAM (extrapolated from the measured RSS per VM).
//   3. giveback: --giveback-vms (8) VMs of --giveback-vm-mib (512) with the policy (memory_min
//      64 MiB) under one `vessel host` settle for --settle-s (60); then one of them allocates
//      --giveback-percent (70) % of its memory_max (busybox dd with one block of that size: it
//      touches every page of its buffer) and prints when it is done: seconds until it has it (the
//      host's clock, from typing the command, and the guest's /proc/uptime), OOM kills in every
//      guest (its kernel log and /proc/vmstat), and a PNG of every VM's target, actual and RSS
//      every second until --giveback-s (60) after it is done.
//   4. hugepages: in this process, guest RAM (GuestMemory) of 256 MiB, 128 MiB touched, then given
//      back the way the balloon (1 MiB chains) and free page reporting (2 MiB guest-aligned
//      chunks) send it, or in whole host huge pages: RSS returned, host MemAvailable, time of the
//      madvise calls and of touching the memory again.
// Progress goes to stderr; tables and verdicts, then one JSON document, to stdout.

import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { BOOT_MARKER, ensureDefaultImage } from '../images/build-image.js';
import { hostMemory, processRss } from '../src/host/proc.js';
import { GuestMemory, RAM_OFFSET } from '../src/hw/memory.js';
import { api, startVmm } from '../test/vmm-client.js';
import { PROMPT, ShellSession, VesselProcess } from '../test/vessel-cli.js';
import { GuestError } from './lib/guest.js';
import { Qmp } from './lib/qmp.js';
import { readOptions, runBench } from './lib/main.js';
import { intArg, UsageError } from './lib/options.js';
import { hue, plotPng, type Chart } from './lib/plot.js';
import { ensureQemu, QEMU } from './lib/qemu.js';
import { table } from './lib/stats.js';
import { VesselHost, type VmInfo } from './lib/vessel-host.js';

const PARTS = ['returned', 'density', 'giveback', 'hugepages'] as const;
type Part = typeof PARTS[number];
const APPEND = 'console=ttyS0';
const BOOT_MS = 2_400_000;
const MiB = 2 ** 20;
const HUGE = 2 * MiB;
/** Returned: the share of what the fill added to the RSS that counts as "back with the host". */
const RETURNED_SHARE = 0.9;
/** Guest RAM a fill must leave: the default image's kernel, its reserved memory and its initramfs take ~170 MiB of a 512 MiB guest. */
const FILL_SPARE_MIB = 192;
/** memory_min of the VMs with the policy in parts density and giveback. */
const POLICY_MIN_MIB = 64;
const DENSITY_VM_MIB = 256;

const USAGE = `Usage: node dist/bench/memory.js [options]

Memory given back to the host by the balloon and free page reporting (Vessel and QEMU TCG in
the same run), VM density with the memory policy on and off, eight VMs giving back, huge pages.

Options:
  --vm-mib <n>        guest RAM in part returned (default 512)
  --fill-mib <n>      what the guest fills and frees in part returned (default 300)
  --keep-mib <n>      guest RAM the balloon leaves after the inflate (default 256)
  --watch-s <s>       seconds watched after the free (default 60)
  --vms <n>           VMs with the policy on, and as many with it off (default 4)
  --settle-s <s>      idle seconds before the density is measured (default 60)
  --giveback-vms <n>  VMs in part giveback, all with the policy (default 8)
  --giveback-vm-mib <n>  their memory_max (default 512)
  --giveback-percent <n> what one of them allocates, % of its memory_max (default 70)
  --giveback-s <s>    seconds watched after the allocation is done (default 60)
  --out <dir>         where the plot and the JSON go (default bench/results)
  --skip <list>       parts to leave out: ${PARTS.join(',')}
  -h, --help          this text
`;

interface Options {
  vmMib: number; fillMib: number; keepMib: number; watchS: number;
  vms: number; settleS: number; givebackVms: number; givebackVmMib: number; givebackPercent: number; givebackS: number;
  out: string; skip: Set<Part>;
}

function parseOptions(argv: string[]): Options | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: {
        'vm-mib': { type: 'string' }, 'fill-mib': { type: 'string' }, 'keep-mib': { type: 'string' }, 'watch-s': { type: 'string' },
        vms: { type: 'string' }, 'settle-s': { type: 'string' }, 'giveback-vms': { type: 'string' }, 'giveback-vm-mib': { type: 'string' }, 'giveback-percent': { type: 'string' }, 'giveback-s': { type: 'string' },
        out: { type: 'string' }, skip: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) return null;
  const skip = new Set((values.skip ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  for (const s of skip) if (!(PARTS as readonly string[]).includes(s)) throw new UsageError(`--skip: unknown part "${s}" (${PARTS.join(', ')})`);
  const o: Options = {
    vmMib: intArg('vm-mib', values['vm-mib'], 512, 128, 2048),
    fillMib: intArg('fill-mib', values['fill-mib'], 300, 16, 2048),
    keepMib: intArg('keep-mib', values['keep-mib'], 256, 32, 2048),
    watchS: intArg('watch-s', values['watch-s'], 60, 5, 3600),
    vms: intArg('vms', values.vms, 4, 1, 32),
    settleS: intArg('settle-s', values['settle-s'], 60, 0, 3600),
    givebackVms: intArg('giveback-vms', values['giveback-vms'], 8, 1, 32),
    givebackVmMib: intArg('giveback-vm-mib', values['giveback-vm-mib'], 512, 256, 2048),
    givebackPercent: intArg('giveback-percent', values['giveback-percent'], 70, 1, 90),
    givebackS: intArg('giveback-s', values['giveback-s'], 60, 5, 3600),
    out: values.out ?? path.join('bench', 'results'),
    skip: skip as Set<Part>,
  };
  if (o.fillMib > o.vmMib - FILL_SPARE_MIB) throw new UsageError(`--fill-mib ${o.fillMib} must leave ${FILL_SPARE_MIB} MiB of --vm-mib ${o.vmMib} (the guest's kernel, reserved memory and initramfs)`);
  if (o.keepMib >= o.vmMib) throw new UsageError(`--keep-mib ${o.keepMib} must be below --vm-mib ${o.vmMib}`);
  return o;
}

const progress = (msg: string): void => { process.stderr.write(`[bench/memory] ${msg}\n`); };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const loadavg = (): string => os.loadavg().map((l) => l.toFixed(2)).join(' ');
const mib = (bytes: number | null): number => (bytes === null ? NaN : bytes / MiB);
const f0 = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(0));
const f1 = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(1));
const range = (n: number): number[] => [...Array(n).keys()];

/** First second (from `xs[i]` at `t[i]`) at which the RSS is within (1 - share) of the way from `peak` down to `base`. */
function secondsToReturn(t: number[], rss: number[], base: number, peak: number, share = RETURNED_SHARE): number | null {
  const goal = peak - share * (peak - base);
  const i = rss.findIndex((x) => x <= goal);
  return i < 0 ? null : t[i];
}

// ---------------------------------------------------------------------------------------------
// 1. Memory returned: Vessel and QEMU, free page reporting on and off

/** A guest of part 1: its process, and how its balloon is moved and read (guest RAM left, MiB). */
interface ReturnedGuest {
  label: string;
  engine: 'vessel' | 'qemu';
  reporting: boolean;
  proc: VesselProcess;
  setKeep(keepMib: number): Promise<void>;
  keptMib(): Promise<number>;
  close(): void;
}

async function vesselGuest(o: Options, kernel: string, initrd: string, reporting: boolean): Promise<ReturnedGuest> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vbm-'));
  const { vmm, sock } = await startVmm(dir);
  const call = async (method: string, url: string, body?: unknown): Promise<unknown> => {
    const r = await api(sock, method, url, body);
    if (r.status !== 200 && r.status !== 204) throw new GuestError(`vessel vmm: ${method} ${url} -> ${r.status} ${r.text}`);
    return r.body;
  };
  await call('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: o.vmMib });
  await call('PUT', '/boot-source', { kernel_image_path: kernel, initrd_path: initrd, boot_args: APPEND });
  await call('PUT', '/balloon', { amount_mib: 0, deflate_on_oom: false, stats_polling_interval_s: 0, free_page_reporting: reporting });
  await call('PUT', '/actions', { action_type: 'InstanceStart' });
  return {
    label: `Vessel, reporting ${reporting ? 'on' : 'off'}`, engine: 'vessel', reporting, proc: vmm,
    setKeep: async (keep) => { await call('PATCH', '/balloon', { amount_mib: o.vmMib - keep }); },
    keptMib: async () => o.vmMib - ((await call('GET', '/balloon')) as { actual_mib: number }).actual_mib,
    close: () => { vmm.kill(); fs.rmSync(dir, { recursive: true, force: true }); },
  };
}

async function qemuGuest(o: Options, kernel: string, initrd: string, reporting: boolean): Promise<ReturnedGuest> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vbq-'));
  const qmpPath = path.join(dir, 'qmp.sock');
  const proc = new VesselProcess(QEMU, ['-M', 'virt', '-m', String(o.vmMib), '-smp', '1', '-nographic', '-nic', 'none',
    '-kernel', kernel, '-initrd', initrd, '-append', APPEND,
    '-device', `virtio-balloon-device,free-page-reporting=${reporting ? 'on' : 'off'}`, '-qmp', `unix:${qmpPath},server=on,wait=off`]);
  const qmp = await Qmp.connect(qmpPath);
  return {
    label: `QEMU TCG, reporting ${reporting ? 'on' : 'off'}`, engine: 'qemu', reporting, proc,
    setKeep: async (keep) => { await qmp.command('balloon', { value: keep * MiB }); },
    keptMib: async () => (await qmp.command<{ actual: number }>('query-balloon')).actual / MiB,
    close: () => { qmp.close(); proc.kill(); fs.rmSync(dir, { recursive: true, force: true }); },
  };
}

interface ReturnedResult {
  label: string; engine: string; reporting: boolean;
  beforeMiB: number; peakMiB: number; at30MiB: number | null; at60MiB: number | null; endMiB: number;
  /** Seconds after the free until RETURNED_SHARE of what the fill added is back; null: not within the watch. */
  returnS: number | null;
  inflateS: number | null; inflatedMiB: number; keptMiB: number;
  series: { t: number[]; rssMiB: number[] };
}

/** The same script in each guest: settle, fill, free, watch; then inflate. */
async function returnedScript(o: Options, g: ReturnedGuest): Promise<ReturnedResult> {
  const shell = new ShellSession(g.proc, BOOT_MARKER);
  await shell.waitForShell(BOOT_MS);
  await shell.run('dmesg -n 1');
  progress(`${g.label}: at the shell prompt after ${g.proc.elapsed().toFixed(0)} s`);
  await sleep(10_000);
  const pid = g.proc.child.pid!;
  const rss = (): number => mib(processRss(pid));
  const beforeMiB = rss();
  await shell.run(`mkdir -p /fill && mount -t tmpfs -o size=${o.fillMib + 16}m fill /fill`);
  await shell.run(`dd if=/dev/zero of=/fill/x bs=1M count=${o.fillMib} 2>/dev/null; sync`, 600_000);
  const peakMiB = rss();
  await shell.run('rm /fill/x');
  const t0 = performance.now();
  const series = { t: [] as number[], rssMiB: [] as number[] };
  for (let s = 1; s <= o.watchS; s++) {
    await sleep(t0 + s * 1000 - performance.now());
    series.t.push(s);
    series.rssMiB.push(rss());
  }
  const at = (s: number): number | null => (s <= o.watchS ? series.rssMiB[s - 1] : null);
  progress(`${g.label}: freed ${o.fillMib} MiB; RSS ${f0(beforeMiB)} -> ${f0(peakMiB)} -> ${f0(series.rssMiB.at(-1))} MiB; inflating to leave ${o.keepMib} MiB`);
  const i0 = performance.now();
  await g.setKeep(o.keepMib);
  let kept = await g.keptMib();
  while (kept > o.keepMib && performance.now() - i0 < 180_000) { await sleep(500); kept = await g.keptMib(); }
  const inflateS = kept <= o.keepMib ? (performance.now() - i0) / 1000 : null;
  await sleep(3000);
  const result: ReturnedResult = {
    label: g.label, engine: g.engine, reporting: g.reporting, beforeMiB, peakMiB, at30MiB: at(30), at60MiB: at(60), endMiB: series.rssMiB.at(-1)!,
    returnS: secondsToReturn(series.t, series.rssMiB, beforeMiB, peakMiB), inflateS, inflatedMiB: rss(), keptMiB: kept, series,
  };
  shell.sendLast('poweroff -f');
  return result;
}

async function returned(o: Options, kernel: string, initrd: string): Promise<Record<string, unknown>> {
  progress(`returned: four ${o.vmMib} MiB guests at once (Vessel and QEMU, free page reporting on and off)`);
  const guests: ReturnedGuest[] = [];
  let results: ReturnedResult[];
  try {
    for (const reporting of [true, false]) {
      guests.push(await vesselGuest(o, kernel, initrd, reporting));
      guests.push(await qemuGuest(o, kernel, initrd, reporting));
    }
    results = await Promise.all(guests.map((g) => returnedScript(o, g).catch((e: unknown) => {
      throw new GuestError(`${g.label}: ${(e as Error).message}`);
    })));
  } finally {
    await sleep(1000);
    for (const g of guests) g.close();
  }
  const load = loadavg();
  const back = (r: ReturnedResult, x: number | null): string => (x === null ? '-' : `${Math.max(0, (100 * (r.peakMiB - x)) / (r.peakMiB - r.beforeMiB)).toFixed(0)}%`);
  process.stdout.write(`\n1. Memory returned: a ${o.vmMib} MiB guest fills a tmpfs with ${o.fillMib} MiB and deletes it; the process's RSS (MiB); ` +
    `then the balloon leaves it ${o.keepMib} MiB (load ${load})\n`);
  process.stdout.write(table([
    ['', 'before', 'peak', '+30 s', '+60 s', `back at +${o.watchS} s`, `${RETURNED_SHARE * 100}% back after`, `inflated to ${o.keepMib}`, 'inflate took'],
    ...results.map((r) => [r.label, f0(r.beforeMiB), f0(r.peakMiB), f0(r.at30MiB), f0(r.at60MiB), back(r, r.endMiB),
      r.returnS === null ? `not in ${o.watchS} s` : `${r.returnS} s`, f0(r.inflatedMiB), r.inflateS === null ? `stopped at ${f0(r.keptMiB)} MiB` : `${f1(r.inflateS)} s`]),
  ], [false, true, true, true, true, true, true, true, true]) + '\n');
  const by = (engine: string, reporting: boolean): ReturnedResult => results.find((r) => r.engine === engine && r.reporting === reporting)!;
  const v = by('vessel', true), q = by('qemu', true), vo = by('vessel', false), qo = by('qemu', false);
  const share = (r: ReturnedResult): number => (r.peakMiB - r.endMiB) / (r.peakMiB - r.beforeMiB);
  process.stdout.write(`verdict: with free page reporting Vessel gave back ${(100 * share(v)).toFixed(0)}% of what the fill added in ${o.watchS} s ` +
    `(${v.returnS === null ? 'not 90%' : `90% after ${v.returnS} s`}), QEMU ${(100 * share(q)).toFixed(0)}% (${q.returnS === null ? 'not 90%' : `90% after ${q.returnS} s`}); ` +
    `Vessel/QEMU returned ${(share(v) / share(q)).toFixed(2)}x; RSS at the end ${(v.endMiB / q.endMiB).toFixed(2)}x. ` +
    `Without reporting the freed memory stays (Vessel ${Math.max(0, 100 * share(vo)).toFixed(0)}%, QEMU ${Math.max(0, 100 * share(qo)).toFixed(0)}% back) until the balloon inflates: ` +
    `RSS then ${f0(vo.inflatedMiB)} MiB (Vessel, ${f1(vo.inflateS)} s) and ${f0(qo.inflatedMiB)} MiB (QEMU, ${f1(qo.inflateS)} s)\n`);
  return { vmMiB: o.vmMib, fillMiB: o.fillMib, keepMiB: o.keepMib, loadavg: load, guests: results };
}

// ---------------------------------------------------------------------------------------------
// 2 and 3. Density and give-back under `vessel host`

interface VmMemory { target_mib: number | null; actual_mib: number | null; guest_available_mib: number | null; guest_resident_mib?: number | null }

/** A VM to boot under the host: its memory_max and memory_min (MiB), and whether the policy may move it (min < max). */
interface HostVmSpec { name: string; memoryMib: number; minMib: number }

class HostVms {
  constructor(readonly host: VesselHost, readonly vms: VmInfo[], readonly policyOn: Set<string>) {}

  static async boot(host: VesselHost, specs: HostVmSpec[], kernel: string, initrd: string, part: string): Promise<HostVms> {
    progress(`${part}: booting ${specs.map((v) => `${v.name} (${v.memoryMib} MiB, min ${v.minMib})`).join(', ')}`);
    // One at a time, and again after a failed start: on a loaded host a VM process did not answer within the host's 60 s.
    for (const v of specs) {
      for (let attempt = 1; ; attempt++) {
        try {
          await host.create({ name: v.name, memory_mib: v.memoryMib, memory_min_mib: v.minMib, kernel, initrd, append: APPEND, nets: ['none'] });
          break;
        } catch (e) {
          if (attempt === 3) throw e;
          progress(`${part}: ${v.name} did not start (${(e as Error).message}); deleting it and trying again`);
          await host.delete(v.name).catch(() => undefined);
        }
      }
    }
    await Promise.all(specs.map((v) => host.waitForLog(v.name, [BOOT_MARKER, PROMPT], BOOT_MS)));
    const vms = await Promise.all(specs.map((v) => host.request<VmInfo>('GET', `/vms/${v.name}`)));
    progress(`${part}: all at the shell prompt (load ${loadavg()})`);
    return new HostVms(host, vms, new Set(specs.filter((v) => v.minMib < v.memoryMib).map((v) => v.name)));
  }

  rss(): number[] { return this.vms.map((vm) => mib(processRss(vm.pid!))); }
  memory(): Promise<VmMemory[]> { return Promise.all(this.vms.map((vm) => this.host.request<VmMemory>('GET', `/vms/${vm.name}/memory`))); }
  group(on: boolean): number[] { return this.vms.flatMap((vm, i) => (this.policyOn.has(vm.name) === on ? [i] : [])); }

  /** Types a command and waits for `marker` (made by the shell: it does not match the echoed line) in every VM's log. */
  async runAll(command: (vm: VmInfo) => string, marker: string, timeoutMs: number): Promise<number[]> {
    const waits = this.vms.map((vm) => this.host.waitForLog(vm.name, [marker], timeoutMs));
    const t0 = performance.now();
    await Promise.all(this.vms.map((vm) => this.host.type(vm, command(vm) + '\n')));
    return (await Promise.all(waits)).map(([at]) => (at - t0) / 1000);
  }

  /** The last `lines` lines of a VM's console log. */
  logTail(name: string, lines = 40): Promise<string> {
    return new Promise((resolve, reject) => {
      http.get({ socketPath: this.host.socket, path: `/vms/${name}/logs?tail=${lines}` }, (res) => {
        let text = '';
        res.setEncoding('latin1');
        res.on('data', (c: string) => { text += c; });
        res.on('end', () => resolve(text));
      }).on('error', reject);
    });
  }

  async delete(): Promise<void> {
    await Promise.all(this.vms.map((vm) => this.host.delete(vm.name)));
  }
}

const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

async function density(host: VesselHost, o: Options, kernel: string, initrd: string): Promise<Record<string, unknown>> {
  const specs = [...range(o.vms).map((i) => ({ name: `on${i}`, memoryMib: DENSITY_VM_MIB, minMib: POLICY_MIN_MIB })),
    ...range(o.vms).map((i) => ({ name: `off${i}`, memoryMib: DENSITY_VM_MIB, minMib: DENSITY_VM_MIB }))];
  const h = await HostVms.boot(host, specs, kernel, initrd, 'density');
  try {
    return await densityOf(h, o);
  } finally {
    await h.delete();
  }
}

async function densityOf(h: HostVms, o: Options): Promise<Record<string, unknown>> {
  progress(`density: idle for ${o.settleS} s`);
  await sleep(o.settleS * 1000);
  const rss = h.rss();
  const mem = await h.memory();
  const on = h.group(true), off = h.group(false);
  const memTotal = hostMemory().totalBytes;
  const fit = (perVm: number): number => Math.floor((memTotal * 0.75) / MiB / perVm);
  const onRss = mean(on.map((i) => rss[i])), offRss = mean(off.map((i) => rss[i]));
  // If every guest used all its target: the process's RSS less the guest RAM it holds now, plus the target.
  const full = (ids: number[]): number => mean(ids.map((i) => rss[i] - (mem[i].guest_resident_mib ?? NaN) + (mem[i].target_mib ?? NaN)));
  const onFull = full(on), offFull = full(off);
  const load = loadavg();
  process.stdout.write(`\n2. Density: ${o.vms} + ${o.vms} idle VMs of 256 MiB under one vessel host, ${o.settleS} s after the prompt (load ${load})\n`);
  process.stdout.write(table([
    ['policy', 'RSS per VM (MiB)', 'mean', 'guest RAM held (MiB)', 'memory target (MiB)', `fit in 75% of ${(memTotal / 2 ** 30).toFixed(1)} GiB`, 'RSS if all used their target', 'fit then'],
    ['on (min 64)', on.map((i) => f0(rss[i])).join(' '), f0(onRss), on.map((i) => f0(mem[i].guest_resident_mib)).join(' '), on.map((i) => f0(mem[i].target_mib)).join(' '), String(fit(onRss)), f0(onFull), String(fit(onFull))],
    ['off (min 256)', off.map((i) => f0(rss[i])).join(' '), f0(offRss), off.map((i) => f0(mem[i].guest_resident_mib)).join(' '), off.map((i) => f0(mem[i].target_mib)).join(' '), String(fit(offRss)), f0(offFull), String(fit(offFull))],
  ], [false, false, true, false, false, true, true, true]) + '\n');
  process.stdout.write(`verdict: idle, ${fit(onRss)} such VMs fit in 75% of this host's RAM with the policy and ${fit(offRss)} without (${(offRss / onRss).toFixed(2)}x: free page reporting, on in both, ` +
    `already returns what idle guests free); if every guest used what it is allowed, ${fit(onFull)} with the policy's targets and ${fit(offFull)} without (${(offFull / onFull).toFixed(2)}x). ` +
    `Extrapolated from the mean RSS of ${o.vms} VMs each\n`);
  return {
    settleS: o.settleS, loadavg: load, memTotalBytes: memTotal,
    on: { rssMiB: on.map((i) => rss[i]), residentMiB: on.map((i) => mem[i].guest_resident_mib), targetMiB: on.map((i) => mem[i].target_mib), fitIn75PercentOfRam: fit(onRss), rssAtTargetMiB: onFull, fitAtTarget: fit(onFull) },
    off: { rssMiB: off.map((i) => rss[i]), residentMiB: off.map((i) => mem[i].guest_resident_mib), targetMiB: off.map((i) => mem[i].target_mib), fitIn75PercentOfRam: fit(offRss), rssAtTargetMiB: offFull, fitAtTarget: fit(offFull) },
  };
}

/** Every VM's RSS, target and actual, once a second, from the time it is made until stop(). */
class MemorySampler {
  readonly t: number[] = [];
  readonly rss: number[][];
  readonly target: (number | null)[][];
  readonly actual: (number | null)[][];
  readonly t0 = performance.now();
  private running = true;
  private readonly done: Promise<void>;

  constructor(private readonly h: HostVms) {
    this.rss = h.vms.map(() => []);
    this.target = h.vms.map(() => []);
    this.actual = h.vms.map(() => []);
    this.done = this.loop();
  }

  /** Seconds since the sampler started. */
  now(): number { return (performance.now() - this.t0) / 1000; }

  private async loop(): Promise<void> {
    for (let s = 0; this.running; s++) {
      const r = this.h.rss();
      const m = await this.h.memory().catch(() => null);
      this.t.push(this.now());
      this.h.vms.forEach((_, i) => { this.rss[i].push(r[i]); this.target[i].push(m?.[i].target_mib ?? null); this.actual[i].push(m?.[i].actual_mib ?? null); });
      await sleep(this.t0 + (s + 1) * 1000 - performance.now());
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  /** The latest sample of VM `i` at or before second `at`. */
  at(series: (number | null)[][], i: number, at: number): number | null {
    let k = -1;
    while (k + 1 < this.t.length && this.t[k + 1] <= at) k++;
    return k < 0 ? null : series[i][k];
  }
}

async function giveback(host: VesselHost, o: Options, kernel: string, initrd: string): Promise<Record<string, unknown>> {
  const specs = range(o.givebackVms).map((i) => ({ name: `gb${i}`, memoryMib: o.givebackVmMib, minMib: POLICY_MIN_MIB }));
  const h = await HostVms.boot(host, specs, kernel, initrd, 'giveback');
  const n = h.vms.length;
  const busy = h.vms[0];
  const allocMib = Math.floor((o.givebackVmMib * o.givebackPercent) / 100);
  const sampler = new MemorySampler(h);
  let result: Record<string, unknown>;
  try {
    progress(`giveback: ${n} idle VMs settle for ${o.settleS} s`);
    await sleep(o.settleS * 1000);
    const settled = await h.memory();
    const rssSettled = h.rss();
    progress(`giveback: settled at targets ${settled.map((m) => f0(m.target_mib)).join(' ')} MiB; ${busy.name} allocates ${allocMib} MiB (${o.givebackPercent}% of ${o.givebackVmMib})`);
    // One block of allocMib: dd mallocs it and reads /dev/zero into it (fullblock: until it is full), touching every page.
    const done = h.host.waitForLog(busy.name, ['ALLOC42ED'], 900_000);
    const allocStart = sampler.now();
    const typed = performance.now();
    await h.host.type(busy, `a=$(cut -d' ' -f1 /proc/uptime); dd if=/dev/zero of=/dev/null bs=${allocMib}M count=1 iflag=fullblock; b=$(cut -d' ' -f1 /proc/uptime); echo ALLOC$((6*7))ED $a $b\n`);
    const [doneAt] = await done;
    const hostS = (doneAt - typed) / 1000;
    const allocEnd = sampler.now();
    const tail = await h.logTail(busy.name);
    const guestTimes = /ALLOC42ED (\d+\.\d+) (\d+\.\d+)/.exec(tail);
    const guestS = guestTimes ? Number(guestTimes[2]) - Number(guestTimes[1]) : null;
    const records = /(\d+)\+(\d+) records in/.exec(tail);
    const whole = records !== null && records[1] === '1';
    progress(`giveback: ${busy.name} had its ${allocMib} MiB after ${f1(hostS)} s (guest clock ${f1(guestS)} s; dd: ${records?.[0] ?? 'no record count'}); watching ${o.givebackS} s`);
    await sleep(o.givebackS * 1000);
    const ooms = await oomReports(h);
    await sampler.stop();

    const i0 = 0;
    const peakTarget = Math.max(...sampler.target[i0].filter((x): x is number => x !== null));
    const load = loadavg();
    const file = path.resolve(o.out, 'memory-giveback.png');
    const x = sampler.t.map((s) => Math.round(s * 10) / 10);
    const when = `settled at ${o.settleS} s; ${busy.name} allocates ${allocMib} MiB at ${allocStart.toFixed(0)} s and has it at ${allocEnd.toFixed(0)} s`;
    const charts: Chart[] = [
      { title: `Memory target (dashed) and actual (solid) of each VM (${when})`, yLabel: 'MiB', x,
        series: h.vms.flatMap((vm, i) => [
          { label: `${vm.name} target`, values: sampler.target[i], color: hue(i, n), dash: true },
          { label: `${vm.name} actual`, values: sampler.actual[i], color: hue(i, n) },
        ]) },
      { title: 'Process RSS of each VM', yLabel: 'MiB', x,
        series: h.vms.map((vm, i) => ({ label: vm.name, values: sampler.rss[i], color: hue(i, n) })) },
    ];
    await plotPng(file, charts);
    const others = range(n).slice(1);
    const sumOf = (xs: (number | null)[]): number => xs.reduce<number>((a, v) => a + (v ?? NaN), 0);
    const othersTargetAt = (at: number): number => sumOf(others.map((i) => sampler.at(sampler.target, i, at)));
    process.stdout.write(`\n3. Give-back: ${n} VMs of ${o.givebackVmMib} MiB with the policy (memory_min ${POLICY_MIN_MIB}) under one vessel host settle ${o.settleS} s; then ${busy.name} allocates ${allocMib} MiB (${o.givebackPercent}% of its memory_max) (load ${load})\n`);
    process.stdout.write(table([
      ['VM', 'target settled', 'actual settled', 'RSS settled', 'target peak', `target +${o.givebackS} s`, `RSS +${o.givebackS} s`, 'OOM kills (vmstat)', 'OOM lines in dmesg'],
      ...h.vms.map((vm, i) => [vm.name, f0(settled[i].target_mib), f0(settled[i].actual_mib), f0(rssSettled[i]),
        f0(Math.max(...sampler.target[i].filter((v): v is number => v !== null))), f0(sampler.target[i].at(-1)), f0(sampler.rss[i].at(-1)), String(ooms[i].kills), String(ooms[i].lines)]),
    ], [false, true, true, true, true, true, true, true, true]) + '\n');
    const anyOom = ooms.some((r) => r.kills !== 0 || r.lines !== 0);
    process.stdout.write(`verdict: ${busy.name} had its ${allocMib} MiB ${f1(hostS)} s after the command (its own clock: ${f1(guestS)} s; dd read ${whole ? 'the whole block' : `only part of it (${records?.[0] ?? 'no record count'})`}); ` +
      `its target went ${f0(settled[i0].target_mib)} -> ${f0(peakTarget)} MiB; the other VMs' targets summed ${f0(othersTargetAt(allocStart))} MiB before and ${f0(othersTargetAt(allocEnd))} MiB when it was done; ` +
      `OOM kills in the guests: ${anyOom ? ooms.map((r) => `${r.kills}/${r.lines}`).join(' ') : 'none'}; plot: ${path.relative(process.cwd(), file)}\n`);
    result = {
      vms: n, vmMiB: o.givebackVmMib, minMiB: POLICY_MIN_MIB, allocMiB: allocMib, settleS: o.settleS, loadavg: load,
      hasItAfterS: hostS, guestClockS: guestS, wholeBlock: whole, busyTargetSettledMiB: settled[i0].target_mib, busyTargetPeakMiB: peakTarget,
      oom: ooms, plot: path.relative(process.cwd(), file),
      series: { t: x, allocStartS: allocStart, allocEndS: allocEnd, vms: h.vms.map((vm, i) => ({ name: vm.name, rssMiB: sampler.rss[i], targetMiB: sampler.target[i], actualMiB: sampler.actual[i] })) },
    };
  } finally {
    await sampler.stop();
    await h.delete();
  }
  return result;
}

/** Per guest: its oom_kill count (/proc/vmstat) and its kernel log's lines about running out of memory. */
async function oomReports(h: HostVms): Promise<{ kills: number; lines: number }[]> {
  await h.runAll(() => 'echo OOMKILLS=$(sed -n "s/^oom_kill //p" /proc/vmstat)KILLS OOMLINES=$(dmesg | grep -ciE "out of memory|oom-kill|oom_reaper")LINES; echo OOM$((6*7))DONE', 'OOM42DONE', 120_000);
  return Promise.all(h.vms.map(async (vm) => {
    const tail = await h.logTail(vm.name);
    const kills = [...tail.matchAll(/OOMKILLS=(\d+)KILLS/g)].at(-1);
    const lines = [...tail.matchAll(/OOMLINES=(\d+)LINES/g)].at(-1);
    return { kills: kills ? Number(kills[1]) : NaN, lines: lines ? Number(lines[1]) : NaN };
  }));
}

// ---------------------------------------------------------------------------------------------
// 4. Huge pages: how given-back ranges are released

/** The host address of guest RAM's first byte modulo 2 MiB (from /proc/self/maps: the rw mapping of the wasm memory's size). */
function ramMisalignment(mem: GuestMemory): number {
  const size = mem.buffer.byteLength;
  for (const line of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) rw-p 00000000 00:00 0/.exec(line);
    if (m && parseInt(m[2], 16) - parseInt(m[1], 16) === size) return (parseInt(m[1], 16) + RAM_OFFSET) % HUGE;
  }
  throw new GuestError('the guest memory\'s mapping is not in /proc/self/maps');
}

function anonHugeKb(): number {
  return Number(/AnonHugePages:\s+(\d+)/.exec(fs.readFileSync('/proc/self/smaps_rollup', 'utf8'))?.[1] ?? NaN);
}

/** Huge page mappings the host kernel has split so far (all processes; nothing else here splits many). */
function thpSplits(): number {
  return Number(/^thp_split_pmd (\d+)/m.exec(fs.readFileSync('/proc/vmstat', 'utf8'))?.[1] ?? NaN);
}

interface HugeCase { name: string; runs: (touched: number, shift: number) => [number, number][] }

function hugepages(): Record<string, unknown> {
  const RAM = 256 * MiB, TOUCHED = 128 * MiB;
  const cases: HugeCase[] = [
    // Linux's balloon: up to 256 PFNs (1 MiB) a chain; from a free block they are contiguous.
    { name: 'balloon: 1 MiB chains (as sent)', runs: (n) => range(n / MiB).map((i) => [i * MiB, MiB]) },
    // Free page reporting: 2 MiB chunks aligned in guest-physical memory (pageblock order).
    { name: 'reporting: 2 MiB guest-aligned chunks', runs: (n) => range(n / HUGE).map((i) => [i * HUGE, HUGE]) },
    // The same where V8 placed RAM 64 KiB off the host's 2 MiB (it does in some processes): each chunk straddles two huge pages.
    { name: 'reporting: 2 MiB chunks, RAM 64 KiB off', runs: (n, shift) => range(n / HUGE - 1).map((i) => [((HUGE - shift) % HUGE) + 64 * 1024 + i * HUGE, HUGE]) },
    // Every other reported chunk only: the neighbours' host huge pages stay partly mapped.
    { name: 'reporting: every other 2 MiB chunk', runs: (n) => range(n / HUGE / 2).map((i) => [2 * i * HUGE, HUGE]) },
    // What the balloon device does with inflated pages now: it waits for whole host huge pages (aligned to the host's 2 MiB).
    { name: 'balloon: whole host huge pages', runs: (n, shift) => range(n / HUGE - 1).map((i) => [((HUGE - shift) % HUGE) + i * HUGE, HUGE]) },
  ];
  const rows: string[][] = [['release', 'madvise calls', 'given (MiB)', 'RSS fell (MiB)', 'AnonHugePages fell (MiB)', 'huge pages split', 'madvise ms', 'touch again ms', 'huge after touch (MiB)']];
  const out: Record<string, unknown>[] = [];
  for (const c of cases) {
    const mem = new GuestMemory(0x8000_0000, RAM);
    const shift = ramMisalignment(mem);
    const rssNow = (): number => mib(processRss(process.pid));
    mem.bytes.fill(1, 0, TOUCHED);
    const r0 = rssNow(), h0 = anonHugeKb(), s0 = thpSplits();
    const runs = c.runs(TOUCHED, shift);
    const t0 = performance.now();
    for (const [off, len] of runs) if (!mem.discard(0x8000_0000 + off, len)) throw new GuestError('this host cannot release guest memory (no @riaskov/mmap-io)');
    const madviseMs = performance.now() - t0;
    const r1 = rssNow(), h1 = anonHugeKb(), splits = thpSplits() - s0;
    const t1 = performance.now();
    for (let at = 0; at < TOUCHED; at += 4096) mem.bytes[at] = 2;
    const touchMs = performance.now() - t1;
    const h2 = anonHugeKb();
    const given = runs.reduce((s, [, l]) => s + l, 0) / MiB;
    rows.push([`${c.name}${shift ? ` (RAM ${shift / 1024} KiB into a host huge page)` : ''}`, String(runs.length), f0(given), f1(r0 - r1), f1((h0 - h1) / 1024), String(splits), f1(madviseMs), f1(touchMs), f0((h2 - h1) / 1024)]);
    out.push({ name: c.name, calls: runs.length, givenMiB: given, rssFellMiB: r0 - r1, anonHugeFellMiB: (h0 - h1) / 1024, hugePagesSplit: splits, ramHostMisalignmentBytes: shift, madviseMs, touchAgainMs: touchMs, hugeAfterTouchMiB: (h2 - h1) / 1024 });
  }
  process.stdout.write(`\n4. Huge pages: 128 MiB of guest RAM touched (in transparent huge pages), then given back (load ${loadavg()})\n`);
  process.stdout.write(table(rows, [false, true, true, true, true, true, true, true, true]) + '\n');
  return { cases: out };
}

// ---------------------------------------------------------------------------------------------

async function main(o: Options): Promise<number> {
  const needGuests = !(o.skip.has('returned') && o.skip.has('density') && o.skip.has('giveback'));
  const qemuVersion = o.skip.has('returned') ? null : ensureQemu();
  const image = needGuests ? await ensureDefaultImage({ quiet: true }) : null;
  const gitHead = fs.existsSync('.git') ? fs.readFileSync('.git/HEAD', 'utf8').trim() : '';
  process.stdout.write(`${process.version}, ${qemuVersion ?? 'QEMU not used'}, ${os.availableParallelism()} CPUs, ${(hostMemory().totalBytes / 2 ** 30).toFixed(1)} GiB, ` +
    `image ${image?.version ?? '-'}, load average at start ${loadavg()}\n`);
  const results: Record<string, unknown> = { node: process.version, qemuVersion, cpus: os.availableParallelism(), image: image?.version ?? null, startedAt: new Date().toISOString(), head: gitHead, options: { ...o, skip: [...o.skip] } };
  if (!o.skip.has('hugepages')) results['hugepages'] = hugepages();
  if (image && !o.skip.has('returned')) results['returned'] = await returned(o, image.kernel, image.initrd);
  if (image && !(o.skip.has('density') && o.skip.has('giveback'))) {
    const host = await VesselHost.start();
    const onSignal = (): void => { progress('interrupted: deleting the VMs and stopping the host'); void host.stop().finally(() => process.exit(130)); };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      if (!o.skip.has('density')) results['density'] = await density(host, o, image.kernel, image.initrd);
      if (!o.skip.has('giveback')) results['giveback'] = await giveback(host, o, image.kernel, image.initrd);
    } finally {
      await host.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
  fs.mkdirSync(o.out, { recursive: true });
  fs.writeFileSync(path.join(o.out, 'memory.json'), JSON.stringify(results, null, 2) + '\n');
  process.stdout.write(`\n(all numbers: ${path.join(o.out, 'memory.json')})\n`);
  return 0;
}

const options = readOptions(parseOptions, USAGE);
if (typeof options === 'number') process.exitCode = options;
else runBench(() => main(options));
