// virtio-blk without a guest: requests built by hand in a GuestMemory and sent through the
// virtio-mmio transport against a temporary image file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { GuestMemory } from '../src/hw/memory.js';
import { VIRTQ_DESC_F_NEXT as NEXT, VIRTQ_DESC_F_WRITE as WRITE } from '../src/devices/virtio/queue.js';
import { INT_CONFIG_CHANGE, Reg, Status, VirtioMmio } from '../src/devices/virtio/mmio.js';
import { BlkFeature, BlkStatus, BlkType, VirtioBlk } from '../src/devices/virtio/blk.js';

const BASE = 0x8000_0000;
const DESC = BASE, AVAIL = BASE + 0x1000, USED = BASE + 0x2000;
const HDR = BASE + 0x3000, DATA = BASE + 0x4000, STATUS = BASE + 0x8000;
const QSIZE = 16;

function setup(opts: { readonly?: boolean; sectors?: number } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-blkdev-'));
  const file = path.join(dir, 'disk.img');
  const image = Buffer.alloc((opts.sectors ?? 16) * 512);
  for (let i = 0; i < image.length; i++) image[i] = (i * 7 + (i >> 9)) & 0xff;
  fs.writeFileSync(file, image);
  const blk = new VirtioBlk({ path: file, readonly: opts.readonly, serial: 'serial-1234' });
  const mem = new GuestMemory(BASE, 64 * 1024);
  const logs: string[] = [];
  const irq: boolean[] = [];
  const t = new VirtioMmio(mem, blk, { set: (l) => irq.push(l) }, (l) => logs.push(l));
  const w = (off: number, v: number) => t.write(off, 4, v);
  w(Reg.Status, Status.Acknowledge | Status.Driver);
  w(Reg.DriverFeaturesSel, 1); w(Reg.DriverFeatures, 1);
  w(Reg.Status, Status.Acknowledge | Status.Driver | Status.FeaturesOk);
  w(Reg.QueueNum, QSIZE);
  w(Reg.QueueDescLow, DESC); w(Reg.QueueDriverLow, AVAIL); w(Reg.QueueDeviceLow, USED);
  w(Reg.QueueReady, 1);
  w(Reg.Status, Status.Acknowledge | Status.Driver | Status.FeaturesOk | Status.DriverOk);
  let avail = 0;
  /**
   * Sends one request: header, data buffer of `len` bytes at DATA (device-writable for
   * IN/GET_ID) in one descriptor, or in descriptors of the lengths `pieces`, then status.
   */
  const request = (type: number, sector: bigint, len: number, deviceWrites: boolean, pieces = [len]): { status: number; used: number } => {
    mem.writeU32(HDR, type); mem.writeU32(HDR + 4, 0); mem.writeU64(HDR + 8, sector);
    mem.writeU8(STATUS, 0xff);
    const descs: [number, number, number][] = [[HDR, 16, 0]];
    let at = DATA;
    if (len > 0) for (const n of pieces) { descs.push([at, n, deviceWrites ? WRITE : 0]); at += n; }
    descs.push([STATUS, 1, WRITE]);
    descs.forEach(([addr, l, flags], i) => {
      const at = DESC + 16 * i;
      mem.writeU64(at, BigInt(addr)); mem.writeU32(at + 8, l);
      mem.writeU16(at + 12, flags | (i < descs.length - 1 ? NEXT : 0)); mem.writeU16(at + 14, i + 1);
    });
    mem.writeU16(AVAIL + 4 + 2 * (avail % QSIZE), 0);
    avail++;
    mem.writeU16(AVAIL + 2, avail);
    w(Reg.QueueNotify, 0);
    assert.equal(mem.readU16(USED + 2), avail, 'the request completed');
    return { status: mem.readU8(STATUS), used: mem.readU32(USED + 4 + 8 * ((avail - 1) % QSIZE) + 4) };
  };
  const cleanup = () => { blk.close(); fs.rmSync(dir, { recursive: true, force: true }); };
  return { blk, t, mem, file, image, request, logs, irq, cleanup };
}

