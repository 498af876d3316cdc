// Property tests for virtio-blk, virtio-console and virtio-rng without a guest: random and
// adversarial descriptor tables, avail rings, notifies and resets are fed through the real
// virtio-mmio transport (as test/virtio-net-device.test.ts does for virtio-net). Each property
// checks that the host survives, that the device writes guest RAM only where a chain handed it a
// device-writable buffer (or its used ring), and that a reset brings a broken device back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { GuestMemory } from '../src/hw/memory.js';
import { VIRTQ_DESC_F_INDIRECT as INDIRECT, VIRTQ_DESC_F_NEXT as NEXT, VIRTQ_DESC_F_WRITE as WRITE, VirtQueue, type DescriptorChain } from '../src/devices/virtio/queue.js';
import { Reg, Status, VirtioMmio, type VirtioDevice } from '../src/devices/virtio/mmio.js';
import { BlkStatus, BlkType, VirtioBlk } from '../src/devices/virtio/blk.js';
import { RECEIVEQ, TRANSMITQ, VirtioConsole } from '../src/devices/virtio/console.js';
import { VirtioRng } from '../src/devices/virtio/rng.js';

const BASE = 0x8000_0000;
const RAM = 64 * 1024;
const QSIZE = 16;
const RUNS = 300;
/** Ring addresses of queue `q` (at most two queues). */
const rings = (q: number) => ({ desc: BASE + 0x400 * q, avail: BASE + 0x800 + 0x100 * q, used: BASE + 0xc00 + 0x100 * q });
const USED_RING_BYTES = 6 + 8 * QSIZE;
/** The one indirect table an INDIRECT descriptor inside RAM may name, and how far it may reach. */
const INDIRECT_TABLE = BASE + 0x1000;
const INDIRECT_REACH = 0x800;
/** Buffers of plausible chains live from here to the end of RAM. */
const BUFFERS = BASE + 0x2000;

interface Desc { addr: bigint; len: number; flags: number; next: number }

/** Anything at all: addresses anywhere in 64 bits or at RAM's edges, any length, any flags. */
const adversarialDesc: fc.Arbitrary<Desc> = fc.record({
  addr: fc.oneof(
    fc.integer({ min: 0, max: RAM - 1 }).map((o) => BigInt(BASE + o)),
    fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    fc.constantFrom(BigInt(BASE), BigInt(BASE + RAM - 1), BigInt(BASE + RAM), BigInt(BASE - 1), BigInt(INDIRECT_TABLE), 2n ** 53n + BigInt(BASE)),
  ),
  len: fc.oneof(fc.integer({ min: 0, max: 2048 }), fc.constantFrom(0, 1, 15, 16, 512, RAM, RAM + 1, 0xffff_ffff), fc.integer({ min: 0, max: 0xffff_ffff })),
  flags: fc.integer({ min: 0, max: 7 }),
  next: fc.integer({ min: 0, max: QSIZE + 1 }),
}).map((d) => {
  // An indirect table inside RAM is always INDIRECT_TABLE, whose contents the property knows:
  // a table anywhere else would be read from arbitrary bytes the allowed-writes set cannot see.
  if (!(d.flags & INDIRECT) || d.addr < BigInt(BASE) || d.addr >= BigInt(BASE + RAM)) return d;
  return { ...d, addr: BigInt(INDIRECT_TABLE), len: d.len % INDIRECT_REACH };
});
/** What a driver might post, give or take: a buffer in the buffer area, no INDIRECT. */
const plausibleDesc = (writeWeight: number): fc.Arbitrary<Desc> => fc.record({
  addr: fc.integer({ min: BUFFERS - BASE, max: RAM - 2048 }).map((o) => BigInt(BASE + o)),
  len: fc.oneof(fc.integer({ min: 0, max: 2048 }), fc.constantFrom(1, 16, 512)),
  flags: fc.oneof({ weight: writeWeight, arbitrary: fc.constantFrom(WRITE, WRITE | NEXT) }, { weight: 1, arbitrary: fc.constantFrom(0, NEXT) }),
  next: fc.integer({ min: 0, max: QSIZE - 1 }),
});
const descArb = (writeWeight: number) => fc.oneof({ arbitrary: plausibleDesc(writeWeight), weight: 10 }, { arbitrary: adversarialDesc, weight: 1 });
/** The avail index the driver publishes: mostly the number of entries it wrote (null), sometimes anything. */
const availIdxArb = fc.oneof({ weight: 10, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) });
/** Avail ring entries (mostly valid heads) and the avail index (mostly their count, sometimes anything). */
const availArb = fc.record({
  heads: fc.array(fc.oneof({ arbitrary: fc.integer({ min: 0, max: QSIZE - 1 }), weight: 20 }, fc.constant(QSIZE), fc.constant(0xffff)), { maxLength: QSIZE }),
  idx: availIdxArb,
});
type Avail = { heads: number[]; idx: number | null };
const featuresArb = fc.record({ indirect: fc.boolean(), eventIdx: fc.boolean() });
type Features = { indirect: boolean; eventIdx: boolean };

