// The host's disk grow (src/host/disk-resize.ts) without a guest: the offline grow of a real image
// file (and its refusal while another program holds the image's lock), the refusals (shrink,
// read-only, a disk the VM does not have, partial sectors), the request a live grow sends its
// VM process, and the parsers of what the guest answers through its agent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { diskIndex, findMount, growDiskImage, parseDfBytes, parseGuestDisks, type DiskVm } from '../src/host/disk-resize.js';
import { DEFAULT_SPEC, type VmSpec } from '../src/host/vm-spec.js';

const MiB = 1 << 20;

function setup(t: { after: (f: () => void) => void }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-diskgrow-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const rw = path.join(dir, 'rw.img');
  const ro = path.join(dir, 'ro.img');
  fs.writeFileSync(rw, Buffer.alloc(MiB, 0x11));
  fs.writeFileSync(ro, Buffer.alloc(MiB));
  const spec: VmSpec = { ...DEFAULT_SPEC, memory_min_mib: 256, memory_mib: 256, kernel: '/k', append: '', disks: [{ path: rw, readonly: false }, { path: ro, readonly: true }], nets: [] };
  const vm: DiskVm = { name: 'web', state: 'stopped', spec, live: false, apiSock: path.join(dir, 'api.sock') };
  const noRequest = async (): Promise<unknown> => { throw new Error('no VM process to ask'); };
  return { dir, rw, ro, vm, noRequest };
}

test('host disk grow, offline: the image file grows (a hole: the old bytes intact), the answer says the guest sees it at its next boot', async (t) => {
  const s = setup(t);
  const g = await growDiskImage(s.vm, 'vda', 4 * MiB, s.noRequest);
  assert.equal(fs.statSync(s.rw).size, 4 * MiB);
  assert.ok(fs.readFileSync(s.rw).subarray(0, MiB).every((b) => b === 0x11));
  assert.deepEqual({ grown: g.grown, live: g.live, previous: g.previous_bytes, size: g.size_bytes, guest: g.guest }, { grown: true, live: false, previous: MiB, size: 4 * MiB, guest: null });
  assert.match(g.notes[0], /^vda grown from 1 MiB to 4 MiB offline: VM "web" is stopped; the guest sees the new size when it next boots/);
  const same = await growDiskImage(s.vm, 'vda', 4 * MiB, s.noRequest);
  assert.equal(same.grown, false);
  assert.match(same.notes[0], /^vda already 4 MiB; the image is unchanged/);
});

test('host disk grow: shrinking, read-only disks, unknown disks and partial sectors are refused and change nothing', async (t) => {
  const s = setup(t);
  await assert.rejects(growDiskImage(s.vm, 'vda', MiB / 2, s.noRequest), { name: 'ConflictError', message: /^disk vda of VM "web" is 1 MiB \(1048576 bytes\); shrinking it to 524288 bytes is not supported \(it would cut off the guest.s data\): give at least 1 MiB$/ });
  await assert.rejects(growDiskImage(s.vm, 'vdb', 2 * MiB, s.noRequest), { name: 'ConflictError', message: /^disk vdb of VM "web" is read-only/ });
  await assert.rejects(growDiskImage(s.vm, 'vdc', 2 * MiB, s.noRequest), { name: 'NotFoundError', message: 'VM "web" has no disk "vdc" (it has vda, vdb)' });
  await assert.rejects(growDiskImage(s.vm, 'sda', 2 * MiB, s.noRequest), { name: 'NotFoundError' });
  await assert.rejects(growDiskImage(s.vm, 'vda', 2 * MiB + 1, s.noRequest), /whole 512-byte sectors/);
  assert.equal(fs.statSync(s.rw).size, MiB);
  assert.equal(fs.statSync(s.ro).size, MiB);
  assert.equal(diskIndex(s.vm, 'vdb'), 1);
});

