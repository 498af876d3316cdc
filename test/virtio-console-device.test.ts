// virtio-console without a guest: receiveq and transmitq rings built by hand in a GuestMemory
// and driven through the virtio-mmio transport.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { VIRTQ_DESC_F_WRITE as WRITE } from '../src/devices/virtio/queue.js';
import { INT_CONFIG_CHANGE, INT_USED_BUFFER, Reg, Status } from '../src/devices/virtio/mmio.js';
import { ConsoleFeature, RECEIVEQ, TRANSMITQ, VirtioConsole } from '../src/devices/virtio/console.js';
import { BASE, driveDevice, QSIZE, RINGS } from './virtio-driver.js';

const RX_BUF = BASE + 0x8000;
const TX_BUF = BASE + 0xa000;

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function setup(opts: { bringUp?: boolean } = {}) {
  const out: string[] = [];
  const dev = new VirtioConsole({ output: (d) => out.push(dec(d)), cols: 132, rows: 43 });
  const rig = driveDevice(dev, { features: 1 << ConsoleFeature.SIZE, bringUp: opts.bringUp });
  return { dev, out, ...rig };
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
