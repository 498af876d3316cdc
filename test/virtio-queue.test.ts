// Split virtqueue and virtio-mmio transport: rings built by hand in a GuestMemory, normal and
// indirect chains, EVENT_IDX, adversarial descriptor tables, and a fast-check property that
// random tables never crash the host and never make it write outside the buffers it handed out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { GuestMemory } from '../src/hw/memory.js';
import {
  VirtQueue, VirtioError, needEvent, VIRTQ_DESC_F_INDIRECT as INDIRECT, VIRTQ_DESC_F_NEXT as NEXT, VIRTQ_DESC_F_WRITE as WRITE,
  VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_VERSION_1, type DescriptorChain,
} from '../src/devices/virtio/queue.js';
import { Reg, Status, VirtioMmio, VIRTIO_MMIO_MAGIC, INT_CONFIG_CHANGE, INT_USED_BUFFER, type VirtioDevice, type VirtioTransport } from '../src/devices/virtio/mmio.js';
import { VirtioRng } from '../src/devices/virtio/rng.js';

const BASE = 0x8000_0000;
const RAM = 64 * 1024;
const SIZE = 8;
const DESC = BASE + 0x0000;
const AVAIL = BASE + 0x1000;
const USED = BASE + 0x2000;
const BUF = BASE + 0x4000;
const INDIRECT_TABLE = BASE + 0x3000;

interface Desc { addr: number | bigint; len: number; flags?: number; next?: number }

function setup(features = { indirect: true, eventIdx: false }) {
  const mem = new GuestMemory(BASE, RAM);
  const q = new VirtQueue(mem, { size: SIZE, desc: DESC, avail: AVAIL, used: USED }, features, 'q0');
  let availIdx = 0;
  const writeDesc = (table: number, i: number, d: Desc) => {
    const at = table + 16 * i;
    mem.writeU64(at, BigInt(d.addr));
    mem.writeU32(at + 8, d.len >>> 0);
    mem.writeU16(at + 12, d.flags ?? 0);
    mem.writeU16(at + 14, d.next ?? 0);
  };
  const descs = (list: Desc[], table = DESC) => list.forEach((d, i) => writeDesc(table, i, d));
  const offer = (...heads: number[]) => {
    for (const h of heads) {
      mem.writeU16(AVAIL + 4 + 2 * (availIdx % SIZE), h);
      availIdx = (availIdx + 1) & 0xffff;
    }
    mem.writeU16(AVAIL + 2, availIdx);
  };
  return { mem, q, descs, writeDesc, offer };
}

const chainOf = (c: DescriptorChain | null) => c && { head: c.head, readable: c.readable, writable: c.writable };

test('a chain of readable then writable descriptors follows NEXT', () => {
  const { q, descs, offer } = setup();
  descs([
    { addr: BUF, len: 16, flags: NEXT, next: 2 },
    { addr: 0, len: 0 },
    { addr: BUF + 0x100, len: 512, flags: NEXT | WRITE, next: 3 },
    { addr: BUF + 0x400, len: 1, flags: WRITE },
  ]);
  assert.equal(q.pop(), null, 'nothing offered yet');
  offer(0);
  assert.deepEqual(chainOf(q.pop()), {
    head: 0,
    readable: [{ addr: BUF, len: 16 }],
    writable: [{ addr: BUF + 0x100, len: 512 }, { addr: BUF + 0x400, len: 1 }],
  });
  assert.equal(q.pop(), null);
});