test('host disk grow: the beforeGrow check (a tenant\'s quota) gets the bytes to add and refuses before anything changes', async (t) => {
  const s = setup(t);
  const asked: number[] = [];
  await assert.rejects(growDiskImage(s.vm, 'vda', 3 * MiB, s.noRequest, (add) => { asked.push(add); throw new Error('over quota'); }), /over quota/);
  assert.deepEqual(asked, [2 * MiB]);
  assert.equal(fs.statSync(s.rw).size, MiB);
  await growDiskImage(s.vm, 'vda', MiB, s.noRequest, () => { throw new Error('not asked when nothing grows'); });
});

test('host disk grow, offline: an image another program holds (python fcntl.lockf) is refused, naming the holder', async (t) => {
  const s = setup(t);
  const py = spawn('python3', ['-c', `import fcntl, sys; f = open(${JSON.stringify(s.rw)}, "r+"); fcntl.lockf(f, fcntl.LOCK_EX); print("locked", flush=True); sys.stdin.read()`], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => py.kill());
  await new Promise<void>((resolve, reject) => { py.stdout.once('data', () => resolve()); py.once('error', reject); });
  await assert.rejects(growDiskImage(s.vm, 'vda', 2 * MiB, s.noRequest), { name: 'ConflictError', message: new RegExp(`^disk vda of VM "web" cannot be grown: .*in use by another process.*pid ${py.pid}`) });
  assert.equal(fs.statSync(s.rw).size, MiB);
  py.stdin.end();
});

test('host disk grow, live: the VM process is asked (PUT /vm.resize-disk) and the host does not touch the file itself', async (t) => {
  const s = setup(t);
  const calls: unknown[][] = [];
  const g = await growDiskImage({ ...s.vm, state: 'running', live: true }, 'vda', 8 * MiB, async (...a) => { calls.push(a); return undefined; });
  assert.deepEqual(calls.map((c) => c.slice(0, 4)), [[s.vm.apiSock, 'PUT', '/vm.resize-disk', { id: 'vda', desired_size: 8 * MiB }]]);
  assert.equal(fs.statSync(s.rw).size, MiB, 'the VM process grows it, not the host');
  assert.deepEqual({ grown: g.grown, live: g.live }, { grown: true, live: true });
  assert.match(g.notes[0], /^vda grown from 1 MiB to 8 MiB; the running guest was told/);
});

test('host disk grow: what the guest answers is parsed strictly', () => {
  assert.deepEqual(parseGuestDisks('vda vessel-disk0 1048576 254:0\nvdb vessel-disk1 2048 254:16\nvdc  8 254:32\n'), [
    { device: 'vda', serial: 'vessel-disk0', sectors: 1048576, devno: '254:0' },
    { device: 'vdb', serial: 'vessel-disk1', sectors: 2048, devno: '254:16' },
    { device: 'vdc', serial: '', sectors: 8, devno: '254:32' },
  ]);
  for (const bad of ['vda;rm -rf / x 1 254:0', '../vda s 1 254:0', 'vda s -1 254:0', 'vda s 1 254', 'vda s 99999999999999999 254:0', 'sda s 1 8:0']) {
    assert.deepEqual(parseGuestDisks(bad), [], bad);
  }
  const mountinfo = [
    '20 25 0:19 / /proc rw,nosuid - proc proc rw',
    '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/root rw',
    '30 22 254:16 /sub /bind rw - ext4 /dev/vdb rw',
    '31 22 254:16 / /mnt/my\\040data rw - ext4 /dev/vdb rw',
  ].join('\n');
  assert.deepEqual(findMount(mountinfo, '254:0'), { mountPoint: '/', type: 'ext4' });
  assert.deepEqual(findMount(mountinfo, '254:16'), { mountPoint: '/mnt/my data', type: 'ext4' }, 'the whole file system, not a bind mount of a folder in it');
  assert.equal(findMount(mountinfo, '254:32'), null);
  assert.equal(parseDfBytes('Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/root 499656 30000 450000 6% /\n'), 499656 * 1024);
  assert.equal(parseDfBytes('Filesystem 1024-blocks\n/dev/root lots\n'), null);
  assert.equal(parseDfBytes(''), null);
});
