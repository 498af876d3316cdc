// virtio-net without a guest: receiveq and transmitq rings built by hand in a GuestMemory,
// driven through the virtio-mmio transport; the backend is a recording one (the other end of
// the wire), so every frame in either direction can be checked byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { ensureDefaultImage } from '../images/build-image.js';
import { lendBackend } from '../src/vmm/net-option.js';
import { Machine } from '../src/machine/machine.js';

import { GuestMemory } from '../src/hw/memory.js';
import { VIRTQ_DESC_F_NEXT as NEXT, VIRTQ_DESC_F_WRITE as WRITE } from '../src/devices/virtio/queue.js';
import { INT_USED_BUFFER, Reg, Status, VirtioMmio } from '../src/devices/virtio/mmio.js';
import { ETHERNET_HEADER, NET_HDR_SIZE, NetConfig, NetFeature, RECEIVEQ, RX_QUEUE_FRAMES, TRANSMITQ, VIRTIO_NET_S_LINK_UP, VirtioNet } from '../src/devices/virtio/net.js';
import { MAX_ETHERNET_FRAME, type FrameOffload, type GuestOffloads, type NetBackend } from '../src/net/backend.js';
import { internetChecksum, pseudoHeaderSum } from '../src/net/user/checksum.js';
import { PROTO_TCP, writeIpv4Header } from '../src/net/user/ipv4.js';
import { buildTcp, TcpFlag, writeTcpHeader } from '../src/net/user/tcp-segment.js';
import { defaultMac, formatMac, parseMac } from '../src/net/mac.js';
import { BASE, driveDevice, QSIZE, RINGS } from './virtio-driver.js';

const RAM = 64 * 1024;
const RX_BUF = BASE + 0x8000;
const TX_BUF = BASE + 0xc000;
const MAC = '52:54:00:ab:cd:ef';

/** The host end of the wire: records what the guest sent, hands frames to the guest on demand. */
class RecordingBackend implements NetBackend {
  readonly name = 'recorder';
  readonly sent: Uint8Array[] = [];
  receive: ((frame: Uint8Array) => void) | null = null;
  closed = false;
  failSends = false;
  send(frame: Uint8Array): void {
    if (this.failSends) throw new Error('host socket gone');
    this.sent.push(Uint8Array.from(frame));
  }
  attach(receive: (frame: Uint8Array) => void): void { this.receive = receive; }
  close(): void { this.closed = true; }
  toGuest(frame: Uint8Array): void {
    assert.ok(this.receive, 'the device attached itself');
    this.receive(frame);
  }
}

/** An Ethernet frame of `length` bytes: broadcast destination, type 0x0800, a counting payload. */
function frame(length: number, seed = 1): Uint8Array {
  const f = new Uint8Array(length);
  for (let i = 0; i < length; i++) f[i] = (i * 13 + seed) & 0xff;
  if (length >= ETHERNET_HEADER) { f.fill(0xff, 0, 6); f[12] = 0x08; f[13] = 0x00; }
  return f;
}

function setup(opts: { bringUp?: boolean } = {}) {
  const backend = new RecordingBackend();
  let activity = 0;
  const logs: string[] = [];
  const dev = new VirtioNet({ backend, mac: parseMac(MAC), onActivity: () => activity++, log: (l) => logs.push(l) });
  const rig = driveDevice(dev, { features: (1 << NetFeature.MAC) | (1 << NetFeature.STATUS) | (1 << NetFeature.MTU), ram: RAM, logs, bringUp: opts.bringUp });
  const { mem } = rig;
  /** Writes a transmit request (12-byte header + frame) at TX_BUF + `at`. */
  const txRequest = (f: Uint8Array, at = 0, header = new Uint8Array(NET_HDR_SIZE)) => {
    mem.write(TX_BUF + at, header);
    mem.write(TX_BUF + at + NET_HDR_SIZE, f);
    return TX_BUF + at;
  };
  return { dev, backend, txRequest, activity: () => activity, ...rig };
}

test('MAC addresses: parse, format, defaults, and the errors for what a NIC cannot have', () => {
  assert.equal(formatMac(parseMac('52:54:00:AB:cd:0f')), '52:54:00:ab:cd:0f');
  assert.equal(formatMac(parseMac('02-00-00-00-00-01')), '02:00:00:00:00:01');
  assert.equal(formatMac(defaultMac(0)), '52:54:00:12:34:56');
  assert.equal(formatMac(defaultMac(1)), '52:54:00:12:34:57');
  assert.throws(() => parseMac('52:54:00:12:34'), /not six hex octets/);
  assert.throws(() => parseMac('52:54:00:12:34:5g'), /not six hex octets/);
  assert.throws(() => parseMac('52:54-00:12:34:56'), /not six hex octets/);
  assert.throws(() => parseMac('01:00:5e:00:00:01'), /multicast/);
  assert.throws(() => parseMac('00:00:00:00:00:00'), /all zeros/);
});

