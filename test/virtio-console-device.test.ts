// virtio-console without a guest: receiveq and transmitq rings built by hand in a GuestMemory
// and driven through the virtio-mmio transport.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { GuestMemory } from '../src/machine/memory.js';
import { VIRTQ_DESC_F_NEXT as NEXT, VIRTQ_DESC_F_WRITE as WRITE } from '../src/devices/virtio/queue.js';
import { INT_CONFIG_CHANGE, INT_USED_BUFFER, Reg, Status, VirtioMmio } from '../src/devices/virtio/mmio.js';
import { ConsoleFeature, RECEIVEQ, TRANSMITQ, VirtioConsole } from '../src/devices/virtio/console.js';

const BASE = 0x8000_0000;
const QSIZE = 8;
/** Ring addresses per queue: 0 = receiveq, 1 = transmitq. */
const RINGS = [
  { desc: BASE + 0x0000, avail: BASE + 0x1000, used: BASE + 0x2000 },
  { desc: BASE + 0x3000, avail: BASE + 0x4000, used: BASE + 0x5000 },
];
const RX_BUF = BASE + 0x8000;
const TX_BUF = BASE + 0xa000;

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function setup(opts: { bringUp?: boolean } = {}) {
  const out: string[] = [];
  const dev = new VirtioConsole({ output: (d) => out.push(dec(d)), cols: 132, rows: 43 });
  const mem = new GuestMemory(BASE, 64 * 1024);
  const irq: boolean[] = [];
  const logs: string[] = [];
  const t = new VirtioMmio(mem, dev, { set: (l) => irq.push(l) }, (l) => logs.push(l));
  const r = (off: number) => t.read(off, 4);
  const w = (off: number, v: number) => t.write(off, 4, v);
  const bringUp = () => {
    w(Reg.Status, 0);
    w(Reg.Status, Status.Acknowledge | Status.Driver);
    w(Reg.DriverFeaturesSel, 0); w(Reg.DriverFeatures, 1 << ConsoleFeature.SIZE);
    w(Reg.DriverFeaturesSel, 1); w(Reg.DriverFeatures, 1);
    w(Reg.Status, Status.Acknowledge | Status.Driver | Status.FeaturesOk);
    RINGS.forEach((q, i) => {
      w(Reg.QueueSel, i);
      w(Reg.QueueNum, QSIZE);
      w(Reg.QueueDescLow, q.desc); w(Reg.QueueDriverLow, q.avail); w(Reg.QueueDeviceLow, q.used);
      w(Reg.QueueReady, 1);
    });
    w(Reg.Status, Status.Acknowledge | Status.Driver | Status.FeaturesOk | Status.DriverOk);
  };
  if (opts.bringUp ?? true) bringUp();
  const availIdx = [0, 0];
  /** Posts one chain of `bufs` ([addr, len, flags]) on queue `qi`, descriptors from `first`; notifies unless told not to. */
  const post = (qi: number, first: number, bufs: [number, number, number][], notify = true) => {
    const { desc, avail } = RINGS[qi];
    bufs.forEach(([addr, len, flags], i) => {
      const at = desc + 16 * (first + i);
      mem.writeU64(at, BigInt(addr)); mem.writeU32(at + 8, len);
      mem.writeU16(at + 12, flags | (i < bufs.length - 1 ? NEXT : 0)); mem.writeU16(at + 14, first + i + 1);
    });
    mem.writeU16(avail + 4 + 2 * (availIdx[qi] % QSIZE), first);
    availIdx[qi] = (availIdx[qi] + 1) & 0xffff;
    mem.writeU16(avail + 2, availIdx[qi]);
    if (notify) w(Reg.QueueNotify, qi);
  };
  const usedIdx = (qi: number) => mem.readU16(RINGS[qi].used + 2);
  const usedLen = (qi: number, n: number) => mem.readU32(RINGS[qi].used + 4 + 8 * (n % QSIZE) + 4);
  return { dev, mem, t, r, w, irq, logs, out, post, usedIdx, usedLen, bringUp };
}

test('virtio-console: device ID 3, F_SIZE with cols/rows in the configuration space, two queues', () => {
  const { r, w, t } = setup({ bringUp: false });
  assert.equal(r(Reg.DeviceID), 3);
  w(Reg.DeviceFeaturesSel, 0);
  assert.equal(r(Reg.DeviceFeatures) & 0b111, 1 << ConsoleFeature.SIZE, 'F_SIZE, no MULTIPORT, no EMERG_WRITE');
  assert.equal(t.read(Reg.Config, 2), 132);
  assert.equal(t.read(Reg.Config + 2, 2), 43);
  assert.equal(r(Reg.Config), (43 << 16) | 132);
  w(Reg.QueueSel, 1);
  assert.equal(r(Reg.QueueNumMax), 64);
  w(Reg.QueueSel, 2);
  assert.equal(r(Reg.QueueNumMax), 0, 'only receiveq and transmitq');
});