test('push writes the used ring and the used index; interrupts unless NO_INTERRUPT', () => {
  const { mem, q, descs, offer } = setup();
  descs([{ addr: BUF, len: 4, flags: WRITE }, { addr: BUF + 8, len: 4, flags: WRITE }]);
  offer(1, 0);
  assert.equal(q.pop()?.head, 1);
  assert.equal(q.pop()?.head, 0);
  q.push(1, 4);
  q.push(0, 3);
  assert.equal(mem.readU16(USED + 2), 2);
  assert.deepEqual([mem.readU32(USED + 4), mem.readU32(USED + 8), mem.readU32(USED + 12), mem.readU32(USED + 16)], [1, 4, 0, 3]);
  assert.equal(q.needsInterrupt(), true);
  assert.equal(q.needsInterrupt(), false, 'nothing new since');
  mem.writeU16(AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
  offer(0);
  q.pop();
  q.push(0, 0);
  assert.equal(q.needsInterrupt(), false, 'the driver suppressed interrupts');
});

test('indirect descriptors: the table is walked, its own indices are checked', () => {
  const { q, descs, writeDesc, offer } = setup();
  descs([{ addr: INDIRECT_TABLE, len: 3 * 16, flags: INDIRECT }]);
  writeDesc(INDIRECT_TABLE, 0, { addr: BUF, len: 16, flags: NEXT, next: 2 });
  writeDesc(INDIRECT_TABLE, 2, { addr: BUF + 16, len: 100, flags: NEXT, next: 1 });
  writeDesc(INDIRECT_TABLE, 1, { addr: BUF + 200, len: 1, flags: WRITE });
  offer(0);
  assert.deepEqual(chainOf(q.pop()), {
    head: 0,
    readable: [{ addr: BUF, len: 16 }, { addr: BUF + 16, len: 100 }],
    writable: [{ addr: BUF + 200, len: 1 }],
  });
});

test('EVENT_IDX: avail_event follows the device, interrupts only when used_event is crossed', () => {
  const { mem, q, descs, offer } = setup({ indirect: false, eventIdx: true });
  descs([{ addr: BUF, len: 4, flags: WRITE }]);
  mem.writeU16(AVAIL + 4 + 2 * SIZE, 1); // used_event: interrupt once used idx passes 1
  offer(0);
  q.pop();
  assert.equal(mem.readU16(USED + 4 + 8 * SIZE), 1, 'avail_event = next avail index the device will read');
  q.push(0, 4);
  assert.equal(q.needsInterrupt(), false, 'used idx 0→1 does not cross used_event 1');
  offer(0);
  q.pop();
  q.push(0, 4);
  assert.equal(q.needsInterrupt(), true, 'used idx 1→2 crosses used_event 1');
  assert.equal(needEvent(0xffff, 1, 0xfffe), true, 'wraps mod 2^16');
  assert.equal(needEvent(5, 4, 2), false);
});

function rejects(build: (s: ReturnType<typeof setup>) => void, message: RegExp, features = { indirect: true, eventIdx: false }) {
  const s = setup(features);
  build(s);
  const before = Uint8Array.from(s.mem.bytes);
  assert.throws(() => s.q.pop(), (e: unknown) => {
    assert.ok(e instanceof VirtioError, `a VirtioError, got ${String(e)}`);
    assert.match(e.message, message);
    return true;
  });
  assert.deepEqual(s.mem.bytes, before, 'a rejected chain changes no guest memory');
}

test('adversarial chains are rejected with precise errors and touch no memory', () => {
  rejects(({ descs, offer }) => {
    descs([{ addr: BUF, len: 1, flags: NEXT, next: 1 }, { addr: BUF, len: 1, flags: NEXT, next: 0 }]);
    offer(0);
  }, /^q0: chain from head 0 is longer than 8 descriptors \(a loop\)$/);
  rejects(({ descs, offer }) => { descs([{ addr: BUF, len: 1, flags: NEXT, next: 0 }]); offer(0); }, /a loop/);
  rejects(({ descs, offer }) => { descs([{ addr: BUF, len: 1, flags: NEXT, next: 8 }]); offer(0); },
    /^q0: chain from head 0 links to descriptor 8, outside the queue of 8$/);
  rejects(({ offer }) => offer(9), /^q0: avail ring entry 0 names descriptor 9, outside the queue of 8$/);
  rejects(({ descs, offer }) => { descs([{ addr: BASE - 16, len: 16 }]); offer(0); },
    /^q0: descriptor 0 has buffer 0x7ffffff0 \(\+16 bytes\) outside RAM$/);
  rejects(({ descs, offer }) => { descs([{ addr: BASE + RAM - 8, len: 9 }]); offer(0); }, /buffer 0x8000fff8 \(\+9 bytes\) outside RAM/);
  rejects(({ descs, offer }) => { descs([{ addr: BUF, len: 0xffff_ffff }]); offer(0); }, /\(\+4294967295 bytes\) outside RAM/);
  rejects(({ descs, offer }) => { descs([{ addr: 0xffff_ffff_ffff_f000n, len: 0x1000 }]); offer(0); }, /buffer 0xfffffffffffff000 .* outside RAM/);
  rejects(({ descs, offer }) => {
    descs([{ addr: BUF, len: 4, flags: WRITE | NEXT, next: 1 }, { addr: BUF + 8, len: 4 }]);
    offer(0);
  }, /^q0: descriptor 1 is device-readable but follows a device-writable descriptor in the chain from head 0$/);
  rejects(({ descs, writeDesc, offer }) => {
    descs([{ addr: INDIRECT_TABLE, len: 32, flags: INDIRECT }]);
    writeDesc(INDIRECT_TABLE, 0, { addr: INDIRECT_TABLE + 0x100, len: 16, flags: INDIRECT });
    offer(0);
  }, /indirect table at 0x80003000 entry 0 is an indirect descriptor inside an indirect table \(nesting is not allowed\)/);
  rejects(({ descs, offer }) => { descs([{ addr: INDIRECT_TABLE, len: 24, flags: INDIRECT }]); offer(0); },
    /descriptor 0 has an indirect table length of 24, not a non-zero multiple of 16/);
  rejects(({ descs, offer }) => { descs([{ addr: INDIRECT_TABLE, len: 0, flags: INDIRECT }]); offer(0); }, /indirect table length of 0/);
  rejects(({ descs, offer }) => { descs([{ addr: BASE + RAM - 16, len: 32, flags: INDIRECT }]); offer(0); }, /indirect table at 0x8000fff0 \(\+32 bytes\) outside RAM/);
  rejects(({ descs, offer }) => { descs([{ addr: INDIRECT_TABLE, len: 16, flags: INDIRECT | NEXT, next: 1 }]); offer(0); }, /sets both INDIRECT and NEXT/);
  rejects(({ descs, writeDesc, offer }) => {
    descs([{ addr: INDIRECT_TABLE, len: 32, flags: INDIRECT }]);
    writeDesc(INDIRECT_TABLE, 0, { addr: BUF, len: 1, flags: NEXT, next: 2 });
    offer(0);
  }, /links to indirect table at 0x80003000 entry 2, outside the indirect table of 2/);
  rejects(({ descs, writeDesc, offer }) => {
    descs([{ addr: INDIRECT_TABLE, len: 32, flags: INDIRECT }]);
    writeDesc(INDIRECT_TABLE, 0, { addr: BUF, len: 1, flags: NEXT, next: 1 });
    writeDesc(INDIRECT_TABLE, 1, { addr: BUF, len: 1, flags: NEXT, next: 0 });
    offer(0);
  }, /longer than 2 descriptors \(a loop\)/);
  rejects(({ descs, offer }) => { descs([{ addr: INDIRECT_TABLE, len: 16, flags: INDIRECT }]); offer(0); },
    /descriptor 0 is indirect but VIRTIO_F_RING_INDIRECT_DESC was not negotiated/, { indirect: false, eventIdx: false });
  rejects(({ mem }) => mem.writeU16(AVAIL + 2, SIZE + 1), /avail idx 9 is 9 entries ahead of the device's 0, more than the queue size 8/);
});

test('bad queue layouts are rejected', () => {
  const mem = new GuestMemory(BASE, RAM);
  const make = (size: number, desc: number, avail: number, used: number) => () => new VirtQueue(mem, { size, desc, avail, used }, { indirect: false, eventIdx: false }, 'q1');
  assert.throws(make(6, DESC, AVAIL, USED), /^VirtioError: q1: queue size 6 is not a power of 2 from 1 to 32768$/);
  assert.throws(make(0, DESC, AVAIL, USED), /queue size 0/);
  assert.throws(make(8, 0, AVAIL, USED), /descriptor table at 0x0 \(\+128 bytes\) is outside RAM/);
  assert.throws(make(8, DESC + 8, AVAIL, USED), /descriptor table at 0x80000008 is not 16-byte aligned/);
  assert.throws(make(8, DESC, AVAIL, BASE + RAM - 16), /used ring at 0x8000fff0 \(\+70 bytes\) is outside RAM/);
  assert.throws(make(8, DESC, AVAIL + 1, USED), /available ring at 0x80001001 is not 2-byte aligned/);
});

// ---- property: random descriptor tables ----

const descArb = fc.record({
  addr: fc.oneof(
    fc.integer({ min: 0, max: RAM - 1 }).map((o) => BigInt(BASE + o)),
    fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    fc.constantFrom(BigInt(BASE + RAM - 1), BigInt(BASE - 1), BigInt(INDIRECT_TABLE)),
  ),
  len: fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.constantFrom(16, 32, 48, 0xffff_ffff), fc.integer({ min: 0, max: 0xffff_ffff })),
  flags: fc.integer({ min: 0, max: 7 }),
  next: fc.integer({ min: 0, max: 10 }),
});

test('property: random descriptor tables never crash the host nor write outside the buffers handed out', () => {
  fc.assert(fc.property(
    fc.array(descArb, { minLength: SIZE, maxLength: SIZE }),
    fc.array(descArb, { minLength: 0, maxLength: 6 }),
    fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 0, maxLength: 12 }),
    fc.boolean(), fc.boolean(), fc.integer({ min: 0, max: 0xffff }),
    (table, indirect, heads, useIndirect, eventIdx, availStart) => {
      const mem = new GuestMemory(BASE, RAM);
      for (let i = 0; i < RAM; i += 4) mem.view.setUint32(i, Math.imul(i + 1, 0x9e3779b1), true);
      const write = (base: number, list: typeof table) => list.forEach((d, i) => {
        mem.writeU64(base + 16 * i, d.addr);
        mem.writeU32(base + 16 * i + 8, d.len);
        mem.writeU16(base + 16 * i + 12, d.flags);
        mem.writeU16(base + 16 * i + 14, d.next);
      });
      write(DESC, table);
      write(INDIRECT_TABLE, indirect);
      heads.forEach((h, i) => mem.writeU16(AVAIL + 4 + 2 * ((availStart + i) % SIZE), h));
      mem.writeU16(AVAIL + 2, (availStart + heads.length) & 0xffff);
      const q = new VirtQueue(mem, { size: SIZE, desc: DESC, avail: AVAIL, used: USED }, { indirect: useIndirect, eventIdx }, 'p');
      q.lastAvail = availStart;
      q.usedIdx = availStart;
      const allowed = new Uint8Array(RAM);
      allowed.fill(1, USED - BASE, USED - BASE + 6 + 8 * SIZE);
      const before = Uint8Array.from(mem.bytes);
      try {
        for (let chain = q.pop(); chain; chain = q.pop()) {
          let written = 0;
          for (const b of chain.writable) {
            assert.ok(mem.contains(b.addr, b.len));
            allowed.fill(1, b.addr - BASE, b.addr - BASE + b.len);
            // A device writing its whole buffer, through the queue's own helper.
            written += q.writeAt({ head: chain.head, readable: [], writable: [b] }, 0, new Uint8Array(Math.min(b.len, 256)).fill(0x5a));
          }
          for (const b of chain.readable) assert.ok(mem.contains(b.addr, b.len));
          q.push(chain.head, written);
        }
        q.needsInterrupt();
      } catch (e) {
        if (!(e instanceof VirtioError)) throw e;
      }
      for (let i = 0; i < RAM; i++) {
        if (!allowed[i] && mem.bytes[i] !== before[i]) assert.fail(`byte at 0x${(BASE + i).toString(16)} changed outside the buffers`);
      }
    },
  ), { numRuns: 400 });
});