test('virtio-net: device ID 1 offers MAC, STATUS and MTU (no offloads); the configuration space holds MAC, link up and MTU 1500', () => {
  const { r, w, t, dev } = setup({ bringUp: false });
  assert.equal(r(Reg.DeviceID), 1);
  w(Reg.DeviceFeaturesSel, 0);
  const low = r(Reg.DeviceFeatures);
  assert.equal(low & ((1 << 24) - 1), (1 << NetFeature.MAC) | (1 << NetFeature.STATUS) | (1 << NetFeature.MTU), 'no CSUM, GUEST_CSUM, TSO, MRG_RXBUF, CTRL_VQ or MQ');
  assert.equal(formatMac(Uint8Array.from({ length: 6 }, (_, i) => t.read(Reg.Config + NetConfig.mac + i, 1))), MAC);
  assert.equal(t.read(Reg.Config + NetConfig.status, 2), VIRTIO_NET_S_LINK_UP);
  assert.equal(t.read(Reg.Config + NetConfig.mtu, 2), 1500);
  assert.equal(t.read(Reg.Config + 64, 4), 0, 'beyond the configuration space reads 0');
  w(Reg.QueueSel, 1);
  assert.equal(r(Reg.QueueNumMax), 256);
  w(Reg.QueueSel, 2);
  assert.equal(r(Reg.QueueNumMax), 0, 'only receiveq and transmitq');
  dev.close();
});

test('virtio-net: a transmitted frame reaches the backend without the header, across descriptors; counters count it', () => {
  const { backend, mem, r, irq, post, txRequest, usedIdx, usedLen, dev, logs } = setup();
  const f = frame(98, 7);
  const at = txRequest(f);
  // Header and the first 20 bytes in one descriptor, the rest in another, as a driver may split it.
  post(TRANSMITQ, 0, [[at, NET_HDR_SIZE + 20, 0], [at + NET_HDR_SIZE + 20, f.length - 20, 0]]);
  assert.equal(backend.sent.length, 1);
  assert.deepEqual(backend.sent[0], f);
  assert.equal(usedIdx(TRANSMITQ), 1);
  assert.equal(usedLen(TRANSMITQ, 0), 0, 'nothing written into transmit buffers');
  assert.equal(r(Reg.InterruptStatus), INT_USED_BUFFER);
  assert.equal(irq.at(-1), true);
  const big = frame(MAX_ETHERNET_FRAME, 3);
  post(TRANSMITQ, 2, [[txRequest(big, 0x200), NET_HDR_SIZE + big.length, 0]]);
  assert.deepEqual(backend.sent[1], big, 'a full 1514-byte frame passes');
  assert.deepEqual(dev.stats, { txPackets: 2, txBytes: 98 + MAX_ETHERNET_FRAME, txDropped: 0, rxPackets: 0, rxBytes: 0, rxDropped: 0 });
  assert.deepEqual(logs, []);
});

test('virtio-net: a frame from the backend lands in a posted buffer after a zeroed header with num_buffers 1, and wakes the machine', () => {
  const { backend, mem, r, w, post, usedIdx, usedLen, usedId, dev, activity, logs } = setup();
  mem.bytes.fill(0xcc, RX_BUF - BASE, RX_BUF - BASE + 0x2000);
  // Linux's small-buffer layout: one 1526-byte writable buffer (12-byte header + 1514).
  post(RECEIVEQ, 0, [[RX_BUF, NET_HDR_SIZE + MAX_ETHERNET_FRAME, WRITE]]);
  assert.equal(usedIdx(RECEIVEQ), 0, 'the buffer waits for a frame');
  const f = frame(60, 9);
  backend.toGuest(f);
  assert.equal(usedIdx(RECEIVEQ), 1);
  assert.equal(usedId(RECEIVEQ, 0), 0);
  assert.equal(usedLen(RECEIVEQ, 0), NET_HDR_SIZE + 60);
  assert.deepEqual(mem.slice(RX_BUF, NET_HDR_SIZE), Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0));
  assert.deepEqual(mem.slice(RX_BUF + NET_HDR_SIZE, 60), f);
  assert.equal(mem.bytes[RX_BUF - BASE + NET_HDR_SIZE + 60], 0xcc, 'nothing written past the frame');
  assert.equal(r(Reg.InterruptStatus), INT_USED_BUFFER);
  assert.equal(activity(), 1, 'onActivity wakes a machine sleeping in WFI');
  w(Reg.InterruptACK, INT_USED_BUFFER);
  // A chain whose header and frame are split over two buffers.
  post(RECEIVEQ, 1, [[RX_BUF + 0x800, 10, WRITE], [RX_BUF + 0x900, 200, WRITE]]);
  const g = frame(100, 4);
  backend.toGuest(g);
  assert.equal(usedLen(RECEIVEQ, 1), NET_HDR_SIZE + 100);
  const got = new Uint8Array([...mem.slice(RX_BUF + 0x800, 10), ...mem.slice(RX_BUF + 0x900, NET_HDR_SIZE + 100 - 10)]);
  assert.deepEqual(got.subarray(NET_HDR_SIZE), g);
  assert.deepEqual(dev.stats, { txPackets: 0, txBytes: 0, txDropped: 0, rxPackets: 2, rxBytes: 160, rxDropped: 0 });
  assert.deepEqual(logs, []);
});