/**
 * A device behind a VirtioMmio in a 64 KiB RAM filled with a pattern in which no 32-bit word is
 * zero (so a descriptor read from stray bytes always points outside RAM).
 */
function rig(dev: VirtioDevice, features: Features) {
  const mem = new GuestMemory(BASE, RAM);
  for (let i = 0; i < RAM; i += 4) mem.view.setUint32(i, Math.imul(i + 1, 0x9e3779b1) | 0x8000_0000, true);
  const logs: string[] = [];
  const t = new VirtioMmio(mem, dev, { set: () => {} }, (l) => logs.push(l));
  const w = (off: number, v: number) => t.write(off, 4, v);
  const writeTable = (base: number, list: Desc[]) => list.forEach((d, i) => {
    mem.writeU64(base + 16 * i, d.addr); mem.writeU32(base + 16 * i + 8, d.len);
    mem.writeU16(base + 16 * i + 12, d.flags); mem.writeU16(base + 16 * i + 14, d.next);
  });
  const writeAvail = (q: number, a: Avail) => {
    a.heads.forEach((h, n) => mem.writeU16(rings(q).avail + 4 + 2 * (n % QSIZE), h));
    mem.writeU16(rings(q).avail + 2, a.idx ?? a.heads.length);
  };
  /** What a driver does after a reset: features, then every queue at its ring addresses, used rings zeroed. */
  const bringUp = (f: Features = features) => {
    w(Reg.Status, 0);
    w(Reg.Status, Status.Acknowledge | Status.Driver);
    w(Reg.DriverFeaturesSel, 0); w(Reg.DriverFeatures, (f.indirect ? 1 << 28 : 0) | (f.eventIdx ? 1 << 29 : 0));
    w(Reg.DriverFeaturesSel, 1); w(Reg.DriverFeatures, 1);
    w(Reg.Status, Status.Acknowledge | Status.Driver | Status.FeaturesOk);
    for (let q = 0; q < dev.queueCount; q++) {
      mem.bytes.fill(0, rings(q).used - BASE, rings(q).used - BASE + USED_RING_BYTES);
      w(Reg.QueueSel, q); w(Reg.QueueNum, QSIZE);
      w(Reg.QueueDescLow, rings(q).desc); w(Reg.QueueDriverLow, rings(q).avail); w(Reg.QueueDeviceLow, rings(q).used);
      w(Reg.QueueReady, 1);
    }
    w(Reg.Status, Status.Acknowledge | Status.Driver | Status.FeaturesOk | Status.DriverOk);
  };
  const needsReset = () => (t.read(Reg.Status, 4) & Status.DeviceNeedsReset) !== 0;
  const usedIdx = (q: number) => mem.readU16(rings(q).used + 2);
  const usedEntry = (q: number, n: number) => ({ id: mem.readU32(rings(q).used + 4 + 8 * (n % QSIZE)), len: mem.readU32(rings(q).used + 8 + 8 * (n % QSIZE)) });
  return { mem, t, w, logs, writeTable, writeAvail, bringUp, needsReset, usedIdx, usedEntry };
}

