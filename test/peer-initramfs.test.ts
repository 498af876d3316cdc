// bench/peers.ts's guest initramfs (bench/lib/peer-initramfs.ts): read back with the real cpio
// tool, its /init checked with sh -n, and the standalone (i386-style) variant built around a real
// busybox (the default image's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { ensureDefaultImage } from '../images/build-image.js';
import { PEER_MARKER, PEER_PROGRAM, peerInitramfs } from '../bench/lib/peer-initramfs.js';

/** `cpio` over an uncompressed archive: the verbose listing, or one member's contents. */
function cpio(archive: Buffer, args: string[]): string {
  const r = spawnSync('cpio', [...args, '--quiet'], { input: archive, encoding: 'latin1', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `cpio ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

function member(archive: Buffer, name: string): string {
  return cpio(archive, ['-i', '--to-stdout', name]);
}

const PROGRAM = Buffer.from('\x7fELF pretend program');

test('peer initramfs on ttyS0: /init prints the marker and starts init; the program is executable', () => {
  const archive = peerInitramfs(PROGRAM, 'ttyS0');
  const init = member(archive, 'init');
  assert.match(init, new RegExp(`^echo ${PEER_MARKER}$`, 'm'));
  assert.match(init, /^exec \/bin\/busybox init$/m);
  assert.doesNotMatch(init, /insmod/, 'a UART console needs no module');
  assert.equal(spawnSync('sh', ['-n'], { input: init }).status, 0, '/init is valid shell');
  assert.equal(member(archive, 'etc/inittab'), 'ttyS0::respawn:-/bin/sh\n');
  assert.equal(member(archive, PEER_PROGRAM.slice(1)), PROGRAM.toString('latin1'));
  const listing = cpio(archive, ['-t', '-v']);
  assert.match(listing, new RegExp(`^-rwxr-xr-x .* ${PEER_PROGRAM.slice(1)}$`, 'm'));
  assert.doesNotMatch(listing, / bin\/busybox$/m, 'the riscv64 overlay reuses the default image\'s busybox');
});

test('peer initramfs on hvc0: virtio_mmio is loaded and /init moves to /dev/hvc0 before the marker', () => {
  const archive = peerInitramfs(PROGRAM, 'hvc0');
  const init = member(archive, 'init');
  const insmod = init.indexOf('insmod');
  const redirect = init.indexOf('exec </dev/hvc0 >/dev/hvc0 2>&1');
  const marker = init.indexOf(`echo ${PEER_MARKER}`);
  assert.ok(insmod >= 0 && redirect > insmod && marker > redirect, `order insmod < redirect < marker in:\n${init}`);
  assert.match(init, /virtio_mmio\.ko/);
  assert.equal(spawnSync('sh', ['-n'], { input: init }).status, 0, '/init is valid shell');
  assert.equal(member(archive, 'etc/inittab'), 'hvc0::respawn:-/bin/sh\n');
});

test('standalone peer initramfs: busybox, an applet symlink per applet, device nodes; a non-busybox is refused', async () => {
  const img = await ensureDefaultImage({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-peer-initramfs-'));
  try {
    const x = spawnSync('sh', ['-c', 'zcat "$1" | cpio -i --quiet --to-stdout bin/busybox > "$2"', 'sh', img.initrd, path.join(dir, 'busybox')]);
    assert.equal(x.status, 0, `extracting busybox from ${img.initrd} failed: ${x.stderr}`);
    const busybox = fs.readFileSync(path.join(dir, 'busybox'));
    const listing = cpio(peerInitramfs(PROGRAM, 'ttyS0', busybox), ['-t', '-v']);
    assert.match(listing, /^-rwxr-xr-x .* bin\/busybox$/m);
    assert.match(listing, /^lrwxrwxrwx .* bin\/sh -> busybox$/m);
    assert.match(listing, /^lrwxrwxrwx .* bin\/insmod -> busybox$/m);
    assert.match(listing, /^crw------- .* 5,\s+1 .* dev\/console$/m);
    assert.throws(() => peerInitramfs(PROGRAM, 'ttyS0', PROGRAM), /lists no applets/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
