// The guest image builder produces a RISC-V kernel Image and a gzip'd cpio initramfs with
// busybox, /init and the virtio/ext4 modules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

import { ensureDefaultImage, GUEST_MODULES, cpioNewc, busyboxApplets } from '../images/build-image.js';

test('default image: kernel is a RISC-V Image, initramfs holds busybox, /init and the modules', async () => {
  const img = await ensureDefaultImage({ quiet: true });
  assert.match(img.version, /riscv64/);

  const fd = fs.openSync(img.kernel, 'r');
  const head = Buffer.alloc(0x40);
  fs.readSync(fd, head, 0, head.length, 0);
  fs.closeSync(fd);
  assert.equal(head.toString('latin1', 0, 2), 'MZ', 'kernel starts with the PE stub "MZ"');
  assert.equal(head.toString('latin1', 0x38, 0x3c), 'RSC\x05', 'RISC-V Image magic at 0x38');

  const initrd = fs.readFileSync(img.initrd);
  assert.equal(initrd[0], 0x1f, 'initramfs is gzip');
  assert.equal(initrd[1], 0x8b, 'initramfs is gzip');

  const list = spawnSync('sh', ['-c', 'zcat "$1" | cpio -t --quiet', 'sh', img.initrd], {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  assert.equal(list.status, 0, `zcat | cpio -t failed: ${list.stderr}`);
  const files = new Set(list.stdout.split('\n').filter((l) => l));
  for (const f of ['init', 'bin/busybox', 'bin/sh', 'etc/inittab', 'dev/console']) {
    assert.ok(files.has(f), `initramfs contains ${f}`);
  }
  const init = spawnSync('sh', ['-c', 'zcat "$1" | cpio -i --quiet --to-stdout init', 'sh', img.initrd], { encoding: 'utf8' });
  assert.equal(init.status, 0, `extracting /init failed: ${init.stderr}`);
  assert.match(init.stdout, /exec switch_root \/newroot "\$rootinit"/, '/init can boot a root disk (root=)');
  assert.ok(fs.statSync(img.rootfs).size > 0, `the image has a root disk: ${img.rootfs}`);
  const names = [...files].map((f) => f.slice(f.lastIndexOf('/') + 1));
  for (const m of GUEST_MODULES) {
    assert.ok(names.includes(`${m}.ko`), `initramfs contains module ${m}.ko`);
  }
});

test('cpioNewc writes entries that cpio reads back', () => {
  const archive = cpioNewc([
    { kind: 'dir', path: 'a' },
    { kind: 'file', path: 'a/x', data: Buffer.from('hello\n'), mode: 0o755 },
    { kind: 'symlink', path: 'a/y', target: 'x' },
  ]);
  const r = spawnSync('cpio', ['-t', '-v', '--quiet'], { input: archive, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n').filter((l) => l);
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, /^d.* a$/);
  assert.match(lines[1]!, /^-rwxr-xr-x .* 6 .* a\/x$/);
  assert.match(lines[2]!, /^l.* a\/y -> x$/);
});

test('busyboxApplets reads the sorted applet table', () => {
  const names = ['[', '[[', 'acpid', 'ash', 'init', 'insmod', 'mount', 'poweroff', 'sh'];
  for (let i = 0; names.length < 60; i++) names.push(`zz${String(i).padStart(3, '0')}`);
  const bin = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0xa8]), Buffer.from(names.join('\0') + '\0\0\x01\x02', 'latin1')]);
  assert.deepEqual(busyboxApplets(bin), names);
  assert.deepEqual(busyboxApplets(Buffer.from('no table here')), []);
});