/** How many device-writable descriptors (of `lists`, inside RAM) cover each byte of RAM. */
function writableCoverage(mem: GuestMemory, lists: Desc[][]): Uint8Array {
  const cover = new Uint8Array(RAM);
  for (const d of lists.flat()) {
    const addr = Number(d.addr);
    if (!(d.flags & WRITE) || !mem.contains(addr, Math.min(d.len, RAM))) continue;
    for (let i = addr - BASE; i < Math.min(RAM, addr - BASE + d.len); i++) cover[i]++;
  }
  return cover;
}

/** Fails on the first byte that changed although neither a writable buffer nor a used ring covers it. */
function assertOnlyAllowedWrites(mem: GuestMemory, before: Uint8Array, cover: Uint8Array, queueCount: number): void {
  const allowed = Uint8Array.from(cover, (c) => (c > 0 ? 1 : 0));
  for (let q = 0; q < queueCount; q++) allowed.fill(1, rings(q).used - BASE, rings(q).used - BASE + USED_RING_BYTES);
  for (let i = 0; i < RAM; i++) {
    if (!allowed[i] && mem.bytes[i] !== before[i]) assert.fail(`byte at 0x${(BASE + i).toString(16)} changed outside the writable buffers and used rings`);
  }
}

/** True when no writable buffer overlaps [addr, addr+len) (clipped to RAM). */
function uncovered(cover: Uint8Array, addr: number, len: number): boolean {
  const from = Math.max(0, addr - BASE), to = Math.min(RAM, addr - BASE + len);
  for (let i = from; i < to; i++) if (cover[i]) return false;
  return true;
}

/**
 * True when no writable buffer overlaps what the device reads to find its chains: the descriptor
 * tables, the available rings and the indirect table. Otherwise the device's own (allowed) writes
 * rewrite the chains under it mid-run, and the buffers it may write are no longer the ones worked
 * out before the run; such runs are discarded with fc.pre (they are rare).
 */
function chainsStayPut(cover: Uint8Array, queueCount: number): boolean {
  for (let q = 0; q < queueCount; q++) {
    if (!uncovered(cover, rings(q).desc, 16 * QSIZE) || !uncovered(cover, rings(q).avail, 6 + 2 * QSIZE)) return false;
  }
  return uncovered(cover, INDIRECT_TABLE, INDIRECT_REACH);
}

type Op = { kind: 'notify'; queue: number } | { kind: 'reset' } | { kind: 'input'; bytes: Uint8Array };
const opsArb = (queueCount: number, input = false) => fc.array(fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: queueCount }).map((queue): Op => ({ kind: 'notify', queue })) },
  { weight: 1, arbitrary: fc.constant<Op>({ kind: 'reset' }) },
  { weight: input ? 4 : 0, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 600 }).map((bytes): Op => ({ kind: 'input', bytes })) },
), { maxLength: 6 });

/**
 * The only lines a device may log are NEEDS_RESET lines, one per driver session at most (the
 * device stays silent until the driver resets it); a broken device has logged why.
 */
function assertResetLines(logs: string[], ops: Op[], broken: boolean): void {
  for (const l of logs) assert.match(l, /; device needs reset$/);
  assert.ok(logs.length <= ops.filter((o) => o.kind === 'reset').length + 1, `${logs.length} NEEDS_RESET lines`);
  if (broken) assert.ok(logs.length > 0, 'NEEDS_RESET without a log line');
}

/** Asserts every outcome was reached by at least one run, so the property could have failed. */
function assertAllSeen(name: string, seen: Record<string, number>): void {
  console.log(`${name} outcomes over ${RUNS} runs: ${JSON.stringify(seen)}`);
  for (const [outcome, runs] of Object.entries(seen)) assert.ok(runs > 0, `${name}: no run reached "${outcome}"`);
}

// ---- virtio-rng ----