test('virtio-blk: capacity, features, IN, OUT, FLUSH, GET_ID', () => {
  const s = setup();
  try {
    assert.equal(s.t.read(Reg.Config, 4), 16, 'capacity in sectors (low word)');
    assert.equal(s.t.read(Reg.Config + 4, 4), 0);
    assert.equal(s.t.read(Reg.Config + 20, 4), 512, 'blk_size');
    assert.ok(s.blk.features & (1n << BigInt(BlkFeature.FLUSH)));
    assert.equal(s.blk.features & (1n << BigInt(BlkFeature.RO)), 0n);

    let r = s.request(BlkType.IN, 2n, 1024, true);
    assert.deepEqual(r, { status: BlkStatus.OK, used: 1025 });
    assert.deepEqual(Buffer.from(s.mem.slice(DATA, 1024)), s.image.subarray(1024, 2048));

    s.mem.write(DATA, new Uint8Array(512).fill(0xab));
    r = s.request(BlkType.OUT, 5n, 512, false);
    assert.equal(r.status, BlkStatus.OK);
    assert.equal(r.used, 1);
    r = s.request(BlkType.FLUSH, 0n, 0, false);
    assert.equal(r.status, BlkStatus.OK);
    const onDisk = fs.readFileSync(s.file);
    assert.ok(onDisk.subarray(5 * 512, 6 * 512).every((b) => b === 0xab));
    assert.deepEqual(onDisk.subarray(0, 5 * 512), s.image.subarray(0, 5 * 512), 'nothing else changed');

    r = s.request(BlkType.GET_ID, 0n, 20, true);
    assert.equal(r.status, BlkStatus.OK);
    assert.equal(Buffer.from(s.mem.slice(DATA, 20)).toString('latin1'), 'serial-1234'.padEnd(20, '\0'));
    assert.deepEqual(s.logs, []);
  } finally { s.cleanup(); }
});

test('virtio-blk: a request of several buffers is read and written in order, across their uneven borders', () => {
  const s = setup();
  try {
    const pieces = [100, 1000, 948, 512, 1536];
    let r = s.request(BlkType.IN, 3n, 4096, true, pieces);
    assert.deepEqual(r, { status: BlkStatus.OK, used: 4097 });
    assert.deepEqual(Buffer.from(s.mem.slice(DATA, 4096)), s.image.subarray(3 * 512, 3 * 512 + 4096));

    const data = Buffer.alloc(4096);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13 + 5) & 0xff;
    s.mem.write(DATA, data);
    r = s.request(BlkType.OUT, 8n, 4096, false, pieces);
    assert.deepEqual(r, { status: BlkStatus.OK, used: 1 });
    const onDisk = fs.readFileSync(s.file);
    assert.deepEqual(onDisk.subarray(8 * 512, 8 * 512 + 4096), data);
    assert.deepEqual(onDisk.subarray(0, 8 * 512), s.image.subarray(0, 8 * 512), 'nothing before it changed');
    // The host cut the image short under the running disk: what lies past its end reads as zeros.
    fs.truncateSync(s.file, 9 * 512 + 100);
    s.mem.write(DATA, new Uint8Array(2048).fill(0xee));
    r = s.request(BlkType.IN, 8n, 2048, true, [700, 1348]);
    assert.equal(r.status, BlkStatus.OK);
    assert.deepEqual(Buffer.from(s.mem.slice(DATA, 612)), onDisk.subarray(8 * 512, 8 * 512 + 612));
    assert.ok(s.mem.slice(DATA + 612, 2048 - 612).every((b) => b === 0), 'zeros past the end, none of the old 0xee');
  } finally { s.cleanup(); }
});

