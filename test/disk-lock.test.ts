// Disk image locks (src/devices/virtio/disk-lock.ts): a whole-file POSIX record lock on every
// disk a VM opens, whoever started it. Two VMs on one image read-write: the second is refused
// with a sentence naming the file (vessel vmm: 400 and still Not started; vessel run: exit 2);
// two read-only users share it; a lock held by another program (python's fcntl.lockf, a POSIX
// lock like QEMU's OFD locks as far as the kernel is concerned) refuses too; a snapshot loaded
// into a second VMM while the first still runs on the disk is refused and leaves that VMM fresh,
// and a drive swap (PATCH /drives) onto a locked image is refused. The guests are paused at once:
// only the locks matter here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { ensureDefaultImage } from '../images/build-image.js';
import { api, faultOf, startVmm, tempDir } from './vmm-client.js';
import { CLI, initramfsOnly, REPO_ROOT, VesselProcess } from './vessel-cli.js';

const inUse = (disk: string, how: 'read-write' | 'read-only'): RegExp =>
  new RegExp(`disk "${disk.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}" is in use by another process \\(a running VM or QEMU\\): it is locked ${how}`);

async function put(sock: string, url: string, body: unknown, method = 'PUT'): Promise<void> {
  const r = await api(sock, method, url, body);
  assert.equal(r.status, 204, `${method} ${url}: ${r.text}`);
}

/** Configures a VM on `disks` (drive_id d0, d1, ...) with the default kernel and initramfs. */
async function configure(sock: string, disks: { path: string; readonly?: boolean }[]): Promise<void> {
  const image = await ensureDefaultImage({ quiet: true });
  await put(sock, '/machine-config', { vcpu_count: 1, mem_size_mib: 128 });
  await put(sock, '/boot-source', { kernel_image_path: image.kernel, initrd_path: image.initrd, boot_args: 'console=ttyS0 quiet' });
  for (const [i, d] of disks.entries()) await put(sock, `/drives/d${i}`, { drive_id: `d${i}`, path_on_host: d.path, is_root_device: false, is_read_only: d.readonly ?? false });
}

/** A started VMM on `disks`, its guest paused at once. */
async function runningVmm(t: { after: (f: () => void) => void }, dir: string, disks: { path: string; readonly?: boolean }[]): Promise<{ vmm: VesselProcess; sock: string }> {
  const v = await startVmm(dir);
  t.after(() => v.vmm.kill());
  await configure(v.sock, disks);
  await put(v.sock, '/actions', { action_type: 'InstanceStart' });
  await put(v.sock, '/vm', { state: 'Paused' }, 'PATCH');
  return v;
}

function disk(dir: string, name: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, Buffer.alloc(1 << 20));
  return p;
}

function runCli(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000, input: '' });
  return { status: r.status, stderr: r.stderr };
}

test('two VMMs on one image read-write: the second is refused and stays Not started; vessel run too; the image is free again after the first exits', { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t, 'vessel-lock-');
  const img = disk(dir, 'shared.img');
  const first = await runningVmm(t, fs.mkdtempSync(path.join(dir, 'a-')), [{ path: img }]);

  const second = await startVmm(fs.mkdtempSync(path.join(dir, 'b-')));
  t.after(() => second.vmm.kill());
  await configure(second.sock, [{ path: img }]);
  const fault = faultOf(await api(second.sock, 'PUT', '/actions', { action_type: 'InstanceStart' }));
  assert.match(fault, inUse(img, 'read-write'));
  assert.match(fault, new RegExp(`by pid ${first.vmm.child.pid}$`), 'the holder is named');
  assert.equal(((await api(second.sock, 'GET', '/')).body as { state: string }).state, 'Not started');

  // A read-only user is refused while a writer holds it.
  const run = runCli(['run', ...initramfsOnly(), '--net', 'none', '--disk', `${img},readonly`]);
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, inUse(img, 'read-write'));

  // The first VMM ends: its lock goes with it, and the second starts on the image.
  first.vmm.kill();
  await first.vmm.exited;
  await put(second.sock, '/actions', { action_type: 'InstanceStart' });
  await put(second.sock, '/vm', { state: 'Paused' }, 'PATCH');
});

test('vessel run first, then a VMM on the same image: the VMM is refused; one image twice in one VM is refused', { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t, 'vessel-lock-');
  const img = disk(dir, 'run.img');
  const run = VesselProcess.cli(['run', ...initramfsOnly(), '--net', 'none', '--disk', img]);
  t.after(() => run.kill());
  await run.waitFor(/\S/, 0, 120_000); // console output: the board was built, so its disks are locked
  const vmm = await startVmm(fs.mkdtempSync(path.join(dir, 'v-')));
  t.after(() => vmm.vmm.kill());
  await configure(vmm.sock, [{ path: img }]);
  assert.match(faultOf(await api(vmm.sock, 'PUT', '/actions', { action_type: 'InstanceStart' })), inUse(img, 'read-write'));
  run.kill();
  await run.exited;

  const twice = runCli(['run', ...initramfsOnly(), '--net', 'none', '--disk', img, '--disk', path.join(dir, '.', 'run.img')]);
  assert.equal(twice.status, 2, twice.stderr);
  assert.match(twice.stderr, /disk ".*run.img" is already used by this VM \(as ".*run.img"\); a disk image can be attached once/);
});