test('virtio-console: transmitq chains go to the host sink, returned with 0 bytes written', () => {
  const { mem, r, w, irq, out, post, usedIdx, usedLen, logs } = setup();
  mem.write(TX_BUF, enc('hello-'));
  mem.write(TX_BUF + 0x100, enc('hvc\n'));
  post(TRANSMITQ, 0, [[TX_BUF, 6, 0], [TX_BUF + 0x100, 4, 0]]);
  assert.deepEqual(out, ['hello-hvc\n']);
  assert.equal(usedIdx(TRANSMITQ), 1);
  assert.equal(usedLen(TRANSMITQ, 0), 0);
  assert.equal(r(Reg.InterruptStatus), INT_USED_BUFFER);
  assert.equal(irq.at(-1), true);
  w(Reg.InterruptACK, INT_USED_BUFFER);
  mem.write(TX_BUF, enc('x'));
  post(TRANSMITQ, 2, [[TX_BUF, 1, 0]]);
  assert.deepEqual(out, ['hello-hvc\n', 'x']);
  assert.deepEqual(logs, []);
});

test('virtio-console: host input waits for receive buffers, is never dropped, and fills them in order', () => {
  const { dev, mem, r, w, out, post, usedIdx, usedLen, logs } = setup();
  // Input before any receive buffer is queued.
  dev.sendInput(enc('from-'));
  dev.sendInput(enc('host\n'));
  assert.equal(dev.pendingInput, 10);
  assert.equal(usedIdx(RECEIVEQ), 0);
  // The driver posts a 4-byte buffer and a 3+3-byte chain; the notify delivers what fits.
  post(RECEIVEQ, 0, [[RX_BUF, 4, WRITE]]);
  assert.equal(usedIdx(RECEIVEQ), 1);
  assert.equal(usedLen(RECEIVEQ, 0), 4);
  assert.equal(dec(mem.slice(RX_BUF, 4)), 'from');
  assert.equal(r(Reg.InterruptStatus), INT_USED_BUFFER);
  w(Reg.InterruptACK, INT_USED_BUFFER);
  post(RECEIVEQ, 1, [[RX_BUF + 0x100, 3, WRITE], [RX_BUF + 0x200, 3, WRITE]]);
  assert.equal(usedLen(RECEIVEQ, 1), 6);
  assert.equal(dec(mem.slice(RX_BUF + 0x100, 3)) + dec(mem.slice(RX_BUF + 0x200, 3)), '-host\n');
  assert.equal(dev.pendingInput, 0);
  // A posted buffer with no input pending stays with the device...
  post(RECEIVEQ, 3, [[RX_BUF + 0x300, 64, WRITE]]);
  assert.equal(usedIdx(RECEIVEQ), 2);
  w(Reg.InterruptACK, INT_USED_BUFFER);
  // ...until input arrives: the device kicks its own queue and interrupts.
  dev.sendInput(enc('late'));
  assert.equal(usedIdx(RECEIVEQ), 3);
  assert.equal(usedLen(RECEIVEQ, 2), 4);
  assert.equal(dec(mem.slice(RX_BUF + 0x300, 4)), 'late');
  assert.equal(r(Reg.InterruptStatus), INT_USED_BUFFER);
  assert.deepEqual(out, [], 'receive never echoes to the sink');
  assert.deepEqual(logs, []);
});

test('virtio-console: input before the driver is ready, or across a reset, is kept', () => {
  const { dev, mem, w, post, usedIdx, bringUp } = setup({ bringUp: false });
  dev.sendInput(enc('early'));
  bringUp();
  w(Reg.Status, 0);
  dev.sendInput(enc('!'));
  bringUp();
  post(RECEIVEQ, 0, [[RX_BUF, 16, WRITE]]);
  assert.equal(usedIdx(RECEIVEQ), 1);
  assert.equal(dec(mem.slice(RX_BUF, 6)), 'early!');
});

test('virtio-console: resize updates cols/rows and raises a configuration-change interrupt', () => {
  const { dev, t, r } = setup();
  const gen = r(Reg.ConfigGeneration);
  dev.resize(100, 30);
  assert.equal(t.read(Reg.Config, 2), 100);
  assert.equal(t.read(Reg.Config + 2, 2), 30);
  assert.equal(r(Reg.ConfigGeneration), gen + 1);
  assert.equal(r(Reg.InterruptStatus), INT_CONFIG_CHANGE);
});

test('virtio-console: a malformed receive chain found on a host kick needs reset, never throws', () => {
  const { dev, r, post, logs } = setup();
  // A device-readable buffer after a writable one, posted without a notify.
  post(RECEIVEQ, 0, [[RX_BUF, 4, WRITE], [RX_BUF + 8, 4, 0]], false);
  dev.sendInput(enc('x'));
  assert.equal(logs.length, 1);
  assert.match(logs[0], /^virtio-console: queue 0: descriptor 1 is device-readable but follows a device-writable descriptor/);
  assert.ok(r(Reg.Status) & Status.DeviceNeedsReset);
  assert.equal(dev.pendingInput, 1, 'the input is still queued');
});