test(`virtio-net: without receive buffers frames wait, up to ${RX_QUEUE_FRAMES}, then are dropped and counted; a reset discards them`, () => {
  const { backend, mem, post, usedIdx, usedLen, dev, w, bringUp } = setup();
  for (let i = 0; i < RX_QUEUE_FRAMES + 10; i++) backend.toGuest(frame(60 + (i % 4), i));
  assert.equal(dev.pendingFrames, RX_QUEUE_FRAMES);
  assert.equal(dev.stats.rxDropped, 10);
  // Posting buffers delivers the oldest frames first.
  post(RECEIVEQ, 0, [[RX_BUF, 2048, WRITE]]);
  post(RECEIVEQ, 1, [[RX_BUF + 0x1000, 2048, WRITE]]);
  assert.equal(usedIdx(RECEIVEQ), 2);
  assert.equal(usedLen(RECEIVEQ, 0), NET_HDR_SIZE + 60);
  assert.deepEqual(mem.slice(RX_BUF + NET_HDR_SIZE, 60), frame(60, 0));
  assert.deepEqual(mem.slice(RX_BUF + 0x1000 + NET_HDR_SIZE, 61), frame(61, 1));
  assert.equal(dev.pendingFrames, RX_QUEUE_FRAMES - 2);
  w(Reg.Status, 0);
  assert.equal(dev.pendingFrames, 0, 'reset empties the receive FIFO');
  assert.equal(dev.stats.rxDropped, 10 + RX_QUEUE_FRAMES - 2);
  bringUp();
  assert.equal(dev.stats.rxPackets, 2);
});

test('virtio-net: malformed requests fail alone (dropped, counted, one line each), the device keeps working', () => {
  const { backend, post, txRequest, usedIdx, usedLen, r, dev, logs, mem } = setup();
  const f = frame(64);
  // Transmit: a device-writable descriptor in the chain.
  post(TRANSMITQ, 0, [[txRequest(f), NET_HDR_SIZE + f.length, 0], [TX_BUF + 0x800, 16, WRITE]]);
  // Transmit: shorter than header + Ethernet header; longer than header + 1514.
  post(TRANSMITQ, 2, [[txRequest(f), NET_HDR_SIZE + 13, 0]]);
  post(TRANSMITQ, 3, [[txRequest(frame(1600)), NET_HDR_SIZE + 1515, 0]]);
  // Transmit: the header asks for checksum offload, which was not offered.
  post(TRANSMITQ, 4, [[txRequest(f, 0, Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), NET_HDR_SIZE + f.length, 0]]);
  assert.equal(backend.sent.length, 0);
  assert.equal(usedIdx(TRANSMITQ), 4, 'every failed request is returned');
  assert.equal(dev.stats.txDropped, 4);
  assert.match(logs[0], /^virtio-net: transmit chain 0 has device-writable descriptors; dropped$/);
  assert.match(logs[1], /^virtio-net: transmit chain 2 holds 25 bytes; .* dropped$/);
  assert.match(logs[2], /^virtio-net: transmit chain 3 holds 1527 bytes; .* dropped$/);
  assert.match(logs[3], /^virtio-net: transmit chain 4 asks for checksum or segmentation offload \(flags 1, gso_type 0\)/);
  // Receive: a chain with a device-readable buffer is returned unused; the frame waits.
  post(RECEIVEQ, 0, [[RX_BUF, 64, 0], [RX_BUF + 0x100, 2048, WRITE]]);
  backend.toGuest(frame(80, 5));
  assert.equal(usedIdx(RECEIVEQ), 1);
  assert.equal(usedLen(RECEIVEQ, 0), 0);
  assert.equal(dev.pendingFrames, 1);
  // Receive: a buffer too small for the frame is returned empty; that frame is dropped.
  post(RECEIVEQ, 2, [[RX_BUF + 0x1000, NET_HDR_SIZE + 79, WRITE]]);
  assert.equal(usedLen(RECEIVEQ, 1), 0);
  assert.equal(dev.pendingFrames, 0);
  assert.equal(dev.stats.rxDropped, 1);
  // Frames of impossible sizes from the backend never reach the guest.
  backend.toGuest(new Uint8Array(13));
  backend.toGuest(new Uint8Array(MAX_ETHERNET_FRAME + 1));
  assert.equal(dev.stats.rxDropped, 3);
  assert.equal(dev.pendingFrames, 0);
  // A backend that throws costs that frame only.
  backend.failSends = true;
  post(TRANSMITQ, 5, [[txRequest(f), NET_HDR_SIZE + f.length, 0]]);
  assert.equal(dev.stats.txDropped, 5);
  assert.match(logs.at(-1) ?? '', /recorder refused a 64-byte frame: host socket gone/);
  backend.failSends = false;
  // None of that needed a reset: the next good frames go through in both directions.
  assert.equal(r(Reg.Status) & Status.DeviceNeedsReset, 0);
  post(TRANSMITQ, 6, [[txRequest(f), NET_HDR_SIZE + f.length, 0]]);
  assert.deepEqual(backend.sent, [f]);
  post(RECEIVEQ, 3, [[RX_BUF + 0x1800, 2048, WRITE]]);
  backend.toGuest(frame(70, 2));
  assert.deepEqual(mem.slice(RX_BUF + 0x1800 + NET_HDR_SIZE, 70), frame(70, 2));
  assert.equal(logs.length, 9);
});