test('property: virtio-rng survives random chains, writes only writable buffers and used rings, caps requests, and recovers after a reset', () => {
  const seen = { filled: 0, emptyChain: 0, needsReset: 0, recoveredFromNeedsReset: 0 };
  fc.assert(fc.property(
    fc.array(descArb(4), { minLength: QSIZE, maxLength: QSIZE }), fc.array(adversarialDesc, { maxLength: 4 }), availArb, featuresArb, opsArb(1),
    (table, indirect, avail, features, ops) => {
      const r = rig(new VirtioRng(), features);
      r.writeTable(rings(0).desc, table);
      r.writeTable(INDIRECT_TABLE, indirect);
      r.writeAvail(0, avail);
      r.bringUp();
      const cover = writableCoverage(r.mem, [table, indirect]);
      fc.pre(chainsStayPut(cover, 1));
      const before = Uint8Array.from(r.mem.bytes);
      for (const op of [...ops, { kind: 'notify', queue: 0 } as const]) {
        if (op.kind === 'notify') r.w(Reg.QueueNotify, op.queue);
        else if (op.kind === 'reset') r.bringUp();
      }
      assertOnlyAllowedWrites(r.mem, before, cover, 1);
      if (uncovered(cover, rings(0).used, USED_RING_BYTES)) {
        for (let n = Math.max(0, r.usedIdx(0) - QSIZE); n < r.usedIdx(0); n++) {
          const { id, len } = r.usedEntry(0, n);
          assert.ok(id < QSIZE, `used id ${id}`);
          assert.ok(len <= 64 * 1024, `one request filled ${len} bytes`);
          if (len > 0) seen.filled++; else seen.emptyChain++;
        }
      }
      const broken = r.needsReset();
      assertResetLines(r.logs, ops, broken);
      if (broken) seen.needsReset++;
      // Reset and a fresh valid setup: one 32-byte request is filled.
      r.writeTable(rings(0).desc, [{ addr: BigInt(BUFFERS), len: 32, flags: WRITE, next: 0 }]);
      r.writeAvail(0, { heads: [0], idx: 1 });
      r.mem.bytes.fill(0, BUFFERS - BASE, BUFFERS - BASE + 32);
      r.bringUp();
      r.w(Reg.QueueNotify, 0);
      assert.equal(r.needsReset(), false);
      assert.deepEqual(r.usedEntry(0, 0), { id: 0, len: 32 });
      assert.equal(r.usedIdx(0), 1);
      assert.ok(r.mem.slice(BUFFERS, 32).some((b) => b !== 0), 'the buffer holds random bytes');
      if (broken) seen.recoveredFromNeedsReset++;
    },
  ), { numRuns: RUNS });
  assertAllSeen('virtio-rng', seen);
});

// ---- virtio-console ----

