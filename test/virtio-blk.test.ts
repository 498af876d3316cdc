// virtio-blk and virtio-rng end to end: ext4 images made on the host with mke2fs, the default
// guest image booted through the CLI with `--disk img --disk img2,readonly`, the guest mounts,
// reads and writes them, and the host checks the result with debugfs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { BOOT_MARKER, ensureDefaultImage } from '../images/build-image.js';
import { BOOT_MS, COMMAND_MS, POWEROFF_MS, ShellSession, TEST_MS, VesselProcess } from './vessel-cli.js';

const running: VesselProcess[] = [];
after(() => { for (const vm of running) vm.kill(); });

function tool(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) assert.fail(`${cmd} could not be run (${r.error.message}): run \`bash test/setup.sh\` (installs e2fsprogs)`);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

function makeExt4(dir: string, name: string, files: Record<string, string>): string {
  const content = path.join(dir, `${name}-content`);
  fs.mkdirSync(content);
  for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(content, file), text);
  const img = path.join(dir, `${name}.img`);
  tool('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', content, img, '8M']);
  return img;
}

const sha256 = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

test('virtio-blk: the guest mounts a host ext4 image, reads it, writes to it; a readonly disk refuses writes; /dev/hwrng gives bytes', { timeout: TEST_MS }, async (t) => {
  await ensureDefaultImage({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-blk-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const img = makeExt4(dir, 'rw', { 'hello.txt': 'hello-from-the-host\n' });
  const roImg = makeExt4(dir, 'ro', { 'ro.txt': 'read-only-content\n' });
  const roHash = sha256(roImg);

  const vm = VesselProcess.cli(['run', '--append', 'console=ttyS0 root=/dev/vda', '--disk', img, '--disk', `${roImg},readonly`]);
  running.push(vm);
  const shell = new ShellSession(vm, BOOT_MARKER);
  await shell.waitForShell(BOOT_MS);

  const parts = await shell.run('cat /proc/partitions', COMMAND_MS);
  assert.match(parts, /\bvda$/m, `vda is there: ${parts}`);
  assert.match(parts, /^\s*\d+\s+\d+\s+8192 vdb$/m, `vdb is there with 8 MiB: ${parts}`);

  const read = await shell.run('mkdir -p /mnt && mount /dev/vda /mnt && cat /mnt/hello.txt', COMMAND_MS);
  assert.match(read, /^hello-from-the-host$/m, `the host's file reads back: ${read}`);
  const write = await shell.run('echo written-by-guest > /mnt/new.txt && sync && umount /mnt && echo write-rc=$?', COMMAND_MS);
  assert.match(write, /^write-rc=0$/m, `write, sync and umount succeeded: ${write}`);

  const ro = await shell.run('mkdir -p /mnt2 && mount -o ro /dev/vdb /mnt2 && cat /mnt2/ro.txt && umount /mnt2', COMMAND_MS);
  assert.match(ro, /^read-only-content$/m, `the readonly disk mounts read-only: ${ro}`);
  const roWrite = await shell.run('dd if=/dev/zero of=/dev/vdb bs=512 count=1 conv=fsync 2>&1; echo dd-rc=$?', COMMAND_MS);
  assert.match(roWrite, /^dd-rc=[1-9]\d*$/m, `writing the readonly disk fails: ${roWrite}`);
  t.diagnostic(`dd to the readonly disk: ${roWrite.trim().split('\n').join(' | ')}`);

  const rng = await shell.run('cat /dev/hwrng | head -c 16 | od -x', COMMAND_MS);
  assert.match(rng, /^0000000( [0-9a-f]{4}){8}$/m, `16 bytes from /dev/hwrng: ${rng}`);

  shell.sendLast('poweroff');
  const exit = await vm.waitExit(POWEROFF_MS);
  assert.equal(exit.code, 0, `poweroff makes vessel exit 0\n${vm.describe()}`);
  assert.doesNotMatch(vm.stdout, /Kernel panic|Oops|BUG:/);
  assert.doesNotMatch(vm.stderr, /needs reset/, `no virtio device failed: ${vm.stderr}`);

  const onHost = tool('debugfs', ['-R', 'cat /new.txt', img]);
  assert.equal(onHost, 'written-by-guest\n', 'the guest\'s write reached the image file');
  tool('e2fsck', ['-f', '-n', img]);
  assert.equal(sha256(roImg), roHash, 'the readonly image is unchanged');
  t.diagnostic(`virtio-blk: prompt at ${shell.promptSeconds.toFixed(1)} s, exit at ${exit.seconds.toFixed(1)} s`);
});

test('vessel run --disk with a missing file is a usage error (exit 2)', { timeout: 120_000 }, async () => {
  await ensureDefaultImage({ quiet: true });
  const vm = VesselProcess.cli(['run', '--disk', '/nonexistent/disk.img']);
  running.push(vm);
  const exit = await vm.waitExit(60_000);
  assert.equal(exit.code, 2, vm.describe());
  assert.match(vm.stderr, /^vessel: disk "\/nonexistent\/disk.img" does not exist$/m);
});

test('virtio-blk: data the guest synced survives the VMM being killed (flush is durable)', { timeout: TEST_MS }, async (t) => {
  await ensureDefaultImage({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-flush-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const img = makeExt4(dir, 'durable', { 'seed.txt': 'seed\n' });
  const token = `durable-${process.pid}-${Date.now()}`;

  const vm = VesselProcess.cli(['run', '--disk', img]);
  running.push(vm);
  const shell = new ShellSession(vm, BOOT_MARKER);
  await shell.waitForShell(BOOT_MS);
  const out = await shell.run(`mkdir -p /mnt && mount /dev/vda /mnt && echo ${token} > /mnt/token.txt && sync && echo sync-rc=$?`, COMMAND_MS);
  assert.match(out, /^sync-rc=0$/m, `write and sync succeeded: ${out}`);
  // No umount, no poweroff: the VMM dies right after the guest's sync returned.
  vm.kill();
  const exit = await vm.waitExit(30_000);
  assert.equal(exit.signal, 'SIGKILL', vm.describe());

  // The metadata may still be only in ext4's journal: replay it on a copy, as a mount would.
  const copy = path.join(dir, 'replayed.img');
  fs.copyFileSync(img, copy);
  const fsck = spawnSync('e2fsck', ['-f', '-y', copy], { encoding: 'utf8' });
  if (fsck.error) assert.fail(`e2fsck could not be run (${fsck.error.message}): run \`bash test/setup.sh\` (installs e2fsprogs)`);
  assert.ok(fsck.status === 0 || fsck.status === 1, `e2fsck replays the journal without uncorrectable errors (exit ${fsck.status}): ${fsck.stdout}${fsck.stderr}`);
  assert.equal(tool('debugfs', ['-R', 'cat /token.txt', copy]), `${token}\n`, 'the synced file is in the image after the kill');
});