test('virtio-blk: beyond capacity is IOERR, unknown types UNSUPP, WRITE_ZEROES zeroes', () => {
  const s = setup();
  try {
    assert.equal(s.request(BlkType.IN, 15n, 1024, true).status, BlkStatus.IOERR, 'read runs past the end');
    assert.equal(s.request(BlkType.IN, 1n << 62n, 512, true).status, BlkStatus.IOERR, 'huge sector');
    assert.equal(s.request(BlkType.OUT, 16n, 512, false).status, BlkStatus.IOERR, 'write at capacity');
    assert.equal(s.request(BlkType.IN, 0n, 100, true).status, BlkStatus.IOERR, 'not a whole sector');
    assert.equal(s.request(99, 0n, 0, false).status, BlkStatus.UNSUPP);
    // WRITE_ZEROES of sectors 1..2: one 16-byte segment {sector, num_sectors, flags}.
    s.mem.writeU64(DATA, 1n); s.mem.writeU32(DATA + 8, 2); s.mem.writeU32(DATA + 12, 0);
    assert.equal(s.request(BlkType.WRITE_ZEROES, 0n, 16, false).status, BlkStatus.OK);
    const onDisk = fs.readFileSync(s.file);
    assert.ok(onDisk.subarray(512, 3 * 512).every((b) => b === 0));
    assert.deepEqual(onDisk.subarray(3 * 512), s.image.subarray(3 * 512));
    assert.deepEqual(s.logs, [], 'bad requests are answered, not transport failures');
  } finally { s.cleanup(); }
});

test('virtio-blk: a readonly disk offers RO and fails writes with IOERR', () => {
  const s = setup({ readonly: true });
  try {
    assert.ok(s.blk.features & (1n << BigInt(BlkFeature.RO)));
    assert.equal(s.request(BlkType.IN, 0n, 512, true).status, BlkStatus.OK);
    assert.equal(s.request(BlkType.OUT, 0n, 512, false).status, BlkStatus.IOERR);
    assert.deepEqual(fs.readFileSync(s.file), s.image);
  } finally { s.cleanup(); }
});

test('virtio-blk: resize() updates capacity and signals a config change', () => {
  const s = setup();
  try {
    fs.truncateSync(s.file, 32 * 512);
    const gen = s.t.read(Reg.ConfigGeneration, 4);
    s.blk.resize();
    assert.equal(s.t.read(Reg.Config, 4), 32);
    assert.equal(s.t.read(Reg.ConfigGeneration, 4), gen + 1);
    assert.equal(s.t.read(Reg.InterruptStatus, 4) & INT_CONFIG_CHANGE, INT_CONFIG_CHANGE);
  } finally { s.cleanup(); }
});