test('property: virtio-console survives random chains on both queues with host input pending, writes only receive buffers and used rings, loses no input, and recovers after a reset', () => {
  const seen = { delivered: 0, transmitted: 0, inputWaiting: 0, needsReset: 0, recoveredFromNeedsReset: 0 };
  fc.assert(fc.property(
    fc.array(descArb(6), { minLength: QSIZE, maxLength: QSIZE }), fc.array(descArb(1), { minLength: QSIZE, maxLength: QSIZE }),
    fc.array(adversarialDesc, { maxLength: 4 }), availArb, availArb, featuresArb, opsArb(2, true),
    (rxTable, txTable, indirect, rxAvail, txAvail, features, ops) => {
      const output: Uint8Array[] = [];
      const dev = new VirtioConsole({ output: (d) => output.push(Uint8Array.from(d)) });
      const r = rig(dev, features);
      r.writeTable(rings(RECEIVEQ).desc, rxTable);
      r.writeTable(rings(TRANSMITQ).desc, txTable);
      r.writeTable(INDIRECT_TABLE, indirect);
      r.writeAvail(RECEIVEQ, rxAvail);
      r.writeAvail(TRANSMITQ, txAvail);
      r.bringUp();
      // Only receive buffers may be written: the transmitq's writable descriptors are not the console's to fill.
      const cover = writableCoverage(r.mem, [rxTable, indirect]);
      fc.pre(chainsStayPut(writableCoverage(r.mem, [rxTable, txTable, indirect]), 2));
      const before = Uint8Array.from(r.mem.bytes);
      // Input accounting reads the receive used ring, unless a buffer overlaps it.
      const countable = uncovered(writableCoverage(r.mem, [rxTable, txTable, indirect]), rings(RECEIVEQ).used, USED_RING_BYTES);
      let offered = 0, delivered = 0, seenUsed = 0;
      for (const op of [...ops, { kind: 'notify', queue: RECEIVEQ } as const, { kind: 'notify', queue: TRANSMITQ } as const]) {
        if (op.kind === 'notify') r.w(Reg.QueueNotify, op.queue);
        else if (op.kind === 'input') { dev.sendInput(op.bytes); offered += op.bytes.length; }
        else { r.bringUp(); seenUsed = 0; }
        if (!countable) continue;
        const fresh = (r.usedIdx(RECEIVEQ) - seenUsed) & 0xffff;
        assert.ok(fresh <= QSIZE, `${fresh} receive buffers used by one step`);
        for (let n = seenUsed; n < seenUsed + fresh; n++) delivered += r.usedEntry(RECEIVEQ, n).len;
        seenUsed = r.usedIdx(RECEIVEQ);
      }
      assertOnlyAllowedWrites(r.mem, before, cover, 2);
      assert.ok(dev.pendingInput <= offered);
      if (countable) assert.equal(delivered + dev.pendingInput, offered, 'every input byte is delivered or still waiting');
      for (const chunk of output) assert.ok(chunk.length > 0, 'no empty output chunk');
      const broken = r.needsReset();
      assertResetLines(r.logs, ops, broken);
      if (dev.pendingInput < offered) seen.delivered++;
      if (output.length > 0) seen.transmitted++;
      if (dev.pendingInput > 0) seen.inputWaiting++;
      if (broken) seen.needsReset++;
      // Reset and a fresh valid setup: waiting input plus "ok" arrives, one transmitted line leaves.
      const waiting = dev.pendingInput;
      r.writeTable(rings(RECEIVEQ).desc, [{ addr: BigInt(BUFFERS), len: 4096, flags: WRITE, next: 0 }]);
      r.writeTable(rings(TRANSMITQ).desc, [{ addr: BigInt(BUFFERS + 0x2000), len: 3, flags: 0, next: 0 }]);
      r.mem.write(BUFFERS + 0x2000, new TextEncoder().encode('hi\n'));
      r.writeAvail(RECEIVEQ, { heads: [0], idx: 1 });
      r.writeAvail(TRANSMITQ, { heads: [0], idx: 1 });
      r.bringUp();
      output.length = 0;
      dev.sendInput(new TextEncoder().encode('ok'));
      r.w(Reg.QueueNotify, TRANSMITQ);
      assert.equal(r.needsReset(), false);
      assert.deepEqual(r.usedEntry(RECEIVEQ, 0), { id: 0, len: Math.min(4096, waiting + 2) });
      if (waiting + 2 <= 4096) assert.equal(new TextDecoder().decode(r.mem.slice(BUFFERS + waiting, 2)), 'ok');
      assert.deepEqual(output, [new TextEncoder().encode('hi\n')]);
      if (broken) seen.recoveredFromNeedsReset++;
    },
  ), { numRuns: RUNS });
  assertAllSeen('virtio-console', seen);
});

// ---- virtio-blk ----

const SECTOR = 512;
const SECTORS = 32;
/** Request layout: 32 bytes of header (+ one DISCARD/WRITE_ZEROES segment) per slot, then status bytes and data. */
const HDR = BUFFERS, STATUS = BUFFERS + 0x200, OUT_DATA = BUFFERS + 0x1000, IN_DATA = BUFFERS + 0x6000;
const DATA_STRIDE = 0x800;
const MAX_REQUESTS = 5;

