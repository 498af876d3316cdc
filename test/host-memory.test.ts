// The host's memory policy end to end: a real `vessel host`, a VM booting the default image's
// kernel and initramfs (256 MiB, memory-min 128 MiB) whose virtio_balloon reports to the host;
// `vessel vm set --memory 160M` moves its balloon by hand (actual follows within seconds, the VM
// process's RSS does not grow), bad targets are refused with a sentence, and `--memory auto` gives
// it back to the policy, whose decision is visible with its reason in /memory, events and metrics
// (target and actual gauges); after `rmmod virtio_balloon` in the guest the host says it has no
// driver (/memory, vessel vm show) and the policy leaves it alone, with the reason in its events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';

import { ensureDefaultImage } from '../images/build-image.js';
import { BOOT_MS, TEST_MS } from './vessel-cli.js';
import { removeStateDir, shortStateDir, startHost, until, vm, vmOk } from './host-cli.js';

interface Memory {
  target_mib: number | null; actual_mib: number | null; memory_min_mib: number; memory_max_mib: number;
  guest_used_mib: number | null; guest_available_mib: number | null; guest_total_mib: number | null; host_rss_bytes: number | null;
  manual: boolean; balloon_driver: boolean | null; balloon: string | null; skipped: string | null; last_decision: { at: string; target_mib: number; reason: string } | null;
}

function get(dir: string, urlPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath: path.join(dir, 'host.sock'), path: urlPath }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
}

const memory = async (dir: string, name: string): Promise<Memory> => JSON.parse(await get(dir, `/vms/${name}/memory`)) as Memory;

