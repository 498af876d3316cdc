// The balloon against a real guest under `vessel vmm`: Debian's virtio_balloon binds to the
// device; PATCH /balloon inflates it (actual follows, MemTotal drops, the host gets the memory
// back: the VMM's RSS falls after the guest had touched and freed that memory) and deflates it;
// GET /balloon/statistics carries the guest's real numbers; the API refuses what Firecracker does;
// driver_ok says whether the guest's driver runs the device (not before it loads, not after rmmod);
// resident_mib, the host's own count of the guest RAM it holds, falls with an inflation and not
// when a guest lies (writes actual into the device with devmem, giving nothing), nor with a
// snapshot create; a snapshot taken while an inflate is in flight loads into a fresh VMM whose
// balloon carries on to the target.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';

import { ensureDefaultImage } from '../images/build-image.js';
import { api, faultOf, startVmm, tempDir } from './vmm-client.js';
import { BOOT_MS, POWEROFF_MS, ShellSession, TEST_MS } from './vessel-cli.js';

const MARKER = 'VESSEL-INIT-OK';
const MEM_MIB = 256;
const MIB = 1024 * 1024;

interface BalloonInfo { amount_mib: number; deflate_on_oom: boolean; stats_polling_interval_s: number; free_page_reporting: boolean; target_pages?: number; actual_pages?: number; target_mib?: number; actual_mib?: number; driver_ok?: boolean; resident_mib?: number }
interface BalloonStats { target_pages: number; actual_pages: number; target_mib: number; actual_mib: number; free_memory?: number; total_memory?: number; available_memory?: number; minor_faults?: number; swap_in?: number }
interface BalloonMetrics { target_pages: number; actual_pages: number; inflate_count: number; deflate_count: number; released_bytes: number; bad_pfns: number }

const rssOf = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A VMM API call on `sock` that must succeed (200 or 204); returns the body. */
const okOn = (sock: string) => async (method: string, url: string, body?: unknown): Promise<unknown> => {
  const r = await api(sock, method, url, body);
  assert.ok(r.status === 204 || r.status === 200, `${method} ${url}: ${r.status} ${r.text}`);
  return r.body;
};