/** A request a driver could send, some of them wrong: any type, any sector, odd lengths, no status byte. */
const blkRequest = fc.record({
  type: fc.oneof({ weight: 8, arbitrary: fc.constantFrom<number>(BlkType.IN, BlkType.OUT, BlkType.FLUSH, BlkType.GET_ID, BlkType.DISCARD, BlkType.WRITE_ZEROES) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff_ffff }) }),
  sector: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: SECTORS + 2 }).map(BigInt) }, { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }),
  dataLen: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 4 }).map((n) => n * SECTOR) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: DATA_STRIDE }) }),
  segment: fc.record({
    start: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: SECTORS }).map(BigInt) }, { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }),
    count: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 8 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff_ffff }) }),
    flags: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(0, 1) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff_ffff }) }),
  }),
  statusLen: fc.constantFrom(1, 1, 1, 1, 0, 4),
  viaIndirect: fc.boolean(),
});
type BlkRequest = typeof blkRequest extends fc.Arbitrary<infer T> ? T : never;

/** Lays out `requests` in RAM and the descriptor table (one may go through the indirect table); returns the heads. */
function layOutRequests(mem: GuestMemory, requests: BlkRequest[], table: Desc[], indirect: Desc[], useIndirect: boolean): number[] {
  const heads: number[] = [];
  requests.forEach((q, i) => {
    const hdr = HDR + 32 * i;
    mem.writeU32(hdr, q.type); mem.writeU32(hdr + 4, 0); mem.writeU64(hdr + 8, q.sector);
    mem.writeU64(hdr + 16, q.segment.start); mem.writeU32(hdr + 24, q.segment.count); mem.writeU32(hdr + 28, q.segment.flags);
    const zeroing = q.type === BlkType.DISCARD || q.type === BlkType.WRITE_ZEROES;
    const chain: Desc[] = [{ addr: BigInt(hdr), len: zeroing ? 32 : 16, flags: 0, next: 0 }];
    if (q.dataLen > 0 && q.type === BlkType.OUT) chain.push({ addr: BigInt(OUT_DATA + DATA_STRIDE * i), len: q.dataLen, flags: 0, next: 0 });
    if (q.dataLen > 0 && q.type !== BlkType.OUT && !zeroing && q.type !== BlkType.FLUSH) chain.push({ addr: BigInt(IN_DATA + DATA_STRIDE * i), len: q.dataLen, flags: WRITE, next: 0 });
    chain.push({ addr: BigInt(STATUS + 16 * i), len: q.statusLen, flags: WRITE, next: 0 });
    if (useIndirect && q.viaIndirect && indirect.length === 0) {
      chain.forEach((d, k) => indirect.push({ ...d, flags: d.flags | (k < chain.length - 1 ? NEXT : 0), next: k + 1 }));
      if (table.length >= QSIZE) return;
      heads.push(table.length);
      table.push({ addr: BigInt(INDIRECT_TABLE), len: 16 * chain.length, flags: INDIRECT, next: 0 });
      return;
    }
    if (table.length + chain.length > QSIZE) return;
    heads.push(table.length);
    chain.forEach((d, k) => table.push({ ...d, flags: d.flags | (k < chain.length - 1 ? NEXT : 0), next: table.length + 1 }));
  });
  return heads;
}

/** The chain from `head` as the device would walk it, read from a copy of RAM; null when it is malformed. */
function walkChain(ram: Uint8Array, head: number, features: Features): { chain: DescriptorChain; queue: VirtQueue } | null {
  const copy = new GuestMemory(BASE, RAM);
  copy.bytes.set(ram);
  copy.writeU16(rings(0).avail + 2, 1); copy.writeU16(rings(0).avail + 4, head);
  const queue = new VirtQueue(copy, { size: QSIZE, ...rings(0) }, features);
  try {
    const chain = queue.pop();
    return chain ? { chain, queue } : null;
  } catch {
    return null;
  }
}

/** Sectors a chain may change on the disk, by its header: the OUT data range or the DISCARD/WRITE_ZEROES segment. */
function sectorsNamed(walked: { chain: DescriptorChain; queue: VirtQueue }): [bigint, bigint] | null {
  const bytes = walked.queue.readAll(walked.chain, 32);
  if (bytes.length < 16) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const type = v.getUint32(0, true);
  if (type === BlkType.OUT) {
    const data = walked.chain.readable.reduce((n, b) => n + b.len, 0) - 16;
    return [v.getBigUint64(8, true), v.getBigUint64(8, true) + BigInt(Math.ceil(data / SECTOR))];
  }
  if ((type === BlkType.DISCARD || type === BlkType.WRITE_ZEROES) && bytes.length >= 32) return [v.getBigUint64(16, true), v.getBigUint64(16, true) + BigInt(v.getUint32(24, true))];
  return null;
}