// ---- the transport ----

class EchoDevice implements VirtioDevice {
  readonly name = 'echo0';
  readonly deviceId = 42;
  readonly features = 1n << 3n;
  readonly queueCount = 1;
  readonly queueMaxSize = 8;
  resets = 0;
  config = 0x11223344;
  transport: VirtioTransport | null = null;
  configRead(offset: number): number { return offset === 0 ? this.config : 0; }
  configWrite(offset: number, _w: number, value: number): void { if (offset === 0) this.config = value; }
  notify(_i: number, queue: VirtQueue, transport: VirtioTransport): void {
    this.transport = transport;
    for (let c = queue.pop(); c; c = queue.pop()) queue.push(c.head, queue.writeAt(c, 0, queue.readAll(c)));
  }
  reset(): void { this.resets++; }
}

function transport(device: VirtioDevice = new EchoDevice()) {
  const mem = new GuestMemory(BASE, RAM);
  const irq: boolean[] = [];
  const logs: string[] = [];
  const t = new VirtioMmio(mem, device, { set: (l) => irq.push(l) }, (l) => logs.push(l));
  const r = (off: number) => t.read(off, 4);
  const w = (off: number, v: number) => t.write(off, 4, v);
  /** The Linux driver's sequence: reset, ACK, DRIVER, features, FEATURES_OK, queue 0, DRIVER_OK. */
  const bringUp = (features: bigint, queue = { size: SIZE, desc: DESC, avail: AVAIL, used: USED }) => {
    w(Reg.Status, 0);
    w(Reg.Status, Status.Acknowledge);
    w(Reg.Status, Status.Acknowledge | Status.Driver);
    w(Reg.DriverFeaturesSel, 0); w(Reg.DriverFeatures, Number(features & 0xffff_ffffn));
    w(Reg.DriverFeaturesSel, 1); w(Reg.DriverFeatures, Number(features >> 32n));
    w(Reg.Status, Status.Acknowledge | Status.Driver | Status.FeaturesOk);
    w(Reg.QueueSel, 0);
    w(Reg.QueueNum, queue.size);
    w(Reg.QueueDescLow, queue.desc); w(Reg.QueueDescHigh, 0);
    w(Reg.QueueDriverLow, queue.avail); w(Reg.QueueDriverHigh, 0);
    w(Reg.QueueDeviceLow, queue.used); w(Reg.QueueDeviceHigh, 0);
    w(Reg.QueueReady, 1);
    w(Reg.Status, Status.Acknowledge | Status.Driver | Status.FeaturesOk | Status.DriverOk);
  };
  return { mem, t, irq, logs, r, w, bringUp };
}