test('vmm balloon: the guest driver binds; inflating to 64 MiB lowers MemTotal and the VMM\'s RSS; statistics are the guest\'s; deflating gives the memory back', { timeout: TEST_MS }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = tempDir(t, 'vessel-vmm-balloon-');
  const { vmm, sock } = await startVmm(dir);
  t.after(() => vmm.kill());
  const call = async (method: string, url: string, body?: unknown) => api(sock, method, url, body);
  const ok = okOn(sock);

  await ok('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: MEM_MIB });
  await ok('PUT', '/boot-source', { kernel_image_path: image.kernel, initrd_path: image.initrd, boot_args: 'console=ttyS0 earlycon=sbi' });
  // Before the start: no balloon yet, then one; too large and wrong-state requests are refused.
  assert.match(faultOf(await call('GET', '/balloon')), /no balloon device is configured/);
  assert.match(faultOf(await call('PUT', '/balloon', { amount_mib: MEM_MIB + 1, deflate_on_oom: false })), /amount_mib 257 is larger than the guest memory \(256 MiB\)/);
  assert.match(faultOf(await call('PUT', '/balloon', { amount_mib: 1 })), /deflate_on_oom/, 'deflate_on_oom is required, as in Firecracker');
  await ok('PUT', '/balloon', { amount_mib: 0, deflate_on_oom: false, stats_polling_interval_s: 1 });
  assert.deepEqual(await ok('GET', '/balloon'), { amount_mib: 0, deflate_on_oom: false, stats_polling_interval_s: 1, free_page_reporting: false });
  assert.match(faultOf(await call('GET', '/balloon/statistics')), /the VM is not started/);
  await ok('PUT', '/actions', { action_type: 'InstanceStart' });
  assert.match(faultOf(await call('PUT', '/balloon', { amount_mib: 0, deflate_on_oom: false })), /only possible before InstanceStart/);

  const shell = new ShellSession(vmm, MARKER);
  await shell.waitForShell(BOOT_MS);
  await shell.run('dmesg -n 1');
  const bound = (await shell.run('ls /sys/bus/virtio/drivers/virtio_balloon')).trim();
  assert.match(bound, /virtio\d+/, `a device is bound to virtio_balloon: ${bound}`);
  const memTotalKb = async () => Number(/MemTotal:\s+(\d+)/.exec(await shell.run('grep MemTotal /proc/meminfo'))![1]);
  const total0 = await memTotalKb();

  // Statistics from the guest: its driver sends them at probe and then every second.
  let stats = (await ok('GET', '/balloon/statistics')) as BalloonStats;
  for (let i = 0; i < 50 && stats.total_memory === undefined; i++) { await sleep(200); stats = (await ok('GET', '/balloon/statistics')) as BalloonStats; }
  t.diagnostic(`statistics at boot: ${JSON.stringify(stats)}`);
  assert.equal(stats.total_memory, total0 * 1024, 'total_memory is the guest\'s MemTotal, in bytes');
  assert.ok(stats.free_memory !== undefined && stats.free_memory > 32 * MIB && stats.free_memory < total0 * 1024, `free_memory ${stats.free_memory}`);
  assert.ok(stats.available_memory !== undefined && stats.available_memory > 0);
  assert.equal(stats.actual_pages, 0);

  // The guest touches memory (a tmpfs file), then frees it: guest-free, still resident on the host.
  const freeKb = Number(/MemFree:\s+(\d+)/.exec(await shell.run('grep MemFree /proc/meminfo'))![1]);
  const fillMib = Math.min(160, Math.floor(freeKb / 1024) - 48);
  assert.ok(fillMib >= 64, `the guest has ${freeKb} kB free`);
  await shell.run('mkdir -p /balloon-t && mount -t tmpfs -o size=200m tmpfs /balloon-t');
  await shell.run(`dd if=/dev/zero of=/balloon-t/fill bs=1M count=${fillMib} 2>/dev/null; sync`, 120_000);
  const rssFilled = rssOf(vmm.child.pid as number);
  await shell.run('rm /balloon-t/fill');
  await sleep(500);
  const rssFreed = rssOf(vmm.child.pid as number);
  const residentFreed = ((await ok('GET', '/balloon')) as BalloonInfo).resident_mib;
  assert.ok(residentFreed !== undefined && residentFreed >= fillMib && residentFreed <= MEM_MIB, `the host holds ${residentFreed} MiB of guest RAM after the fill (its own count)`);

  // Inflate to 64 MiB: actual follows, MemTotal drops by it (no deflate_on_oom), the host RSS falls.
  await ok('PATCH', '/balloon', { amount_mib: 64 });
  let info = (await ok('GET', '/balloon')) as BalloonInfo;
  const t0 = performance.now();
  while (info.actual_mib !== 64 && performance.now() - t0 < 90_000) { await sleep(250); info = (await ok('GET', '/balloon')) as BalloonInfo; }
  t.diagnostic(`inflated to ${info.actual_mib} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const { resident_mib: residentInflated, ...sizes } = info;
  assert.deepEqual(sizes, { amount_mib: 64, deflate_on_oom: false, stats_polling_interval_s: 1, free_page_reporting: false, target_pages: 16384, actual_pages: 16384, target_mib: 64, actual_mib: 64, driver_ok: true });
  // The host's own count of guest RAM it holds (mincore), which the host policy trusts over actual: it fell with the inflation.
  assert.ok(residentInflated !== undefined && residentInflated <= residentFreed - 32 && residentInflated <= MEM_MIB - 64, `resident_mib ${residentFreed} -> ${residentInflated} MiB`);
  await sleep(500);
  const rssInflated = rssOf(vmm.child.pid as number);
  const total1 = await memTotalKb();
  const m = ((await ok('GET', '/metrics')) as { balloon: BalloonMetrics }).balloon;
  t.diagnostic(`guest filled ${fillMib} MiB; VMM RSS: filled ${(rssFilled / MIB).toFixed(1)} MiB, freed in the guest ${(rssFreed / MIB).toFixed(1)} MiB, inflated ${(rssInflated / MIB).toFixed(1)} MiB; MemTotal ${total0} -> ${total1} kB; metrics ${JSON.stringify(m)}`);
  assert.equal(total0 - total1, 64 * 1024, 'MemTotal drops by the balloon');
  assert.equal(m.actual_pages, 16384);
  assert.equal(m.target_pages, 16384);
  assert.ok(m.inflate_count >= 64, `inflate requests: ${m.inflate_count} (Linux sends at most 256 PFNs each)`);
  assert.equal(m.bad_pfns, 0);
  assert.equal(m.released_bytes, 64 * MIB, 'every inflated page went back to the host');
  assert.ok(rssFreed - rssInflated > 32 * MIB, `the VMM's RSS fell by ${((rssFreed - rssInflated) / MIB).toFixed(1)} MiB (at least 32 expected)`);
  stats = (await ok('GET', '/balloon/statistics')) as BalloonStats;
  for (let i = 0; i < 75 && stats.total_memory !== total1 * 1024; i++) { await sleep(200); stats = (await ok('GET', '/balloon/statistics')) as BalloonStats; }
  assert.equal(stats.total_memory, total1 * 1024, 'fresh statistics after the inflation (polled every second)');
  assert.equal(stats.actual_mib, 64);

  // Statistics cannot be switched off after the start; the interval can change.
  assert.match(faultOf(await call('PATCH', '/balloon/statistics', { stats_polling_interval_s: 0 })), /cannot be disabled after InstanceStart/);
  await ok('PATCH', '/balloon/statistics', { stats_polling_interval_s: 2 });
  assert.match(faultOf(await call('PATCH', '/balloon', { amount_mib: 1024 })), /larger than the guest memory/);

  // Deflate: the guest takes its pages back.
  await ok('PATCH', '/balloon', { amount_mib: 0 });
  info = (await ok('GET', '/balloon')) as BalloonInfo;
  for (let i = 0; i < 360 && info.actual_pages !== 0; i++) { await sleep(250); info = (await ok('GET', '/balloon')) as BalloonInfo; }
  assert.equal(info.actual_pages, 0);
  assert.equal(await memTotalKb(), total0, 'MemTotal is back');
  const cfg = (await ok('GET', '/vm/config')) as { balloon?: unknown };
  assert.deepEqual(cfg.balloon, { amount_mib: 0, deflate_on_oom: false, stats_polling_interval_s: 2, free_page_reporting: false });
  assert.ok(((await ok('GET', '/metrics')) as { balloon: BalloonMetrics }).balloon.deflate_count > 0);

  // A snapshot while an inflate is in flight: paused once the balloon holds some of its new
  // target, saved, loaded into a fresh VMM, the balloon carries on to its target, and the restored
  // device's counters add up (every inflated page released once: the 64 MiB before and these 96).
  await ok('PATCH', '/balloon', { amount_mib: 96 });
  const tInflate = performance.now();
  while ((info.actual_pages ?? 0) === 0 && performance.now() - tInflate < 60_000) { await sleep(20); info = (await ok('GET', '/balloon')) as BalloonInfo; }
  await ok('PATCH', '/vm', { state: 'Paused' });
  const paused = (await ok('GET', '/balloon')) as BalloonInfo;
  t.diagnostic(`paused with the balloon at ${paused.actual_pages} of ${paused.target_pages} pages`);
  assert.ok((paused.actual_pages ?? 0) > 0, 'the guest had started inflating');
  const snap = `${dir}/vm.snap`, memFile = `${dir}/vm.mem`;
  await ok('PUT', '/snapshot/create', { snapshot_type: 'Full', snapshot_path: snap, mem_file_path: memFile });
  // The save reads only the pages the host holds: reading the others would map the host's zero
  // page there, which mincore counts, and resident_mib would rise toward the guest's size.
  const saved = (await ok('GET', '/balloon')) as BalloonInfo;
  t.diagnostic(`resident_mib ${paused.resident_mib} before the snapshot, ${saved.resident_mib} after`);
  assert.ok(paused.resident_mib !== undefined && saved.resident_mib !== undefined && saved.resident_mib <= paused.resident_mib + 2,
    `a snapshot does not add to the guest RAM the host holds: resident_mib ${paused.resident_mib} -> ${saved.resident_mib}`);
  assert.ok(paused.resident_mib <= MEM_MIB - 16, `the guest has RAM the host does not hold for the check to mean something (resident_mib ${paused.resident_mib})`);
  const savedMetrics = ((await ok('GET', '/metrics')) as { balloon: BalloonMetrics }).balloon;
  vmm.kill();
  await vmm.exited;
  const dir2 = tempDir(t, 'vessel-vmm-balloon-snap-');
  const second = await startVmm(dir2);
  t.after(() => second.vmm.kill());
  const ok2 = okOn(second.sock);
  await ok2('PUT', '/snapshot/load', { snapshot_path: snap, mem_backend: { backend_type: 'File', backend_path: memFile }, resume_vm: true });
  const loaded = (await ok2('GET', '/balloon')) as BalloonInfo;
  assert.equal(loaded.amount_mib, 96, 'the configuration holds the target of the inflate in flight');
  assert.equal(loaded.target_pages, 96 * 256);
  assert.ok((loaded.actual_pages ?? 0) >= (paused.actual_pages ?? 0), `actual goes on from ${paused.actual_pages} pages, not from 0 (${loaded.actual_pages})`);
  info = loaded;
  const tRestored = performance.now();
  while (info.actual_pages !== 96 * 256 && performance.now() - tRestored < 90_000) { await sleep(250); info = (await ok2('GET', '/balloon')) as BalloonInfo; }
  const m2 = ((await ok2('GET', '/metrics')) as { balloon: BalloonMetrics }).balloon;
  t.diagnostic(`restored: inflated to ${info.actual_mib} MiB ${((performance.now() - tRestored) / 1000).toFixed(1)} s after the load; metrics at the snapshot ${JSON.stringify(savedMetrics)}, now ${JSON.stringify(m2)}; the host holds ${info.resident_mib} MiB of guest RAM`);
  assert.equal(info.actual_mib, 96, 'the balloon reaches its target after the restore');
  assert.ok(m2.inflate_count > savedMetrics.inflate_count, 'the restored device took the rest of the inflation');
  assert.equal(m2.released_bytes, (64 + 96) * MIB, 'released bytes carried over the snapshot, and each page released once');
  assert.equal(m2.bad_pfns, 0);
  const at = second.vmm.stdout.length;
  second.vmm.send('echo MEM-$((6*7)) $(grep MemTotal /proc/meminfo)\n');
  const line = await second.vmm.waitFor(/MEM-42 MemTotal:\s+\d+ kB/, at, 60_000);
  const total2 = Number(/MemTotal:\s+(\d+)/.exec(second.vmm.stdout.slice(line.index, line.end))![1]);
  assert.equal(total0 - total2, 96 * 1024, 'the restored guest\'s MemTotal is down by the balloon');

  second.vmm.send('poweroff -f\n');
  const exit = await second.vmm.waitExit(POWEROFF_MS);
  assert.equal(exit.code, 0, second.vmm.describe());
});

test('vmm balloon: free page reporting without statistics (reporting_vq is queue 2) gives memory the guest freed back to the host', { timeout: TEST_MS }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = tempDir(t, 'vessel-vmm-balloon-fpr-');
  const { vmm, sock } = await startVmm(dir);
  t.after(() => vmm.kill());
  const ok = okOn(sock);
  await ok('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: MEM_MIB });
  await ok('PUT', '/boot-source', { kernel_image_path: image.kernel, initrd_path: image.initrd, boot_args: 'console=ttyS0 earlycon=sbi' });
  await ok('PUT', '/balloon', { amount_mib: 0, deflate_on_oom: true, free_page_reporting: true });
  await ok('PUT', '/actions', { action_type: 'InstanceStart' });
  assert.match(faultOf(await api(sock, 'GET', '/balloon/statistics')), /statistics are not enabled/);
  assert.match(faultOf(await api(sock, 'PATCH', '/balloon/statistics', { stats_polling_interval_s: 1 })), /cannot be enabled now/);
  const shell = new ShellSession(vmm, MARKER);
  await shell.waitForShell(BOOT_MS);
  await shell.run('dmesg -n 1');
  const metrics = async () => ((await ok('GET', '/metrics')) as { balloon: BalloonMetrics & { report_count: number } }).balloon;
  await shell.run('mkdir -p /fpr && mount -t tmpfs -o size=200m tmpfs /fpr');
  await shell.run('dd if=/dev/zero of=/fpr/fill bs=1M count=96 2>/dev/null; sync', 120_000);
  const before = await metrics();
  const rssFilled = rssOf(vmm.child.pid as number);
  await shell.run('rm /fpr/fill');
  // Linux reports freed 2 MiB blocks about 2 s later, in batches.
  let m = await metrics();
  const t0 = performance.now();
  while (m.released_bytes - before.released_bytes < 48 * MIB && performance.now() - t0 < 60_000) { await sleep(500); m = await metrics(); }
  const rssReported = rssOf(vmm.child.pid as number);
  t.diagnostic(`free page reporting: ${m.report_count - before.report_count} reports, ${((m.released_bytes - before.released_bytes) / MIB).toFixed(1)} MiB released in ${((performance.now() - t0) / 1000).toFixed(1)} s; VMM RSS ${(rssFilled / MIB).toFixed(1)} -> ${(rssReported / MIB).toFixed(1)} MiB`);
  assert.ok(m.report_count > before.report_count, 'the guest reported free pages');
  assert.ok(m.released_bytes - before.released_bytes >= 48 * MIB, `released ${m.released_bytes - before.released_bytes} bytes`);
  assert.ok(rssFilled - rssReported > 32 * MIB, `the VMM's RSS fell by ${((rssFilled - rssReported) / MIB).toFixed(1)} MiB`);
  // The guest still works on the memory it reported (it reads zeros there and fills it again).
  assert.match(await shell.run('dd if=/dev/zero of=/fpr/again bs=1M count=64 2>/dev/null; md5sum /fpr/again'), /7f614da9329cd3aebf59b91aadc30bf0/);
  shell.sendLast('poweroff -f');
  assert.equal((await vmm.waitExit(POWEROFF_MS)).code, 0, vmm.describe());
});

test('vmm balloon: driver_ok is false until the guest\'s virtio_balloon runs the device and again after rmmod; a target then moves nothing', { timeout: TEST_MS }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = tempDir(t, 'vessel-vmm-balloon-drv-');
  const { vmm, sock } = await startVmm(dir);
  t.after(() => vmm.kill());
  const ok = okOn(sock);
  await ok('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: MEM_MIB });
  await ok('PUT', '/boot-source', { kernel_image_path: image.kernel, initrd_path: image.initrd, boot_args: 'console=ttyS0 earlycon=sbi' });
  await ok('PUT', '/balloon', { amount_mib: 0, deflate_on_oom: true, stats_polling_interval_s: 1 });
  await ok('PUT', '/actions', { action_type: 'InstanceStart' });
  // The kernel has not probed anything yet.
  assert.equal(((await ok('GET', '/balloon')) as BalloonInfo).driver_ok, false);
  const tBoot = performance.now();
  const shell = new ShellSession(vmm, MARKER);
  await shell.waitForShell(BOOT_MS);
  const bootS = ((performance.now() - tBoot) / 1000).toFixed(1);
  await shell.run('dmesg -n 1');
  assert.equal(((await ok('GET', '/balloon')) as BalloonInfo).driver_ok, true, 'the default image loads virtio_balloon');
  assert.equal(((await ok('GET', '/balloon/statistics')) as { driver_ok: boolean }).driver_ok, true);

  // The guest without its driver: the device is reset (status 0).
  await shell.run('rmmod virtio_balloon');
  assert.equal((await shell.run('ls /sys/bus/virtio/drivers/virtio_balloon 2>&1; lsmod | grep -c virtio_balloon')).trim().split('\n').at(-1), '0', 'the module is gone');
  let info = (await ok('GET', '/balloon')) as BalloonInfo;
  assert.equal(info.driver_ok, false);
  assert.equal(((await ok('GET', '/balloon/statistics')) as { driver_ok: boolean }).driver_ok, false);
  await ok('PATCH', '/balloon', { amount_mib: 8 });
  await sleep(2000);
  info = (await ok('GET', '/balloon')) as BalloonInfo;
  assert.deepEqual([info.target_mib, info.actual_mib, info.driver_ok], [8, 0, false], 'nobody inflates it');

  // A guest that lies: with no driver, it writes the balloon's actual (64 MiB) into the device's
  // configuration with devmem, giving nothing. The guest's word moves; the host's count does not.
  const residentBefore = info.resident_mib;
  const base = (await shell.run('for d in /sys/bus/virtio/devices/*; do [ "$(cat $d/device)" = 0x0005 ] && basename $(readlink -f $d/..); done')).trim().split('\n').at(-1)!.split('.')[0];
  assert.match(base, /^[0-9a-f]+$/, `the balloon's virtio-mmio base: ${base}`);
  // The transport lets go of the region first (the kernel refuses /dev/mem over a claimed one), and takes it back after.
  const unbind = `echo ${base}.virtio_mmio > /sys/bus/platform/drivers/virtio-mmio/unbind`;
  const wrote = await shell.run(`${unbind}; devmem $(printf 0x%x $((0x${base} + 0x104))) 32 16384; echo devmem=$?`);
  info = (await ok('GET', '/balloon')) as BalloonInfo;
  assert.equal(info.actual_mib, 64, `the device has the guest's word (devmem: ${wrote.trim()})`);
  assert.ok(residentBefore !== undefined && info.resident_mib !== undefined && Math.abs(info.resident_mib - residentBefore) <= 4,
    `the host's count did not move: resident_mib ${residentBefore} -> ${info.resident_mib}`);
  await shell.run(`echo ${base}.virtio_mmio > /sys/bus/platform/drivers/virtio-mmio/bind`);

  // Loaded again, the driver runs the device and follows the target.
  await shell.run('modprobe virtio_balloon');
  const t0 = performance.now();
  while ((info.driver_ok !== true || info.actual_mib !== 8) && performance.now() - t0 < 30_000) { await sleep(250); info = (await ok('GET', '/balloon')) as BalloonInfo; }
  assert.deepEqual([info.driver_ok, info.actual_mib], [true, 8]);
  t.diagnostic(`boot to the shell ${bootS} s; modprobe to 8 MiB inflated ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  shell.sendLast('poweroff -f');
  assert.equal((await vmm.waitExit(POWEROFF_MS)).code, 0, vmm.describe());
});