test('virtio-net: a broken ring (buffer outside RAM, descriptor loop) sets DEVICE_NEEDS_RESET with one line; host frames stay queued', () => {
  {
    const { backend, post, r, logs, dev } = setup();
    post(RECEIVEQ, 0, [[BASE + RAM - 8, 2048, WRITE]], false);
    backend.toGuest(frame(60));
    assert.deepEqual(logs, ['virtio-net: queue 0: descriptor 0 has buffer 0x8000fff8 (+2048 bytes) outside RAM; device needs reset']);
    assert.ok(r(Reg.Status) & Status.DeviceNeedsReset);
    assert.equal(dev.pendingFrames, 1);
    backend.toGuest(frame(61));
    assert.equal(logs.length, 1, 'silent until the driver resets the device');
  }
  {
    const { backend, mem, w, r, logs } = setup();
    const { desc, avail } = RINGS[TRANSMITQ];
    // Descriptor 0 -> 1 -> 0.
    [[0, 1], [1, 0]].forEach(([i, next]) => {
      mem.writeU64(desc + 16 * i, BigInt(TX_BUF)); mem.writeU32(desc + 16 * i + 8, 64);
      mem.writeU16(desc + 16 * i + 12, NEXT); mem.writeU16(desc + 16 * i + 14, next);
    });
    mem.writeU16(avail + 4, 0); mem.writeU16(avail + 2, 1);
    w(Reg.QueueNotify, TRANSMITQ);
    assert.equal(logs.length, 1);
    assert.match(logs[0], /^virtio-net: queue 1: chain from head 0 is longer than 8 descriptors \(a loop\); device needs reset$/);
    assert.ok(r(Reg.Status) & Status.DeviceNeedsReset);
    assert.equal(backend.sent.length, 0);
  }
});

test('virtio-net: close() closes the backend', () => {
  const { dev, backend } = setup();
  dev.close();
  assert.equal(backend.closed, true);
});

test('Machine: network devices take the slots after the disks and before console and RNG, with their MACs; close() closes the backends', async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-net-machine-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const disk = path.join(dir, 'disk.img');
  fs.writeFileSync(disk, new Uint8Array(4096));
  const backends = [new RecordingBackend(), new RecordingBackend()];
  const machine = new Machine({
    cpus: 1,
    memoryBytes: 128 << 20,
    boot: { kind: 'linux', kernel: fs.readFileSync(image.kernel), kernelName: image.kernel, cmdline: '' },
    onConsoleOutput: () => {},
    virtio: { disks: [{ path: disk }], nets: [{ backend: backends[0] }, { backend: backends[1], mac: MAC }], console: { output: () => {} }, rng: true },
  });
  assert.deepEqual(machine.virtio.map((v) => v.transport.device.deviceId), [2, 1, 1, 3, 4], 'disk, net, net, console, rng');
  assert.deepEqual(machine.virtio.map((v) => v.irq), [1, 2, 3, 4, 5]);
  assert.deepEqual(machine.nets.map((n) => formatMac(n.mac)), ['52:54:00:12:34:56', MAC]);
  machine.close();
  assert.deepEqual(backends.map((b) => b.closed), [true, true]);
  assert.throws(() => new Machine({
    cpus: 1, memoryBytes: 128 << 20, boot: { kind: 'linux', kernel: fs.readFileSync(image.kernel), kernelName: image.kernel, cmdline: '' },
    onConsoleOutput: () => {}, virtio: { nets: [{ backend: new RecordingBackend(), mac: '01:02:03:04:05:06' }] },
  }), /multicast/);
});

