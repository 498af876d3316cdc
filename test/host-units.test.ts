// The host layer's parts on their own: the SQLite state store, the cgroup CPU controller (the
// real v1 hierarchy of this machine, and a v2 tree laid out in a temporary folder for the file
// formats), the weight/cap arithmetic and the checks a VM definition must pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { capToQuotaUs, Cgroups, weightToShares } from '../src/host/cgroups.js';
import { StateStore, StateStoreError } from '../src/host/store.js';
import { checkName, checkNetSpec, checkSpec, SpecError, vmmConfig, type VmSpec } from '../src/host/vm-spec.js';
import { processStartTime, sameProcess } from '../src/host/proc.js';

function tmp(t: { after(f: () => void): void }, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function spec(dir: string, over: Partial<VmSpec> = {}): VmSpec {
  const kernel = path.join(dir, 'Image');
  if (!fs.existsSync(kernel)) fs.writeFileSync(kernel, 'not really a kernel');
  return { vcpus: 1, memory_mib: 128, memory_min_mib: 128, cpu_weight: 100, cpu_cap: 0, kernel, append: 'console=ttyS0', disks: [], nets: ['user'], rng: true, restart: 'on-failure', ...over };
}

test('store: VMs by name, id and id prefix; a duplicate name is refused and changes nothing; runtime and exits; events', (t) => {
  const dir = tmp(t, 'vessel-store-');
  const store = new StateStore(path.join(dir, 'host.db'));
  const s = spec(dir);
  store.insertVm({ id: 'aaaaaaaaaaaa', name: 'web', createdAt: new Date().toISOString(), spec: s, desired: 'running' }, 'created');
  assert.equal(store.findVm('web')?.id, 'aaaaaaaaaaaa');
  assert.equal(store.findVm('aaaaaaaaaaaa')?.name, 'web');
  assert.equal(store.findVm('aaaa')?.name, 'web', 'a unique id prefix finds the VM');
  assert.equal(store.findVm('nope'), undefined);
  assert.throws(() => store.insertVm({ id: 'bbbbbbbbbbbb', name: 'web', createdAt: '', spec: s, desired: 'running' }, 'x'), StateStoreError);
  assert.equal(store.listVms().length, 1, 'the refused insert left nothing behind');
  store.setRuntime({ vmId: 'aaaaaaaaaaaa', pid: 42, pidStart: '123', startedAt: 'now' });
  assert.equal(store.getRuntime('aaaaaaaaaaaa')?.pid, 42);
  store.clearRuntime('aaaaaaaaaaaa', { exit_code: null, signal: 'SIGKILL', reason: 'killed', at: 'then' });
  assert.equal(store.getRuntime('aaaaaaaaaaaa'), undefined);
  assert.equal(store.lastExit('aaaaaaaaaaaa')?.signal, 'SIGKILL');
  store.event('aaaaaaaaaaaa', 'web', 'exited', 'killed');
  assert.deepEqual(store.events({ vmId: 'aaaaaaaaaaaa' }).map((e) => e.kind), ['created', 'exited']);
  // Reopened, everything is still there (what was acknowledged is on disk).
  store.close();
  const again = new StateStore(path.join(dir, 'host.db'));
  assert.equal(again.findVm('web')?.spec.memory_mib, 128);
  again.deleteVm('aaaaaaaaaaaa', 'web');
  assert.equal(again.listVms().length, 0);
  assert.equal(again.getRuntime('aaaaaaaaaaaa'), undefined);
  again.close();
});

test('cgroups: weights map to v1 shares (v1 default 1024 = v2 default 100) and caps to CFS quotas', () => {
  assert.equal(weightToShares(100), 1024);
  assert.equal(weightToShares(200), 2048);
  assert.equal(weightToShares(1), 10);
  assert.equal(weightToShares(10_000), 102_400);
  assert.equal(capToQuotaUs(0), -1);
  assert.equal(capToQuotaUs(25), 25_000);
  assert.equal(capToQuotaUs(150), 150_000);
});

test('cgroups: this host\'s CPU controller takes a group, its weight and cap, a process, and gives them back', { skip: !fs.existsSync('/sys/fs/cgroup/cpu/cpu.shares') && !fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'no cgroup CPU controller mounted' : false }, async (t) => {
  const parent = `vessel-test-${process.pid}`;
  const { cgroups, probe } = Cgroups.probe('/sys/fs/cgroup', parent);
  assert.ok(cgroups, `no usable CPU controller: ${probe.reason}`);
  const name = 'vm1';
  cgroups.create(name, { weight: 200, capPercent: 50 });
  t.after(async () => {
    await cgroups.remove(name).catch(() => undefined);
    for (const root of ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpuacct', '/sys/fs/cgroup']) {
      try { fs.rmdirSync(path.join(root, parent)); } catch { /* not there */ }
    }
  });
  const held = cgroups.read(name);
  if (cgroups.mode === 'v1') assert.equal(held.shares, 2048);
  else assert.equal(held.weight, 200);
  assert.equal(held.quotaUs, 50_000);
  assert.equal(held.periodUs, 100_000);
  cgroups.set(name, { weight: 50, capPercent: 0 });
  assert.equal(cgroups.read(name).quotaUs, -1, 'cap 0 removes the quota');
  // A busy child in the group: the group's CPU usage grows.
  const child = spawn(process.execPath, ['-e', 'const t = Date.now(); while (Date.now() - t < 400);']);
  cgroups.addProcess(name, child.pid as number);
  assert.ok(cgroups.processes(name).includes(child.pid as number));
  await new Promise((r) => child.once('exit', r));
  const usage = cgroups.usage(name);
  assert.ok(usage && usage.usageUs > 50_000, `the group used ${usage?.usageUs} us of CPU for a 400 ms busy loop`);
  await cgroups.remove(name);
  assert.equal(cgroups.exists(name), false);
});

test('cgroups v2: cpu.weight and cpu.max are written in v2\'s formats, and the parent enables the cpu controller for its children', (t) => {
  const root = tmp(t, 'vessel-cgv2-');
  fs.writeFileSync(path.join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
  fs.writeFileSync(path.join(root, 'cgroup.subtree_control'), '');
  // A real cgroupfs makes these files itself; here the parent's are made before the probe.
  fs.mkdirSync(path.join(root, 'vessel'));
  fs.writeFileSync(path.join(root, 'vessel', 'cgroup.subtree_control'), '');
  const { cgroups } = Cgroups.probe(root, 'vessel');
  assert.ok(cgroups);
  assert.equal(cgroups.mode, 'v2');
  assert.match(fs.readFileSync(path.join(root, 'cgroup.subtree_control'), 'utf8'), /\+cpu/);
  assert.match(fs.readFileSync(path.join(root, 'vessel', 'cgroup.subtree_control'), 'utf8'), /\+cpu/);
  cgroups.create('vm1', { weight: 300, capPercent: 25 });
  assert.equal(fs.readFileSync(path.join(root, 'vessel', 'vm1', 'cpu.weight'), 'utf8'), '300\n');
  assert.equal(fs.readFileSync(path.join(root, 'vessel', 'vm1', 'cpu.max'), 'utf8'), '25000 100000\n');
  cgroups.set('vm1', { weight: 300, capPercent: 0 });
  assert.equal(fs.readFileSync(path.join(root, 'vessel', 'vm1', 'cpu.max'), 'utf8'), 'max 100000\n');
});

test('cgroups: a host without a CPU controller is told why', (t) => {
  const root = tmp(t, 'vessel-cgnone-');
  const { cgroups, probe } = Cgroups.probe(root);
  assert.equal(cgroups, null);
  assert.equal(probe.mode, 'none');
  assert.match(probe.reason ?? '', /no cgroup CPU controller is mounted/);
});

test('vm spec: names, networks, CPU values and files are checked with a sentence each', (t) => {
  const dir = tmp(t, 'vessel-spec-');
  checkName('web-1.a_b');
  assert.throws(() => checkName('-x'), /not valid/);
  assert.throws(() => checkName('a'.repeat(64)), /not valid/);
  assert.throws(() => checkName('0123456789ab'), /looks like a VM id/);
  checkNetSpec('user');
  checkNetSpec('user,hostfwd=tcp:127.0.0.1:2222-:22,mac=52:54:00:00:00:01');
  checkNetSpec('tap=tap0');
  assert.throws(() => checkNetSpec('wifi'), SpecError);
  assert.throws(() => checkNetSpec('user,hostfwd=tcp::99999-:22'), /net "user,hostfwd/);
  assert.throws(() => checkNetSpec('user,mac=01:00:00:00:00:00,mac=zz'), SpecError);
  checkSpec(spec(dir), 2);
  assert.throws(() => checkSpec(spec(dir, { cpu_weight: 0 }), 2), /cpu_weight must be an integer from 1 to 10000/);
  assert.throws(() => checkSpec(spec(dir, { cpu_cap: 201 }), 2), /cpu_cap .*from 0 to 200/);
  assert.throws(() => checkSpec(spec(dir, { vcpus: 65 }), 2), /vcpus must be an integer from 1 to 64/);
  // max_vcpus: the board's harts, at least vcpus; the VMM's machine-config gets both (vcpus is the allotment).
  assert.throws(() => checkSpec(spec(dir, { vcpus: 2, max_vcpus: 1 }), 2), /max_vcpus 1 is less than vcpus 2: max_vcpus is the most the VM can have \(give at least 2\)/);
  assert.throws(() => checkSpec(spec(dir, { max_vcpus: 65 }), 2), /max_vcpus must be an integer from 1 \(vcpus\) to 64, not 65/);
  checkSpec(spec(dir, { vcpus: 1, max_vcpus: 4 }), 2);
  assert.deepEqual(vmmConfig('abcdef123456', spec(dir, { vcpus: 1, max_vcpus: 4 }))['machine-config'], { vcpu_count: 1, mem_size_mib: 128, max_vcpus: 4 });
  assert.deepEqual(vmmConfig('abcdef123456', spec(dir, { vcpus: 2 }))['machine-config'], { vcpu_count: 2, mem_size_mib: 128 }, 'without max_vcpus the board has vcpus harts');
  assert.throws(() => checkSpec(spec(dir, { memory_min_mib: 256 }), 2), /memory_min/);
  assert.throws(() => checkSpec(spec(dir, { kernel: path.join(dir, 'missing') }), 2), /kernel ".*missing" does not exist/);
  assert.throws(() => checkSpec(spec(dir, { kernel: 'relative/Image' }), 2), /absolute path/);
  const disk = path.join(dir, 'd.img');
  fs.writeFileSync(disk, Buffer.alloc(4096));
  assert.throws(() => checkSpec(spec(dir, { disks: [{ path: disk, readonly: false }, { path: disk, readonly: true }] }), 2), /given twice/);
  const cfg = vmmConfig('abcdef123456', spec(dir, { disks: [{ path: disk, readonly: true }], nets: ['user,hostfwd=tcp::2222-:22', 'tap=tap7,mac=52:54:00:aa:bb:cc'] }));
  assert.equal(cfg['machine-config']?.mem_size_mib, 128);
  assert.deepEqual(cfg.drives?.[0], { drive_id: 'vda', path_on_host: disk, is_root_device: false, is_read_only: true });
  assert.deepEqual(cfg['network-interfaces']?.[0].vessel_user_network, { host_forwards: ['tcp::2222-:22'] });
  assert.equal(cfg['network-interfaces']?.[0].guest_mac, '52:54:00:ab:cd:ef', 'the MAC comes from the VM id');
  assert.equal(cfg['network-interfaces']?.[1].host_dev_name, 'tap7');
  assert.equal(cfg['network-interfaces']?.[1].guest_mac, '52:54:00:aa:bb:cc');
});

test('proc: a pid is told apart from a later process that reuses it by its start time', async () => {
  const child = spawn('sleep', ['5']);
  const pid = child.pid as number;
  const start = processStartTime(pid);
  assert.ok(start !== null);
  assert.equal(sameProcess(pid, start), true);
  assert.equal(sameProcess(pid, String(Number(start) + 1)), false);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.equal(sameProcess(pid, start), false, 'a reaped process is gone');
});
