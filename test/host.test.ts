// `vessel host` and `vessel vm` end to end, as a user drives them: a real host daemon on a
// temporary state directory, VMs booting the default image's kernel and initramfs in their own
// `vessel vmm` processes, the cgroup files the kernel enforces, a VM process killed with
// SIGKILL, the host restarted under running VMs, a second host refused, the API over TCP with
// its token, and create/delete cycles that must leave nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';

import { ensureDefaultImage } from '../images/build-image.js';
import { BOOT_MS, freePort, TEST_MS, VesselProcess } from './vessel-cli.js';
import { removeStateDir, shortStateDir, startHost, until, vm, vmOk } from './host-cli.js';

const run = promisify(execFile);
const MARKER = 'VESSEL-INIT-OK';
const CG_CPU = '/sys/fs/cgroup/cpu/vessel';
const haveV1 = fs.existsSync('/sys/fs/cgroup/cpu/cpu.shares');

interface VmJson { id: string; name: string; state: string; pid: number | null; cpu_weight: number; cpu_cap: number; disks: { path: string }[]; console_socket: string; last_exit: { reason: string } | null }

async function show(dir: string, name: string): Promise<VmJson> {
  return JSON.parse(await vmOk(dir, ['show', name, '--json'])) as VmJson;
}

/** A live process (a zombie, ended but not yet reaped by an init that does not reap, is not). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function read(file: string): string {
  return fs.readFileSync(file, 'utf8').trim();
}

test('host: VMs in their own processes and cgroups, driven by vessel vm; a killed VM restarts; a restarted host adopts its VMs; a second host is refused', { timeout: TEST_MS }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = shortStateDir('vh-');
  let host = await startHost(dir);
  t.after(() => { host.kill(); removeStateDir(dir); });

  const second = VesselProcess.cli(['host', '--state-dir', dir]);
  const secondExit = await second.waitExit(30_000);
  assert.equal(secondExit.code, 2);
  assert.match(second.stderr, /another vessel host \(pid \d+\) is using the state directory/);

  assert.equal((await vmOk(dir, ['list'])).trim().split('\n').length, 1, 'a new host has no VMs (the header only)');
  const boot = ['--kernel', image.kernel, '--initrd', image.initrd, '--memory', '128M', '--net', 'none'];
  await vmOk(dir, ['create', 'web', ...boot, '--cpu-weight', '200', '--cpu-cap', '50']);
  let web = await show(dir, 'web');
  assert.equal(web.state, 'running');
  assert.ok(web.pid && alive(web.pid), 'show --json names the live pid of the VM process');
  const args = fs.readFileSync(`/proc/${web.pid}/cmdline`, 'utf8').split('\0');
  assert.ok(args.includes('vmm') && args.includes(web.id), `the VM runs as its own vessel vmm process: ${args.join(' ')}`);

  if (haveV1) {
    assert.equal(read(`${CG_CPU}/${web.id}/cpu.shares`), '2048', 'weight 200 = 2048 shares on cgroup v1');
    assert.equal(read(`${CG_CPU}/${web.id}/cpu.cfs_quota_us`), '50000', 'a 50% cap = 50 ms per 100 ms');
    assert.ok(read(`${CG_CPU}/${web.id}/cgroup.procs`).split('\n').includes(String(web.pid)), 'the VM process is in its cgroup');
  }

  // Changes while it runs: the kernel's files follow at once (and the boot below is not held to 50%).
  await vmOk(dir, ['set', 'web', '--cpu-weight', '50', '--cpu-cap', '0']);
  if (haveV1) {
    assert.equal(read(`${CG_CPU}/${web.id}/cpu.shares`), '512');
    assert.equal(read(`${CG_CPU}/${web.id}/cpu.cfs_quota_us`), '-1');
  }

  // Bad input: each refused with a sentence and the right exit code, nothing changed.
  let r = await vm(dir, ['create', 'web', ...boot]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /a VM named "web" already exists/);
  r = await vm(dir, ['create', 'w2', ...boot, '--cpu-weight', '0']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--cpu-weight must be an integer from 1 to 10000/);
  r = await vm(dir, ['create', 'w3', '--kernel', '/nonexistent/Image']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /kernel "\/nonexistent\/Image" does not exist/);
  r = await vm(dir, ['set', 'web', '--cpu-cap', '100000']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /cpu_cap .* from 0 to \d+/);
  r = await vm(dir, ['show', 'nosuchvm']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no VM named "nosuchvm"/);
  assert.equal(JSON.parse(await vmOk(dir, ['list', '--json'])).length, 1, 'the refused creates left no VM');

  // The serial console: its output so far in `logs`, typing through the console socket.
  await until('the boot marker in vessel vm logs', async () => (await vmOk(dir, ['logs', 'web'])).includes(MARKER) || undefined, BOOT_MS);
  const sock = net.connect(web.console_socket);
  await new Promise((res, rej) => { sock.once('connect', res); sock.once('error', rej); });
  sock.write('echo typed-$((6*7))\n');
  await until('typed output in the log', async () => (await vmOk(dir, ['logs', 'web', '--tail', '5'])).includes('typed-42') || undefined, 60_000);
  sock.destroy();

  assert.match(await vmOk(dir, ['pause', 'web']), /web paused/);
  assert.equal((await show(dir, 'web')).state, 'paused');
  assert.match(await vmOk(dir, ['resume', 'web']), /web running/);

  const stats = JSON.parse(await vmOk(dir, ['stats', 'web', '--json'])) as { cpu: { usage_s: number }; memory: { rss_bytes: number } };
  assert.ok(stats.cpu.usage_s > 0.5, `the booted VM used CPU: ${JSON.stringify(stats.cpu)}`);
  assert.ok(stats.memory.rss_bytes > 20 * 1024 * 1024, `its process holds memory: ${stats.memory.rss_bytes}`);
  const { stdout: metrics } = await run('curl', ['-sS', '--unix-socket', path.join(dir, 'host.sock'), 'http://localhost/metrics']);
  assert.match(metrics, new RegExp(`vessel_vm_cpu_seconds_total\\{vm="web",id="${web.id}"\\} [0-9.]+`));
  assert.match(metrics, /vessel_host_memory_total_bytes \d+/);

  // A VM process killed with SIGKILL: noticed, recorded with its reason, restarted (policy on-failure).
  const killed = web.pid as number;
  process.kill(killed, 'SIGKILL');
  web = await until('a new VM process', async () => { const v = await show(dir, 'web'); return v.pid && v.pid !== killed && v.state === 'running' ? v : undefined; }, 60_000);
  assert.match(web.last_exit?.reason ?? '', /killed by SIGKILL/);
  const events = await vmOk(dir, ['events', 'web']);
  assert.match(events, /exited\s+the VM process was killed by SIGKILL/);
  assert.match(events, /restarted/);

  // The host restarts; the VM process goes on and is adopted, not started again.
  host.child.kill('SIGTERM');
  assert.equal((await host.waitExit(30_000)).code, 0);
  assert.ok(alive(web.pid as number), 'the VM outlives its host');
  host = await startHost(dir);
  const adopted = await show(dir, 'web');
  assert.equal(adopted.pid, web.pid);
  assert.equal(adopted.state, 'running');
  assert.match(await vmOk(dir, ['events', 'web']), /adopted/);

  // Stop, then delete: no process, cgroup or file of the VM is left.
  await vmOk(dir, ['stop', 'web']);
  assert.equal((await show(dir, 'web')).state, 'stopped');
  assert.equal(alive(web.pid as number), false);
  if (haveV1) assert.equal(fs.existsSync(`${CG_CPU}/${web.id}`), false, 'the stopped VM\'s cgroup is removed');
  await vmOk(dir, ['delete', 'web']);
  assert.equal(fs.existsSync(path.join(dir, 'vms', web.id)), false);
  assert.equal(JSON.parse(await vmOk(dir, ['list', '--json'])).length, 0);
});

test('host: default-image VMs each get their own root disk copy; create/delete cycles leave no process, fd, cgroup, socket or file; the TCP API needs its token', { timeout: TEST_MS }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = shortStateDir('vh-');
  const port = await freePort();
  const host = await startHost(dir, ['--listen', `127.0.0.1:${port}`]);
  t.after(() => { host.kill(); removeStateDir(dir); });
  const url = /API over HTTP at (http:\/\/\S+)/.exec(host.stdout)?.[1];
  assert.ok(url, `the host prints its URL with the token: ${host.stdout}`);
  const token = new URL(url).searchParams.get('token') as string;
  assert.ok(token.length >= 16);
  let res = await fetch(`http://127.0.0.1:${port}/vms`);
  assert.equal(res.status, 401);
  res = await fetch(`http://127.0.0.1:${port}/vms`, { headers: { Authorization: 'Bearer wrong-token-wrong-token' } });
  assert.equal(res.status, 401);
  res = await fetch(`http://127.0.0.1:${port}/vms`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  res = await fetch(`http://127.0.0.1:${port}/vms`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: '{"name": "x", "vcpus": "two"}' });
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as { fault_message: string }).fault_message, /field "vcpus" must be an integer/);

  // Two VMs from the default image, not started: each has its own copy of the root disk.
  await vmOk(dir, ['create', 'd1', '--no-start']);
  await vmOk(dir, ['create', 'd2', '--no-start']);
  const [d1, d2] = [await show(dir, 'd1'), await show(dir, 'd2')];
  assert.notEqual(d1.disks[0].path, d2.disks[0].path);
  for (const d of [d1, d2]) {
    assert.ok(d.disks[0].path.startsWith(path.join(dir, 'vms', d.id)), `${d.name}'s root disk is in its own folder: ${d.disks[0].path}`);
    assert.notEqual(d.disks[0].path, image.rootfs);
  }
  await vmOk(dir, ['delete', 'd1', 'd2']);
  assert.equal(fs.existsSync(d1.disks[0].path), false, 'the root disk copy goes with its VM');

  // A request while the VM is still starting: refused at once with the reason, the start goes on.
  await vmOk(dir, ['create', 'p1', '--kernel', image.kernel, '--initrd', image.initrd, '--memory', '64M', '--net', 'none', '--no-start']);
  const auth = { Authorization: `Bearer ${token}` };
  const starting = fetch(`http://127.0.0.1:${port}/vms/p1/start`, { method: 'POST', headers: auth });
  await new Promise((r) => setTimeout(r, 50));
  const early = await fetch(`http://127.0.0.1:${port}/vms/p1/pause`, { method: 'POST', headers: auth });
  assert.equal(early.status, 409);
  assert.match(((await early.json()) as { fault_message: string }).fault_message, /VM "p1" is still starting/);
  assert.equal((await starting).status, 200);
  assert.equal((await show(dir, 'p1')).state, 'running');
  await vmOk(dir, ['delete', '--force', 'p1']);

  // Create, start and delete with force, over and over.
  const hostPid = host.child.pid as number;
  const fdsBefore = fs.readdirSync(`/proc/${hostPid}/fd`).length;
  const boot = ['--kernel', image.kernel, '--initrd', image.initrd, '--memory', '64M', '--net', 'none'];
  const ids: string[] = [];
  for (let i = 0; i < 8; i++) {
    const out = await vmOk(dir, ['create', `c${i}`, ...boot]);
    ids.push(out.trim().split(' ')[1]);
    await vmOk(dir, ['delete', '--force', `c${i}`]);
  }
  const left = spawnSync('pgrep', ['-f', `--state-dir|${dir}/vms`], { encoding: 'utf8' }).stdout.trim().split('\n').filter((p) => p !== '' && Number(p) !== hostPid);
  const vmProcs = left.filter((p) => { try { return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`${dir}/vms`); } catch { return false; } });
  assert.deepEqual(vmProcs, [], 'no VM process is left');
  assert.deepEqual(fs.readdirSync(path.join(dir, 'vms')), [], 'no VM folder, socket or disk is left');
  if (haveV1) for (const id of ids) assert.equal(fs.existsSync(`${CG_CPU}/${id}`), false, `no cgroup is left for ${id}`);
  // Client connections come and go (keep-alive); a leak of one descriptor per cycle would show as +8.
  const fdsAfter = fs.readdirSync(`/proc/${hostPid}/fd`).length;
  assert.ok(fdsAfter <= fdsBefore + 4, `the host's file descriptors did not pile up over 8 cycles: ${fdsBefore} before, ${fdsAfter} after`);
});

test('host: a full state directory refuses a create with 507 and a sentence, and the host goes on', { timeout: TEST_MS, skip: process.getuid?.() !== 0 ? 'needs root to mount a small tmpfs' : false }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = shortStateDir('vh-');
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir], { encoding: 'utf8' });
  assert.equal(mount.status, 0, `cannot mount a tmpfs: ${mount.stderr}`);
  const host = await startHost(dir);
  t.after(async () => {
    host.kill();
    await host.exited;
    spawnSync('umount', ['-l', dir]);
    removeStateDir(dir);
  });
  // Fill what is left of the 4 MiB.
  const filler = path.join(dir, 'filler');
  spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { encoding: 'utf8' });
  const r = await vm(dir, ['create', 'full', '--kernel', image.kernel, '--initrd', image.initrd, '--net', 'none', '--no-start', '--restart', 'no']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /disk is full/);
  assert.equal(JSON.parse(await vmOk(dir, ['list', '--json'])).length, 0, 'the refused create left no VM');
  fs.rmSync(filler);
  await vmOk(dir, ['create', 'full', '--kernel', image.kernel, '--initrd', image.initrd, '--net', 'none', '--no-start']);
  assert.equal((await show(dir, 'full')).state, 'stopped');
  await vmOk(dir, ['delete', 'full']);
});