const V1 = 1n << BigInt(VIRTIO_F_VERSION_1);

test('transport: identification, features and FEATURES_OK negotiation', () => {
  const { r, w } = transport();
  assert.equal(r(Reg.MagicValue), VIRTIO_MMIO_MAGIC);
  assert.equal(r(Reg.Version), 2);
  assert.equal(r(Reg.DeviceID), 42);
  w(Reg.DeviceFeaturesSel, 0);
  assert.equal(r(Reg.DeviceFeatures), (1 << 3) | (1 << VIRTIO_F_RING_INDIRECT_DESC) | (1 << VIRTIO_F_RING_EVENT_IDX));
  w(Reg.DeviceFeaturesSel, 1);
  assert.equal(r(Reg.DeviceFeatures), 1, 'VERSION_1');
  assert.equal(r(Reg.QueueNumMax), 8);
  assert.equal(r(Reg.Config), 0x11223344);
  // Without VERSION_1, FEATURES_OK does not stick.
  w(Reg.Status, 3); w(Reg.DriverFeaturesSel, 0); w(Reg.DriverFeatures, 1 << 3);
  w(Reg.Status, 3 | Status.FeaturesOk);
  assert.equal(r(Reg.Status) & Status.FeaturesOk, 0);
  // A feature the device does not offer also fails.
  w(Reg.Status, 0); w(Reg.Status, 3);
  w(Reg.DriverFeaturesSel, 1); w(Reg.DriverFeatures, 1); w(Reg.DriverFeaturesSel, 0); w(Reg.DriverFeatures, 1 << 4);
  w(Reg.Status, 3 | Status.FeaturesOk);
  assert.equal(r(Reg.Status) & Status.FeaturesOk, 0);
});