test('read-only + read-only is allowed; a writer is then refused with "locked read-only"', { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t, 'vessel-lock-');
  const img = disk(dir, 'ro.img');
  await runningVmm(t, fs.mkdtempSync(path.join(dir, 'a-')), [{ path: img, readonly: true }]);
  await runningVmm(t, fs.mkdtempSync(path.join(dir, 'b-')), [{ path: img, readonly: true }]);
  const run = runCli(['run', ...initramfsOnly(), '--net', 'none', '--disk', img]);
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, inUse(img, 'read-only'));
});

test('a POSIX lock held by another program (python fcntl.lockf) refuses the image; PATCH /drives onto it is refused and the drive keeps its image', { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t, 'vessel-lock-');
  const img = disk(dir, 'held.img');
  const py = spawn('python3', ['-c', `import fcntl, sys; f = open(${JSON.stringify(img)}, "r+"); fcntl.lockf(f, fcntl.LOCK_EX); print("locked", flush=True); sys.stdin.read()`], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => py.kill());
  await new Promise<void>((resolve, reject) => { py.stdout.once('data', () => resolve()); py.once('error', reject); });
  const run = runCli(['run', ...initramfsOnly(), '--net', 'none', '--disk', img]);
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, inUse(img, 'read-write'));
  assert.match(run.stderr, new RegExp(`by pid ${py.pid}`));

  const own = disk(dir, 'own.img');
  const other = disk(dir, 'other.img');
  const v = await runningVmm(t, fs.mkdtempSync(path.join(dir, 'v-')), [{ path: own }, { path: other }]);
  assert.match(faultOf(await api(v.sock, 'PATCH', '/drives/d0', { drive_id: 'd0', path_on_host: img })), new RegExp(`^drive "d0": ${inUse(img, 'read-write').source}`));
  assert.match(faultOf(await api(v.sock, 'PATCH', '/drives/d0', { drive_id: 'd0', path_on_host: other })), /^drive "d0": disk ".*other.img" is already used by this VM/);
  const config = (await api(v.sock, 'GET', '/vm/config')).body as { drives: { path_on_host: string }[] };
  assert.equal(config.drives[0].path_on_host, own, 'the refused swaps left the drive on its image');
  // Its image is still locked: the swaps opened nothing that could have dropped the lock.
  const again = runCli(['run', ...initramfsOnly(), '--net', 'none', '--disk', own]);
  assert.match(again.stderr, inUse(own, 'read-write'));
  // A swap to a free image moves the lock: the old image is free, the new one held.
  const fresh = disk(dir, 'fresh.img');
  await put(v.sock, '/drives/d0', { drive_id: 'd0', path_on_host: fresh }, 'PATCH');
  const py2 = spawnSync('python3', ['-c', `import fcntl; f = open(${JSON.stringify(own)}, "r+"); fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)`]);
  assert.equal(py2.status, 0, `the old image is free again: ${py2.stderr}`);
  const py3 = spawnSync('python3', ['-c', `import fcntl; f = open(${JSON.stringify(fresh)}, "r+"); fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)`]);
  assert.notEqual(py3.status, 0, 'the new image is locked');
  py.stdin.end();
});

test('a snapshot loaded into a second VMM while the first still runs on its disk is refused, the second VMM stays fresh and loads it once the first is gone', { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t, 'vessel-lock-');
  const img = disk(dir, 'snap.img');
  const first = await runningVmm(t, fs.mkdtempSync(path.join(dir, 'a-')), [{ path: img }]);
  const snap = path.join(dir, 'vm.snap');
  const mem = path.join(dir, 'vm.mem');
  await put(first.sock, '/snapshot/create', { snapshot_type: 'Full', snapshot_path: snap, mem_file_path: mem });

  const second = await startVmm(fs.mkdtempSync(path.join(dir, 'b-')));
  t.after(() => second.vmm.kill());
  const load = { snapshot_path: snap, mem_backend: { backend_type: 'File', backend_path: mem }, resume_vm: false };
  assert.match(faultOf(await api(second.sock, 'PUT', '/snapshot/load', load)), new RegExp(`^PUT /snapshot/load: ${inUse(img, 'read-write').source}`));
  assert.equal(((await api(second.sock, 'GET', '/')).body as { state: string }).state, 'Not started');
  assert.deepEqual(((await api(second.sock, 'GET', '/vm/config')).body as { drives: unknown[] }).drives, [], 'the refused load configured nothing');

  first.vmm.kill();
  await first.vmm.exited;
  await put(second.sock, '/snapshot/load', load);
  assert.equal(((await api(second.sock, 'GET', '/')).body as { state: string }).state, 'Paused');
});