test('lendBackend: closing the loan only detaches the receiver; the backend stays open for the next machine', () => {
  const backend = new RecordingBackend();
  const loan = lendBackend(backend);
  const got: Uint8Array[] = [];
  loan.attach((f) => got.push(f));
  backend.toGuest(frame(60));
  loan.send(frame(20));
  loan.close();
  assert.equal(backend.closed, false);
  backend.toGuest(frame(61));
  assert.equal(got.length, 1, 'no frames reach the closed loan');
  assert.equal(backend.sent.length, 1);
  assert.equal(loan.name, 'recorder');
});

// ---- property: adversarial descriptor tables on both queues ----

const INDIRECT_TABLE = BASE + 0x6000;
/** Anything at all: addresses anywhere in 64 bits, any length, any flags. */
const adversarialDesc = fc.record({
  addr: fc.oneof(
    fc.integer({ min: 0, max: RAM - 1 }).map((o) => BigInt(BASE + o)),
    fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    fc.constantFrom(BigInt(RX_BUF), BigInt(TX_BUF), BigInt(BASE + RAM - 1), BigInt(BASE - 1), BigInt(INDIRECT_TABLE)),
  ),
  len: fc.oneof(fc.integer({ min: 0, max: 2048 }), fc.constantFrom(NET_HDR_SIZE, NET_HDR_SIZE + ETHERNET_HEADER, NET_HDR_SIZE + MAX_ETHERNET_FRAME, 16, 0xffff_ffff), fc.integer({ min: 0, max: 0xffff_ffff })),
  flags: fc.integer({ min: 0, max: 7 }),
  next: fc.integer({ min: 0, max: QSIZE + 1 }),
});
/** What a driver might post, give or take: a buffer inside the buffer area, no INDIRECT. */
const plausibleDesc = fc.record({
  addr: fc.integer({ min: RX_BUF - BASE, max: RAM - 1600 }).map((o) => BigInt(BASE + o)),
  len: fc.oneof(fc.integer({ min: 0, max: 1600 }), fc.constantFrom(NET_HDR_SIZE, NET_HDR_SIZE + 60, NET_HDR_SIZE + MAX_ETHERNET_FRAME)),
  flags: fc.constantFrom(0, 0, WRITE, WRITE, WRITE, NEXT, NEXT | WRITE),
  next: fc.integer({ min: 0, max: QSIZE - 1 }),
});
const descArb = fc.oneof({ arbitrary: plausibleDesc, weight: 12 }, { arbitrary: adversarialDesc, weight: 1 });
const queueArb = fc.record({
  table: fc.array(descArb, { minLength: QSIZE, maxLength: QSIZE }),
  heads: fc.array(fc.oneof({ arbitrary: fc.integer({ min: 0, max: QSIZE - 1 }), weight: 30 }, fc.constant(QSIZE + 1)), { maxLength: QSIZE + 2 }),
});