function blkProperty(readonly: boolean): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-blk-props-'));
  const file = path.join(dir, 'disk.img');
  // High bit set in every byte, so disk data copied into RAM never reads as an in-RAM address.
  const image = Buffer.from(Array.from({ length: SECTORS * SECTOR }, (_, i) => ((i * 7 + (i >> 9)) & 0x7f) | 0x80));
  const statuses = { [BlkStatus.OK]: 'ok', [BlkStatus.IOERR]: 'ioerr', [BlkStatus.UNSUPP]: 'unsupp' } as Record<number, string>;
  const seen: Record<string, number> = { ok: 0, ioerr: 0, unsupp: 0, noStatusBuffer: 0, exactImageCheck: 0, needsReset: 0, recoveredFromNeedsReset: 0 };
  if (!readonly) seen.diskWritten = 0;
  try {
    fc.assert(fc.property(
      fc.array(blkRequest, { minLength: 1, maxLength: MAX_REQUESTS }),
      fc.array(fc.record({ inIndirect: fc.boolean(), index: fc.integer({ min: 0, max: QSIZE - 1 }), desc: adversarialDesc }), { maxLength: 3 }),
      fc.array(fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 0, max: MAX_REQUESTS - 1 }) }, fc.integer({ min: 0, max: 0xffff })), { maxLength: QSIZE }),
      availIdxArb, featuresArb, opsArb(1),
      (requests, mutations, picks, availIdx, features, ops) => {
        fs.writeFileSync(file, image);
        const dev = new VirtioBlk({ path: file, readonly, serial: 'props' });
        try {
          const r = rig(dev, features);
          const table: Desc[] = [], indirect: Desc[] = [];
          const requestHeads = layOutRequests(r.mem, requests, table, indirect, features.indirect);
          while (table.length < QSIZE) table.push({ addr: BigInt(BASE + RAM), len: 1, flags: 0, next: 0 });
          for (const m of mutations) {
            const list = m.inIndirect && indirect.length > 0 ? indirect : table;
            list[m.index % list.length] = m.desc;
          }
          // Mostly the requests' heads, in any order and repeated; sometimes any number at all.
          const heads = picks.map((p) => (p < MAX_REQUESTS ? requestHeads[p % requestHeads.length] ?? p : p));
          r.writeTable(rings(0).desc, table);
          r.writeTable(INDIRECT_TABLE, indirect);
          r.writeAvail(0, { heads, idx: availIdx });
          r.bringUp();
          const cover = writableCoverage(r.mem, [table, indirect]);
          fc.pre(chainsStayPut(cover, 1));
          const before = Uint8Array.from(r.mem.bytes);
          // When the device cannot overwrite what it reads (rings, tables, readable buffers), every
          // chain's header stays as laid out, so the sectors it may write can be worked out exactly.
          const readRanges: [number, number][] = [[rings(0).desc, 16 * QSIZE], [rings(0).avail, 6 + 2 * QSIZE], [INDIRECT_TABLE, INDIRECT_REACH]];
          for (const d of [...table, ...indirect]) if (!(d.flags & (WRITE | INDIRECT)) && r.mem.contains(Number(d.addr), Math.min(d.len, RAM))) readRanges.push([Number(d.addr), d.len]);
          const stable = readRanges.every(([a, n]) => uncovered(cover, a, n)) && uncovered(cover, rings(0).used, USED_RING_BYTES);

          for (const op of [...ops, { kind: 'notify', queue: 0 } as const]) {
            if (op.kind === 'notify') r.w(Reg.QueueNotify, op.queue);
            else if (op.kind === 'reset') r.bringUp();
          }

          assertOnlyAllowedWrites(r.mem, before, cover, 1);
          const disk = fs.readFileSync(file);
          assert.equal(disk.length, image.length, 'the image keeps its size');
          if (readonly) assert.ok(disk.equals(image), 'a read-only image is never modified');
          if (!disk.equals(image)) seen.diskWritten++;
          if (stable) {
            seen.exactImageCheck++;
            const writable = new Uint8Array(SECTORS);
            /** RAM a request may fill with data (disk sectors, the serial): every writable byte but a chain's status byte. */
            const dataBytes = new Uint8Array(RAM);
            for (let h = 0; h < QSIZE; h++) {
              const walked = walkChain(before, h, features);
              const range = walked && sectorsNamed(walked);
              if (range) for (let s = range[0]; s < range[1] && s < BigInt(SECTORS); s++) writable[Number(s)] = 1;
              walked?.chain.writable.forEach((b, k, all) => dataBytes.fill(1, b.addr - BASE, b.addr - BASE + b.len - (k === all.length - 1 ? 1 : 0)));
            }
            for (let s = 0; s < SECTORS; s++) {
              if (!writable[s]) assert.ok(disk.subarray(s * SECTOR, (s + 1) * SECTOR).equals(image.subarray(s * SECTOR, (s + 1) * SECTOR)), `sector ${s} changed but no request named it`);
            }
            // Every completed request with a status buffer of its own got OK, IOERR or UNSUPP.
            for (let n = Math.max(0, r.usedIdx(0) - QSIZE); n < r.usedIdx(0); n++) {
              const { id, len } = r.usedEntry(0, n);
              const walked = walkChain(before, id, features);
              assert.ok(walked, `used entry ${n} names head ${id}, which is not a well-formed chain`);
              const last = walked.chain.writable.at(-1);
              if (len === 0) { assert.ok(!last || last.len === 0, 'a request with a status buffer was answered'); seen.noStatusBuffer++; continue; }
              assert.ok(last && last.len > 0);
              const at = last.addr + last.len - 1;
              if (cover[at - BASE] !== 1 || dataBytes[at - BASE]) continue; // another buffer overlaps the status byte
              const status = r.mem.readU8(at);
              assert.ok(status in statuses, `status byte ${status}`);
              seen[statuses[status]]++;
            }
          }
          const broken = r.needsReset();
          assertResetLines(r.logs, ops, broken);
          if (broken) seen.needsReset++;
          // Reset and a fresh valid setup: reading sector 3 returns what the disk holds there.
          r.mem.writeU32(HDR, BlkType.IN); r.mem.writeU32(HDR + 4, 0); r.mem.writeU64(HDR + 8, 3n);
          r.mem.writeU8(STATUS, 0xff);
          r.writeTable(rings(0).desc, [
            { addr: BigInt(HDR), len: 16, flags: NEXT, next: 1 },
            { addr: BigInt(IN_DATA), len: SECTOR, flags: WRITE | NEXT, next: 2 },
            { addr: BigInt(STATUS), len: 1, flags: WRITE, next: 0 },
          ]);
          r.writeAvail(0, { heads: [0], idx: 1 });
          r.bringUp();
          r.w(Reg.QueueNotify, 0);
          assert.equal(r.needsReset(), false);
          assert.deepEqual(r.usedEntry(0, 0), { id: 0, len: SECTOR + 1 });
          assert.equal(r.mem.readU8(STATUS), BlkStatus.OK);
          assert.deepEqual(r.mem.slice(IN_DATA, SECTOR), Uint8Array.from(disk.subarray(3 * SECTOR, 4 * SECTOR)));
          if (broken) seen.recoveredFromNeedsReset++;
        } finally {
          dev.close();
        }
      },
    ), { numRuns: RUNS, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH, endOnFailure: true, verbose: 2 } : {}) });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assertAllSeen(`virtio-blk (${readonly ? 'read-only' : 'read-write'})`, seen);
}

test('property: virtio-blk (read-write image) survives random requests and chains, writes only writable buffers, used ring and named sectors, answers OK/IOERR/UNSUPP, and recovers after a reset', () => {
  blkProperty(false);
});

test('property: virtio-blk (read-only image) never modifies the image under random requests and chains, and recovers after a reset', () => {
  blkProperty(true);
});