test('transport: a notify serves the queue and raises the used-buffer interrupt; ACK lowers it', () => {
  const { mem, r, w, irq, bringUp } = transport();
  bringUp(V1);
  mem.write(BUF, new TextEncoder().encode('ping'));
  mem.writeU64(DESC, BigInt(BUF)); mem.writeU32(DESC + 8, 4); mem.writeU16(DESC + 12, NEXT); mem.writeU16(DESC + 14, 1);
  mem.writeU64(DESC + 16, BigInt(BUF + 0x100)); mem.writeU32(DESC + 24, 8); mem.writeU16(DESC + 28, WRITE);
  mem.writeU16(AVAIL + 4, 0); mem.writeU16(AVAIL + 2, 1);
  w(Reg.QueueNotify, 0);
  assert.equal(new TextDecoder().decode(mem.slice(BUF + 0x100, 4)), 'ping');
  assert.equal(mem.readU16(USED + 2), 1);
  assert.equal(mem.readU32(USED + 8), 4, 'written length');
  assert.equal(r(Reg.InterruptStatus), INT_USED_BUFFER);
  assert.equal(irq.at(-1), true);
  w(Reg.InterruptACK, INT_USED_BUFFER);
  assert.equal(r(Reg.InterruptStatus), 0);
  assert.equal(irq.at(-1), false);
});