test('property: random and adversarial chains never crash the host, never write outside rx buffers and used rings, and account for every frame', () => {
  /** How many runs reached each outcome, so the property is known to cover them all. */
  const seen = { delivered: 0, transmitted: 0, failedRequest: 0, needsReset: 0 };
  fc.assert(fc.property(
    queueArb, queueArb, fc.array(descArb, { maxLength: 4 }),
    fc.array(fc.integer({ min: 0, max: 1600 }), { maxLength: 6 }),
    fc.array(fc.constantFrom(RECEIVEQ, TRANSMITQ, 7), { maxLength: 4 }),
    fc.boolean(), fc.boolean(),
    (rx, tx, indirect, frameSizes, kicks, negotiateIndirect, negotiateEventIdx) => {
      const backend = new RecordingBackend();
      const logs: string[] = [];
      const dev = new VirtioNet({ backend, mac: defaultMac(0), log: (l) => logs.push(l) });
      const mem = new GuestMemory(BASE, RAM);
      for (let i = 0; i < RAM; i += 4) mem.view.setUint32(i, Math.imul(i + 1, 0x9e3779b1), true);
      // Zeros in the transmit area read as a request header that asks for no offload.
      mem.bytes.fill(0, TX_BUF - BASE);
      const t = new VirtioMmio(mem, dev, { set: () => {} }, (l) => logs.push(l));
      const w = (off: number, v: number) => t.write(off, 4, v);
      w(Reg.Status, Status.Acknowledge | Status.Driver);
      w(Reg.DriverFeaturesSel, 0); w(Reg.DriverFeatures, (negotiateIndirect ? 1 << 28 : 0) | (negotiateEventIdx ? 1 << 29 : 0));
      w(Reg.DriverFeaturesSel, 1); w(Reg.DriverFeatures, 1);
      w(Reg.Status, Status.Acknowledge | Status.Driver | Status.FeaturesOk);
      const writeTable = (base: number, list: { addr: bigint; len: number; flags: number; next: number }[]) => list.forEach((d, i) => {
        mem.writeU64(base + 16 * i, d.addr); mem.writeU32(base + 16 * i + 8, d.len);
        mem.writeU16(base + 16 * i + 12, d.flags); mem.writeU16(base + 16 * i + 14, d.next);
      });
      [rx, tx].forEach((q, i) => {
        writeTable(RINGS[i].desc, q.table);
        q.heads.forEach((h, n) => mem.writeU16(RINGS[i].avail + 4 + 2 * (n % QSIZE), h));
        mem.writeU16(RINGS[i].avail + 2, q.heads.length);
        w(Reg.QueueSel, i); w(Reg.QueueNum, QSIZE);
        w(Reg.QueueDescLow, RINGS[i].desc); w(Reg.QueueDriverLow, RINGS[i].avail); w(Reg.QueueDeviceLow, RINGS[i].used);
        w(Reg.QueueReady, 1);
      });
      writeTable(INDIRECT_TABLE, indirect);
      w(Reg.Status, Status.Acknowledge | Status.Driver | Status.FeaturesOk | Status.DriverOk);

      // The device may write only the used rings and buffers that a receive descriptor marks
      // device-writable (directly or in the indirect table).
      const allowed = new Uint8Array(RAM);
      for (const ring of RINGS) allowed.fill(1, ring.used - BASE, ring.used - BASE + 6 + 8 * QSIZE);
      for (const d of [...rx.table, ...indirect]) {
        const addr = Number(d.addr);
        if (d.flags & WRITE && mem.contains(addr, Math.min(d.len, RAM))) allowed.fill(1, addr - BASE, Math.min(RAM, addr - BASE + d.len));
      }
      const before = Uint8Array.from(mem.bytes);

      const offered = frameSizes.map((n, i) => frame(n, i));
      offered.slice(0, 3).forEach((f) => backend.toGuest(f));
      for (const q of kicks) w(Reg.QueueNotify, q);
      offered.slice(3).forEach((f) => backend.toGuest(f));
      w(Reg.QueueNotify, TRANSMITQ);

      for (let i = 0; i < RAM; i++) {
        if (!allowed[i] && mem.bytes[i] !== before[i]) assert.fail(`byte at 0x${(BASE + i).toString(16)} changed outside the receive buffers and used rings`);
      }
      for (const f of backend.sent) assert.ok(f.length >= ETHERNET_HEADER && f.length <= MAX_ETHERNET_FRAME, `sent a ${f.length}-byte frame`);
      const s = dev.stats;
      assert.equal(s.txPackets, backend.sent.length);
      assert.equal(s.rxPackets + s.rxDropped + dev.pendingFrames, offered.length, 'every frame is delivered, dropped or waiting');
      const needsReset = (t.read(Reg.Status, 4) & Status.DeviceNeedsReset) !== 0;
      const resetLines = logs.filter((l) => l.endsWith('device needs reset'));
      assert.equal(resetLines.length, needsReset ? 1 : 0, 'NEEDS_RESET is logged exactly once');
      if (s.rxPackets > 0) seen.delivered++;
      if (s.txPackets > 0) seen.transmitted++;
      if (s.txDropped > 0 || logs.length > resetLines.length) seen.failedRequest++;
      if (needsReset) seen.needsReset++;
    },
  ), { numRuns: 500 });
  console.log(`property outcomes over 500 runs: ${JSON.stringify(seen)}`);
  for (const [outcome, runs] of Object.entries(seen)) assert.ok(runs > 0, `no run reached "${outcome}"`);
});

/** A backend like the user-mode stack's: takes and makes offloaded frames, and sees what the guest accepted. */
class OffloadingBackend implements NetBackend {
  readonly name = 'offloader';
  readonly offloads = true;
  readonly sent: { frame: Uint8Array; offload?: FrameOffload }[] = [];
  receive: ((frame: Uint8Array, offload?: FrameOffload) => void) | null = null;
  guestOffloads: (() => GuestOffloads) | null = null;
  send(frame: Uint8Array, offload?: FrameOffload): void { this.sent.push({ frame: Uint8Array.from(frame), offload }); }
  attach(receive: (frame: Uint8Array, offload?: FrameOffload) => void, guestOffloads?: () => GuestOffloads): void {
    this.receive = receive;
    this.guestOffloads = guestOffloads ?? null;
  }
  close(): void {}
}