test('host memory: vm set --memory moves the balloon by hand, actual follows and RSS does not grow; --memory auto hands it to the policy, whose decision has a reason', { timeout: TEST_MS }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = shortStateDir('vhm-');
  const host = await startHost(dir);
  t.after(() => { host.kill(); removeStateDir(dir); });

  // memory_min above memory is refused before anything is made.
  let r = await vm(dir, ['create', 'bad', '--kernel', image.kernel, '--initrd', image.initrd, '--memory', '128M', '--memory-min', '256M', '--net', 'none']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /memory_min \(MiB; at most memory\) must be an integer from 16 to 128, not 256/);

  await vmOk(dir, ['create', 'mem', '--kernel', image.kernel, '--initrd', image.initrd, '--memory', '256M', '--memory-min', '128M', '--memory-shares', '2000', '--net', 'none', '--no-start']);
  // Held at its maximum by hand while it boots, so that the policy does not move it before the test does.
  await vmOk(dir, ['set', 'mem', '--memory', '256M']);
  await vmOk(dir, ['start', 'mem']);
  const t0 = performance.now();
  const booted = await until('the guest\'s balloon driver to report', async () => { const m = await memory(dir, 'mem'); return m.balloon_driver === true && m.guest_total_mib !== null ? m : undefined; }, BOOT_MS).catch(async (e: Error) => {
    throw new Error(`${e.message}; the console's last lines:\n${(await vm(dir, ['logs', 'mem', '--tail', '15'])).stdout}`);
  });
  const bootS = ((performance.now() - t0) / 1000).toFixed(1);
  assert.equal(booted.memory_max_mib, 256);
  assert.equal(booted.balloon, 'driver running');
  assert.equal(booted.memory_min_mib, 128);
  assert.ok(booted.guest_total_mib !== null && booted.guest_total_mib > 128, `the guest's MemTotal: ${booted.guest_total_mib} MiB (256 less the kernel and what it reserves)`);
  assert.ok(booted.guest_available_mib !== null && booted.guest_available_mib > 0);
  // The VMM's own heap still grows for a while after the boot (its JIT): wait until the RSS is steady.
  let rssBefore = booted.host_rss_bytes as number;
  for (let i = 0; i < 20; i++) {
    await new Promise((res) => setTimeout(res, 1500));
    const now = (await memory(dir, 'mem')).host_rss_bytes as number;
    const steady = Math.abs(now - rssBefore) < 1048576;
    rssBefore = now;
    if (steady) break;
  }

  // Bad targets: a sentence each, exit 2, nothing changed.
  for (const size of ['100M', '300M']) {
    r = await vm(dir, ['set', 'mem', '--memory', size]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /memory target \d+ MiB is outside the VM's range: from its memory_min 128 MiB to its memory 256 MiB/);
  }

  // By hand: 160 MiB.
  const t1 = performance.now();
  await vmOk(dir, ['set', 'mem', '--memory', '160M']);
  const at160 = await until('actual to reach 160 MiB', async () => { const m = await memory(dir, 'mem'); return m.actual_mib === 160 ? m : undefined; }, 30_000);
  const followS = ((performance.now() - t1) / 1000).toFixed(1);
  assert.equal(at160.target_mib, 160);
  assert.equal(at160.manual, true);
  assert.equal(at160.guest_total_mib, booted.guest_total_mib, 'with deflate_on_oom the balloon\'s pages stay in MemTotal, counted as used');
  assert.match(at160.skipped ?? '', /set by hand to 160 MiB/);
  const rssAfter = at160.host_rss_bytes as number;
  assert.ok(rssAfter <= rssBefore + 4 * 1048576, `the VM process's RSS did not grow: ${(rssBefore / 1048576).toFixed(1)} -> ${(rssAfter / 1048576).toFixed(1)} MiB`);
  // The policy leaves a VM set by hand alone for a few rounds.
  await new Promise((res) => setTimeout(res, 5000));
  assert.equal((await memory(dir, 'mem')).target_mib, 160);

  const shown = await vmOk(dir, ['show', 'mem']);
  assert.match(shown, /Memory target:\s+160 MiB \(set by hand; min 128 MiB, max 256 MiB, shares 2000\)/);
  assert.match(shown, /Guest available:\s+\d+ MiB/);
  const stats = await vmOk(dir, ['stats', 'mem']);
  assert.match(stats, /MEM TARGET\s+MEM ACTUAL\s+GUEST USED\s+GUEST AVAIL\s+HOST RSS/);
  assert.match(stats, /160 MiB \(set\)\s+160 MiB\s+\d+ MiB\s+\d+ MiB\s+[\d.]+ MiB/);

  // Back to the policy: an idle guest gives its surplus up, down to its minimum at most.
  await vmOk(dir, ['set', 'mem', '--memory', 'auto']);
  const decided = await until('a decision of the policy', async () => {
    const m = await memory(dir, 'mem');
    return m.last_decision && /^(grows|shrinks|holds)/.test(m.last_decision.reason) ? m : undefined;
  }, 20_000);
  assert.equal(decided.manual, false);
  assert.equal(decided.skipped, null);
  assert.ok(decided.target_mib !== null && decided.target_mib >= 128 && decided.target_mib <= 256);
  assert.match(decided.last_decision?.reason ?? '', /guest uses \d+ MiB|demand \d+ MiB/);
  const events = JSON.parse(await get(dir, '/vms/mem/events')) as { kind: string; message: string }[];
  assert.ok(events.some((e) => e.kind === 'memory' && /set by hand to 160 MiB/.test(e.message)));
  assert.ok(events.some((e) => e.kind === 'memory' && /given back to the policy/.test(e.message)));
  const s = JSON.parse(await get(dir, '/vms/mem/stats')) as { memory: { target_mib: number; actual_mib: number; guest_available_mib: number; rss_bytes: number } };
  assert.ok(s.memory.target_mib >= 128 && s.memory.guest_available_mib > 0 && s.memory.rss_bytes > 0);
  const metrics = await get(dir, '/metrics');
  assert.match(metrics, /vessel_vm_memory_target_bytes\{vm="mem",id="[0-9a-f]{12}"\} \d+/);
  assert.match(metrics, /vessel_vm_memory_actual_bytes\{vm="mem",id="[0-9a-f]{12}"\} \d+/);
  assert.match(metrics, /vessel_vm_guest_memory_available_bytes\{vm="mem",id="[0-9a-f]{12}"\} \d+/);
  const later = await memory(dir, 'mem');
  t.diagnostic(`booted: ${JSON.stringify(booted)}; at 160: ${JSON.stringify(at160)}`);
  t.diagnostic(`boot to balloon statistics ${bootS} s; set 160 MiB: actual followed in ${followS} s, RSS ${(rssBefore / 1048576).toFixed(1)} -> ${(rssAfter / 1048576).toFixed(1)} MiB; auto: "${decided.last_decision?.reason}"; then target ${later.target_mib} MiB, actual ${later.actual_mib} MiB, RSS ${((later.host_rss_bytes ?? 0) / 1048576).toFixed(1)} MiB`);

  // The guest without its balloon driver: the VMM sees the device reset, the host says so and leaves the VM alone.
  const { console_socket: consoleSock } = JSON.parse(await vmOk(dir, ['show', 'mem', '--json'])) as { console_socket: string };
  const con = net.connect(consoleSock);
  await new Promise((res, rej) => { con.once('connect', res); con.once('error', rej); });
  con.write('rmmod virtio_balloon; echo rmmod-$?\n');
  await until('rmmod in the guest', async () => (await vmOk(dir, ['logs', 'mem', '--tail', '20'])).includes('rmmod-0') || undefined, 60_000);
  con.destroy();
  const gone = await until('the host to see no driver', async () => { const m = await memory(dir, 'mem'); return m.balloon === 'no driver in the guest' ? m : undefined; }, 10_000);
  assert.equal(gone.balloon_driver, false);
  assert.match(gone.skipped ?? '', /the guest has no balloon driver: its virtio_balloon went away/);
  assert.match(await vmOk(dir, ['show', 'mem']), /Balloon:\s+no driver in the guest/);
  await until('the policy\'s reason in the events', async () => {
    const evs = JSON.parse(await get(dir, '/vms/mem/events')) as { kind: string; message: string }[];
    return evs.some((e) => e.kind === 'memory' && /policy leaves it alone: the guest has no balloon driver/.test(e.message)) || undefined;
  }, 10_000);
  await new Promise((res) => setTimeout(res, 4500));
  assert.equal((await memory(dir, 'mem')).target_mib, gone.target_mib, 'the policy does not move its target');
  await vmOk(dir, ['delete', '-f', 'mem']);
});
