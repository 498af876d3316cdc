// Snapshot and restore of a real booted guest through the VMM API, with one boot: a shell loop
// counts on the serial console and writes to a file it holds open; the VM is paused and
// snapshotted, its VMM killed, and a fresh `vessel vmm` loads the snapshot: the count continues
// from where it stopped (not from 1), the shell answers, the open file keeps growing. Corrupted,
// truncated, wrong-version and mismatched-memory snapshots are refused with precise 400s, and the
// refusing VMM can still load the good one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { ensureDefaultImage } from '../images/build-image.js';
import { SNAPSHOT_HEADER_BYTES, type MemoryChunk } from '../src/vmm/snapshot.js';
import { api, faultOf, startVmm, tempDir } from './vmm-client.js';
import { BOOT_MS, COMMAND_MS, ShellSession, TEST_MS, type VesselProcess } from './vessel-cli.js';

const MARKER = 'VESSEL-INIT-OK';

/** Every "COUNT n" the loop printed from console offset `from`. */
function counts(vm: VesselProcess, from = 0): number[] {
  return [...vm.stdout.slice(from).matchAll(/COUNT (\d+)/g)].map((m) => Number(m[1]));
}

test('vmm snapshot: a paused guest is saved, a fresh VMM restores it and the guest continues; bad snapshots are refused', { timeout: TEST_MS }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = tempDir(t, 'vessel-vmm-snap-');
  const first = await startVmm(dir);
  t.after(() => first.vmm.kill());
  const put = async (sock: string, url: string, body: unknown, method = 'PUT'): Promise<void> => {
    const r = await api(sock, method, url, body);
    assert.equal(r.status, 204, `${method} ${url}: ${r.text}`);
  };
  const disk = path.join(dir, 'disk.img');
  fs.writeFileSync(disk, Buffer.alloc(1 << 20, 0x5a));
  // Two harts, each on a thread of its own: pause parks both, the snapshot holds both, the restore restarts both.
  await put(first.sock, '/machine-config', { vcpu_count: 2, mem_size_mib: 128 });
  await put(first.sock, '/boot-source', { kernel_image_path: image.kernel, initrd_path: image.initrd, boot_args: 'console=ttyS0' });
  await put(first.sock, '/drives/data', { drive_id: 'data', path_on_host: disk, is_root_device: false });
  await put(first.sock, '/network-interfaces/eth0', { iface_id: 'eth0', vessel_user_network: {} });
  await put(first.sock, '/entropy', {});
  await put(first.sock, '/actions', { action_type: 'InstanceStart' });
  const shell = new ShellSession(first.vmm, MARKER);
  await shell.waitForShell(BOOT_MS);
  await shell.run('dmesg -n 1');
  await shell.run('exec 3>/tmp/f');
  const loopAt = first.vmm.stdout.length;
  first.vmm.send('i=0; while :; do i=$((i+1)); echo "N=$i" >&3; echo "COUNT $i"; sleep 0.2; done &\n');
  await first.vmm.waitFor(/COUNT 5\r?\n/, loopAt, COMMAND_MS);

  const snap = path.join(dir, 'vm.snap');
  const mem = path.join(dir, 'vm.mem');
  assert.match(faultOf(await api(first.sock, 'PUT', '/snapshot/create', { snapshot_path: snap, mem_file_path: mem })),
    /^PUT \/snapshot\/create: the VM must be paused first .*it is Running$/);
  await put(first.sock, '/vm', { state: 'Paused' }, 'PATCH');
  const t0 = performance.now();
  await put(first.sock, '/snapshot/create', { snapshot_type: 'Full', snapshot_path: snap, mem_file_path: mem });
  t.diagnostic(`snapshot of a 128 MiB guest written in ${(performance.now() - t0).toFixed(0)} ms (request to reply)`);
  const seen = counts(first.vmm, loopAt);
  const lastBefore = seen[seen.length - 1];
  assert.deepEqual(seen, Array.from({ length: lastBefore }, (_, i) => i + 1), 'the loop counted 1, 2, 3, ... before the pause');
  const memStat = fs.statSync(mem);
  assert.equal(memStat.size, 128 << 20, 'the memory file has the size of RAM');
  assert.ok(memStat.blocks * 512 < memStat.size, `zero pages are holes: ${memStat.blocks * 512} bytes allocated of ${memStat.size}`);
  t.diagnostic(`memory file: ${(memStat.blocks * 512 / 2 ** 20).toFixed(1)} MiB allocated of 128 MiB`);
  first.vmm.kill();
  await first.vmm.exited;

  // A fresh VMM; its console on stdout, like the first.
  const dir2 = tempDir(t, 'vessel-vmm-snap2-');
  const second = await startVmm(dir2);
  t.after(() => second.vmm.kill());
  const load = (snapshot: string, memory = mem): Promise<string> =>
    api(second.sock, 'PUT', '/snapshot/load', { snapshot_path: snapshot, mem_backend: { backend_type: 'File', backend_path: memory }, resume_vm: true }).then(faultOf);
  const good = fs.readFileSync(snap);
  const variant = (name: string, data: Buffer): string => { const p = path.join(dir2, name); fs.writeFileSync(p, data); return p; };
  const flipped = Buffer.from(good); flipped[SNAPSHOT_HEADER_BYTES + 100] ^= 0x20;
  const p1 = variant('flipped.snap', flipped);
  assert.equal(await load(p1), `PUT /snapshot/load: snapshot file "${p1}" is corrupted: the SHA-256 of its state does not match its header`);
  const p2 = variant('short.snap', good.subarray(0, good.length - 10));
  assert.equal(await load(p2), `PUT /snapshot/load: snapshot file "${p2}" is truncated: its header announces ${good.length - SNAPSHOT_HEADER_BYTES} bytes of state, the file has ${good.length - SNAPSHOT_HEADER_BYTES - 10}`);
  const p3 = variant('header.snap', good.subarray(0, 20));
  assert.equal(await load(p3), `PUT /snapshot/load: snapshot file "${p3}" is truncated: 20 bytes, shorter than the 64-byte header`);
  const v3 = Buffer.from(good); v3.writeUInt32LE(3, 8);
  const p4 = variant('v3.snap', v3);
  assert.equal(await load(p4), `PUT /snapshot/load: snapshot file "${p4}" has snapshot format version 3; this Vessel reads versions 1 and 2`);
  const magic = Buffer.from(good); magic.write('NOTASNAP', 0, 'latin1');
  const p5 = variant('magic.snap', magic);
  assert.equal(await load(p5), `PUT /snapshot/load: snapshot file "${p5}" is not a Vessel snapshot (no "VSSLSNAP" magic)`);
  const smallMem = variant('small.mem', Buffer.alloc(4096));
  assert.equal(await load(snap, smallMem), `PUT /snapshot/load: memory file "${smallMem}" has 4096 bytes, but the snapshot's guest has 134217728 bytes of RAM`);
  const otherMem = path.join(dir2, 'other.mem');
  fs.copyFileSync(mem, otherMem);
  // One byte changed in a non-zero page the state file lists (the load reads only those).
  const chunk = (JSON.parse(good.subarray(SNAPSHOT_HEADER_BYTES).toString('utf8')) as { memory: { chunks: MemoryChunk[] } }).memory.chunks[3];
  const bits = Buffer.from(chunk.pages, 'base64');
  const page = Array.from({ length: bits.length * 8 }, (_, p) => p).find((p) => bits[p >> 3] & (1 << (p & 7))) as number;
  const byteAt = chunk.offset + page * 4096 + 7;
  const fd = fs.openSync(otherMem, 'r+'); fs.writeSync(fd, Buffer.from([fs.readFileSync(mem).subarray(byteAt, byteAt + 1)[0] ^ 1]), 0, 1, byteAt); fs.closeSync(fd);
  assert.equal(await load(snap, otherMem), `PUT /snapshot/load: memory file "${otherMem}" does not hold the memory this snapshot was taken with: the pages of bytes 0x${chunk.offset.toString(16)}-0x${(chunk.offset + (2 << 20) - 1).toString(16)} differ (SHA-256 mismatch)`);
  assert.equal(((await api(second.sock, 'GET', '/')).body as { state: string }).state, 'Not started', 'refused loads leave the VMM fresh');

  await put(second.sock, '/logger', { level: 'Info' }); // on stderr: "snapshot loaded" with what the memory file took
  const restoreFrom = second.vmm.stdout.length;
  const t1 = performance.now();
  await put(second.sock, '/snapshot/load', { snapshot_path: snap, mem_backend: { backend_type: 'File', backend_path: mem }, resume_vm: true });
  t.diagnostic(`snapshot of a 128 MiB guest loaded in ${(performance.now() - t1).toFixed(0)} ms (request to reply)`);
  const loaded = /"memory_ms":(\d+),"memory_bytes_read":(\d+)/.exec(second.vmm.stderr);
  assert.ok(loaded && Number(loaded[2]) <= memStat.blocks * 512, `the load read the non-zero pages, not all of RAM: ${loaded?.[2]} bytes (${memStat.blocks * 512} allocated)`);
  t.diagnostic(`of which the memory file ${loaded[1]} ms`);
  assert.equal(((await api(second.sock, 'GET', '/')).body as { state: string }).state, 'Running');
  assert.match(await load(snap), /^PUT \/snapshot\/load: a snapshot can only be loaded into a fresh VMM; the VM is already started$/);
  const config = (await api(second.sock, 'GET', '/vm/config')).body as { drives: { drive_id: string }[]; 'machine-config': { mem_size_mib: number } };
  assert.equal(config.drives[0].drive_id, 'data', 'the restored VM has the snapshot\'s configuration');
  assert.equal(config['machine-config'].mem_size_mib, 128);

  // The loop continues where it stopped.
  await second.vmm.waitFor(new RegExp(`COUNT ${lastBefore + 3}\r?\n`), restoreFrom, COMMAND_MS);
  const after = counts(second.vmm, restoreFrom);
  assert.ok(after[0] === lastBefore + 1 || after[0] === lastBefore, `the count continues from ${lastBefore}, got ${after.slice(0, 5).join(', ')}`);
  assert.deepEqual(after.slice(0, 3), [after[0], after[0] + 1, after[0] + 2], 'and keeps counting one by one');
  // The shell answers; the file it holds open (fd 3) got the new lines.
  const at = second.vmm.stdout.length;
  second.vmm.send('echo SHELL-$((6*7)) FILE-$(tail -n 1 /tmp/f)\n');
  // Up to the line's end: the console may deliver "N=1" and "0" apart (the harts' threads flush
  // output after each device write), and the number must be whole.
  const m = await second.vmm.waitFor(/SHELL-42 FILE-N=(\d+)\r?\n/, at, COMMAND_MS);
  const fileCount = Number(/FILE-N=(\d+)/.exec(second.vmm.stdout.slice(m.index, m.end))?.[1]);
  assert.ok(fileCount > lastBefore, `the open file kept growing after the restore (last line N=${fileCount}, ${lastBefore} before the pause)`);
  // The disk is served again: the guest reads it through the restored queue.
  const at2 = second.vmm.stdout.length;
  second.vmm.send('echo DISK-$(od -An -tx1 -N2 /dev/vda | tr -d " ")\n');
  await second.vmm.waitFor('DISK-5a5a', at2, COMMAND_MS);
});