test('transport: a malformed chain logs one line, sets DEVICE_NEEDS_RESET and interrupts; reset recovers', () => {
  const dev = new EchoDevice();
  const { mem, r, w, irq, logs, bringUp } = transport(dev);
  bringUp(V1);
  mem.writeU64(DESC, BigInt(BUF)); mem.writeU32(DESC + 8, 4); mem.writeU16(DESC + 12, NEXT); mem.writeU16(DESC + 14, 0);
  mem.writeU16(AVAIL + 4, 0); mem.writeU16(AVAIL + 2, 1);
  const genBefore = r(Reg.ConfigGeneration);
  w(Reg.QueueNotify, 0);
  w(Reg.QueueNotify, 0);
  assert.deepEqual(logs, ['echo0: queue 0: chain from head 0 is longer than 8 descriptors (a loop); device needs reset']);
  assert.ok(r(Reg.Status) & Status.DeviceNeedsReset);
  assert.equal(r(Reg.InterruptStatus), INT_CONFIG_CHANGE);
  assert.equal(irq.at(-1), true);
  assert.notEqual(r(Reg.ConfigGeneration), genBefore);
  w(Reg.Status, 0);
  assert.equal(r(Reg.Status), 0);
  assert.equal(r(Reg.InterruptStatus), 0);
  assert.equal(irq.at(-1), false);
  assert.equal(dev.resets, 2, "one reset by bringUp, one after the failure");
  bringUp(V1);
  assert.equal(r(Reg.Status) & Status.DeviceNeedsReset, 0);
  assert.equal(r(Reg.QueueReady), 1);
});

test('transport: a queue outside RAM or larger than QueueNumMax needs reset, never throws', () => {
  for (const [queue, message] of [
    [{ size: SIZE, desc: 0x1000, avail: AVAIL, used: USED }, /queue 0: descriptor table at 0x1000 \(\+128 bytes\) is outside RAM/],
    [{ size: 16, desc: DESC, avail: AVAIL, used: USED }, /queue 0: QueueNum 16 exceeds QueueNumMax 8/],
    [{ size: 3, desc: DESC, avail: AVAIL, used: USED }, /queue size 3 is not a power of 2/],
  ] as const) {
    const { r, w, logs, bringUp } = transport();
    bringUp(V1, queue);
    assert.equal(logs.length, 1);
    assert.match(logs[0], message);
    assert.ok(r(Reg.Status) & Status.DeviceNeedsReset);
    assert.equal(r(Reg.QueueReady), 0);
    w(Reg.QueueNotify, 0); // ignored
  }
});

test('transport: configChanged bumps ConfigGeneration and interrupts once DRIVER_OK', () => {
  const dev = new EchoDevice();
  const { r, t, bringUp } = transport(dev);
  bringUp(V1);
  const gen = r(Reg.ConfigGeneration);
  t.configChanged();
  assert.equal(r(Reg.ConfigGeneration), gen + 1);
  assert.equal(r(Reg.InterruptStatus), INT_CONFIG_CHANGE);
});

test('virtio-rng fills the writable buffers with random bytes', () => {
  const { mem, r, w, bringUp } = transport(new VirtioRng());
  bringUp(V1);
  assert.equal(r(Reg.DeviceID), 4);
  mem.writeU64(DESC, BigInt(BUF)); mem.writeU32(DESC + 8, 64); mem.writeU16(DESC + 12, WRITE);
  mem.writeU16(AVAIL + 4, 0); mem.writeU16(AVAIL + 2, 1);
  w(Reg.QueueNotify, 0);
  assert.equal(mem.readU32(USED + 8), 64);
  assert.ok(mem.slice(BUF, 64).some((b) => b !== 0), 'random bytes arrived');
  assert.equal(mem.readU8(BUF + 64), 0, 'nothing past the buffer');
});