const GUEST_IP = 0x0a00020f;
const HOST_IP = 0x0a000202;
/** An Ethernet + IPv4 + TCP frame with `payload` bytes, its TCP checksum left partial (pseudo header only), as the stack sends it. */
function partialTcpFrame(payload: number): Uint8Array {
  const f = new Uint8Array(14 + 20 + 20 + payload);
  for (let i = 54; i < f.length; i++) f[i] = (i * 7) & 0xff;
  f.fill(0x52, 0, 6); f[12] = 0x08;
  writeIpv4Header(f, 14, HOST_IP, GUEST_IP, PROTO_TCP, 1, f.length - 14);
  writeTcpHeader(f, 34, HOST_IP, GUEST_IP, { srcPort: 80, dstPort: 40000, seq: 1, ack: 2, flags: TcpFlag.ack, window: 1000 }, true);
  return f;
}
const tcpChecksumOk = (f: Uint8Array): boolean => internetChecksum(f, 34, f.length, pseudoHeaderSum(HOST_IP, GUEST_IP, PROTO_TCP, f.length - 34)) === 0;

function offloadSetup(features: number) {
  const backend = new OffloadingBackend();
  const logs: string[] = [];
  const dev = new VirtioNet({ backend, mac: parseMac(MAC), log: (l) => logs.push(l) });
  const rig = driveDevice(dev, { features, ram: RAM, logs });
  const txRequest = (f: Uint8Array, header: Uint8Array) => {
    rig.mem.write(TX_BUF, header);
    rig.mem.write(TX_BUF + NET_HDR_SIZE, f);
    return TX_BUF;
  };
  return { backend, dev, txRequest, ...rig };
}
const BASIC = (1 << NetFeature.MAC) | (1 << NetFeature.STATUS) | (1 << NetFeature.MTU);
const ALL_OFFLOADS = BASIC | (1 << NetFeature.CSUM) | (1 << NetFeature.GUEST_CSUM) | (1 << NetFeature.HOST_TSO4) | (1 << NetFeature.GUEST_TSO4) | (1 << NetFeature.MRG_RXBUF);

test('virtio-net offloads: offered only with an offloading backend; a 3000-byte TCP segment goes to the guest in merged buffers with NEEDS_CSUM and GSO_TCPV4', () => {
  assert.equal(new VirtioNet({ backend: new RecordingBackend(), mac: parseMac(MAC) }).features & BigInt(ALL_OFFLOADS & ~BASIC), 0n, 'a TAP or passt gets no offloads');
  const { backend, dev, mem, post, usedIdx, usedLen, logs } = offloadSetup(ALL_OFFLOADS);
  assert.equal(dev.features & BigInt(ALL_OFFLOADS), BigInt(ALL_OFFLOADS));
  assert.deepEqual(backend.guestOffloads?.(), { checksum: true, tcp4Segmentation: true });
  // Three 1100-byte buffers (Linux's mergeable buffers are one descriptor each): too few bytes for the frame until the third.
  post(RECEIVEQ, 0, [[RX_BUF, 1100, WRITE]]);
  post(RECEIVEQ, 1, [[RX_BUF + 0x800, 1100, WRITE]]);
  const f = partialTcpFrame(3000 - 54);
  backend.receive!(f, { checksum: { start: 34, offset: 16 }, tcp4SegmentSize: 1460 });
  assert.equal(usedIdx(RECEIVEQ), 0, 'two buffers hold 2200 bytes: the frame waits, nothing is taken');
  post(RECEIVEQ, 2, [[RX_BUF + 0x1000, 1100, WRITE]]);
  assert.equal(usedIdx(RECEIVEQ), 3, 'the frame took all three buffers');
  assert.deepEqual([0, 1, 2].map((n) => usedLen(RECEIVEQ, n)), [1100, 1100, NET_HDR_SIZE + 3000 - 2200]);
  const header = mem.slice(RX_BUF, NET_HDR_SIZE);
  // flags NEEDS_CSUM, gso_type TCPV4, hdr_len 54, gso_size 1460, csum_start 34, csum_offset 16, num_buffers 3
  assert.deepEqual([...header], [1, 1, 54, 0, 0xb4, 0x05, 34, 0, 16, 0, 3, 0]);
  const got = new Uint8Array([...mem.slice(RX_BUF + NET_HDR_SIZE, 1100 - NET_HDR_SIZE), ...mem.slice(RX_BUF + 0x800, 1100), ...mem.slice(RX_BUF + 0x1000, 3000 - 2200 + NET_HDR_SIZE)]);
  assert.deepEqual(got, f, 'the frame as the backend gave it: the checksum stays for the guest to take as partial');
  assert.deepEqual(dev.stats, { txPackets: 0, txBytes: 0, txDropped: 0, rxPackets: 1, rxBytes: 3000, rxDropped: 0 });
  assert.deepEqual(logs, []);
});