test('virtio-blk: grow() extends the image, updates the capacity and raises a config-change interrupt; the new sectors read and write, the old ones are intact', () => {
  const s = setup();
  try {
    const gen = s.t.read(Reg.ConfigGeneration, 4);
    assert.equal(s.request(BlkType.IN, 16n, 512, true).status, BlkStatus.IOERR, 'sector 16 is beyond the 16-sector disk');
    s.t.write(Reg.InterruptACK, 4, s.t.read(Reg.InterruptStatus, 4)); // that request's used-buffer interrupt
    s.irq.length = 0;
    // Past 2^32 sectors (2 TiB + 1 MiB): the capacity's high word changes too. A sparse hole.
    const bytes = 2 ** 41 + 2 ** 20;
    s.blk.grow(bytes);
    assert.equal(fs.statSync(s.file).size, bytes, 'the image file was extended');
    assert.equal(s.t.read(Reg.Config, 4), (bytes / 512) % 2 ** 32, 'capacity, low word');
    assert.equal(s.t.read(Reg.Config + 4, 4), Math.floor(bytes / 512 / 2 ** 32), 'capacity, high word');
    assert.equal(s.t.read(Reg.ConfigGeneration, 4), gen + 1, 'config_generation bumped');
    assert.equal(s.t.read(Reg.InterruptStatus, 4) & INT_CONFIG_CHANGE, INT_CONFIG_CHANGE, 'ConfigChange in InterruptStatus');
    assert.deepEqual(s.irq, [true], 'the interrupt line went up');
    s.t.write(Reg.InterruptACK, 4, INT_CONFIG_CHANGE);
    assert.equal(s.t.read(Reg.InterruptStatus, 4), 0);
    assert.deepEqual(s.irq, [true, false], 'the driver\'s acknowledgement lowers it');

    // The grown part reads as zeros and takes writes; what was there before is unchanged.
    let r = s.request(BlkType.IN, 16n, 512, true);
    assert.equal(r.status, BlkStatus.OK);
    assert.ok(s.mem.slice(DATA, 512).every((b) => b === 0));
    s.mem.write(DATA, new Uint8Array(512).fill(0x5a));
    r = s.request(BlkType.OUT, BigInt(bytes / 512 - 1), 512, false);
    assert.equal(r.status, BlkStatus.OK, 'the last sector of the grown disk');
    const fd = fs.openSync(s.file, 'r');
    try {
      const head = Buffer.alloc(s.image.length);
      fs.readSync(fd, head, 0, head.length, 0);
      assert.deepEqual(head, s.image, 'the old sectors are intact');
      const last = Buffer.alloc(512);
      fs.readSync(fd, last, 0, 512, bytes - 512);
      assert.ok(last.every((b) => b === 0x5a));
    } finally { fs.closeSync(fd); }
    assert.deepEqual(s.logs, []);
  } finally { s.cleanup(); }
});

test('virtio-blk: grow() refuses shrinking, sizes that are not whole sectors and read-only disks, and changes nothing then', () => {
  const s = setup();
  const ro = setup({ readonly: true });
  try {
    const gen = s.t.read(Reg.ConfigGeneration, 4);
    assert.throws(() => s.blk.grow(8 * 512), /the image has 8192 bytes; shrinking it to 4096 is refused/);
    assert.throws(() => s.blk.grow(16 * 512 + 100), /not a whole number of 512-byte sectors/);
    assert.throws(() => s.blk.grow(-512), /not a whole number/);
    assert.throws(() => ro.blk.grow(32 * 512), /is read-only/);
    assert.equal(fs.statSync(s.file).size, 16 * 512);
    assert.equal(fs.statSync(ro.file).size, 16 * 512);
    assert.equal(s.t.read(Reg.Config, 4), 16);
    assert.equal(s.t.read(Reg.ConfigGeneration, 4), gen, 'no config change');
    assert.equal(s.t.read(Reg.InterruptStatus, 4), 0);
    assert.deepEqual(s.irq.filter((l) => l), [], 'no interrupt');
    // The same size again is no change to the file, but the driver is told (a re-read).
    s.blk.grow(16 * 512);
    assert.equal(s.t.read(Reg.ConfigGeneration, 4), gen + 1);
  } finally { s.cleanup(); ro.cleanup(); }
});

test('virtio-blk: a resize before DRIVER_OK bumps config_generation but raises no interrupt (virtio 1.2 §2.1.2)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-blkdev-'));
  const file = path.join(dir, 'disk.img');
  fs.writeFileSync(file, Buffer.alloc(16 * 512));
  const blk = new VirtioBlk({ path: file });
  try {
    const irq: boolean[] = [];
    const t = new VirtioMmio(new GuestMemory(BASE, 64 * 1024), blk, { set: (l) => irq.push(l) }, () => {});
    t.write(Reg.Status, 4, Status.Acknowledge | Status.Driver);
    blk.grow(64 * 512);
    assert.equal(t.read(Reg.Config, 4), 64, 'the driver reads the new capacity when it gets to the config space');
    assert.equal(t.read(Reg.ConfigGeneration, 4), 1);
    assert.equal(t.read(Reg.InterruptStatus, 4), 0);
    assert.deepEqual(irq.filter((l) => l), []);
  } finally { blk.close(); fs.rmSync(dir, { recursive: true, force: true }); }
});