test('virtio-net offloads: a driver without GUEST_CSUM gets the checksum completed by the device, and no segment above the MTU', () => {
  const { backend, mem, post, usedIdx, usedLen, dev, logs } = offloadSetup(BASIC | (1 << NetFeature.CSUM));
  assert.deepEqual(backend.guestOffloads?.(), { checksum: false, tcp4Segmentation: false });
  post(RECEIVEQ, 0, [[RX_BUF, NET_HDR_SIZE + MAX_ETHERNET_FRAME, WRITE]]);
  const f = partialTcpFrame(1000);
  assert.equal(tcpChecksumOk(f), false, 'a partial checksum does not verify');
  backend.receive!(f, { checksum: { start: 34, offset: 16 } });
  assert.equal(usedLen(RECEIVEQ, 0), NET_HDR_SIZE + f.length);
  assert.deepEqual(mem.slice(RX_BUF, NET_HDR_SIZE), Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0), 'a plain header');
  const delivered = mem.slice(RX_BUF + NET_HDR_SIZE, f.length);
  assert.ok(tcpChecksumOk(delivered), 'the guest gets a frame whose TCP checksum verifies');
  const full = buildTcp(HOST_IP, GUEST_IP, { srcPort: 80, dstPort: 40000, seq: 1, ack: 2, flags: TcpFlag.ack, window: 1000, payload: f.subarray(54) });
  assert.deepEqual(delivered.subarray(34), full, 'the same checksum the stack computes for a guest without the offload');
  post(RECEIVEQ, 1, [[RX_BUF + 0x1000, 0x4000, WRITE]]);
  backend.receive!(partialTcpFrame(3000), { checksum: { start: 34, offset: 16 }, tcp4SegmentSize: 1460 });
  assert.equal(usedIdx(RECEIVEQ), 1, 'a segment above the MTU is dropped for a driver without GUEST_TSO4');
  assert.equal(dev.stats.rxDropped, 1);
  assert.match(logs.join('\n'), /GUEST_TSO4 not negotiated/);
});

test('virtio-net offloads: the guest\'s TSO and partial-checksum requests reach the backend when negotiated, are dropped when not', () => {
  const tsoHeader = Uint8Array.of(1, 1, 54, 0, 0xb4, 0x05, 34, 0, 16, 0, 0, 0);
  const f = partialTcpFrame(4000 - 54);
  {
    const { backend, txRequest, post, dev, logs } = offloadSetup(ALL_OFFLOADS);
    post(TRANSMITQ, 0, [[txRequest(f, tsoHeader), NET_HDR_SIZE + f.length, 0]]);
    assert.equal(backend.sent.length, 1);
    assert.deepEqual(backend.sent[0].frame, f);
    assert.deepEqual(backend.sent[0].offload, { checksum: { start: 34, offset: 16 }, tcp4SegmentSize: 1460 });
    // A partial checksum pointing past the frame, and a TSO request without a segment size.
    post(TRANSMITQ, 1, [[txRequest(f.subarray(0, 60), Uint8Array.of(1, 0, 0, 0, 0, 0, 50, 0, 16, 0, 0, 0)), NET_HDR_SIZE + 60, 0]]);
    post(TRANSMITQ, 2, [[txRequest(f, Uint8Array.of(1, 1, 54, 0, 0, 0, 34, 0, 16, 0, 0, 0)), NET_HDR_SIZE + f.length, 0]]);
    assert.equal(backend.sent.length, 1);
    assert.equal(dev.stats.txDropped, 2);
    assert.match(logs.join('\n'), /lies outside the 60-byte frame[\s\S]*needs a segment size/);
  }
  {
    const { backend, txRequest, post, dev, logs } = offloadSetup(BASIC);
    post(TRANSMITQ, 0, [[txRequest(f, tsoHeader), NET_HDR_SIZE + f.length, 0]]);
    post(TRANSMITQ, 1, [[txRequest(f.subarray(0, 1000), Uint8Array.of(1, 0, 0, 0, 0, 0, 34, 0, 16, 0, 0, 0)), NET_HDR_SIZE + 1000, 0]]);
    assert.equal(backend.sent.length, 0, 'a driver that did not negotiate CSUM/HOST_TSO4 cannot use them');
    assert.equal(dev.stats.txDropped, 2);
    assert.match(logs.join('\n'), /holds 4012 bytes[\s\S]*not negotiated/);
  }
});
