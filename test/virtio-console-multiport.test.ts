// virtio-console with MULTIPORT and a named port, without a guest: the control conversation Linux's
// virtio_console driver holds (DEVICE_READY, DEVICE_ADD, PORT_READY, CONSOLE_PORT, PORT_NAME,
// PORT_OPEN), a named port's bytes and open/close, and guest-supplied ids and lengths checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { VIRTQ_DESC_F_WRITE as WRITE } from '../src/devices/virtio/queue.js';
import { Reg } from '../src/devices/virtio/mmio.js';
import { CONTROL_RECEIVEQ as CIVQ, CONTROL_TRANSMITQ as COVQ, ConsoleControl as C, ConsoleFeature, PORT_INPUT_LIMIT, RECEIVEQ, VirtioConsole } from '../src/devices/virtio/console.js';
import { BASE, driveDevice, QSIZE } from './virtio-driver.js';

const CTRL_IN = BASE + 0x8000; // 8 control buffers of 256 bytes
const CTRL_OUT = BASE + 0x9000;
const RX = BASE + 0xa000;
const TX = BASE + 0xb000;
const PORT1_RX = 4;
const PORT1_TX = 5;
const NAME = 'org.qemu.guest_agent.0';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function setup(features = (1 << ConsoleFeature.SIZE) | (1 << ConsoleFeature.MULTIPORT)) {
  const out: string[] = [];
  const agent: string[] = [];
  const opens: boolean[] = [];
  const dev = new VirtioConsole({ output: (d) => out.push(dec(d)), ports: [{ name: NAME, output: (d) => agent.push(dec(d)), onOpen: (o) => opens.push(o) }] });
  const rig = driveDevice(dev, { features, queues: 6 });
  const { mem, post, usedIdx, usedLen, usedId } = rig;
  const desc = [0, 0, 0, 0, 0, 0];
  const nextDesc = (q: number, n: number) => { const d = desc[q]; desc[q] = (d + n) % QSIZE; return d; };
  /** The driver fills c_ivq with `n` 256-byte buffers (descriptor d at CTRL_IN + 256 d). */
  const fillControl = (n = QSIZE) => { for (let i = 0; i < n; i++) { const d = nextDesc(CIVQ, 1); post(CIVQ, d, [[CTRL_IN + 256 * d, 256, WRITE]]); } };
  /** The driver sends one control message (extra bytes after the header optional). */
  const send = (id: number, event: number, value: number, len = 8) => {
    const d = nextDesc(COVQ, 1);
    const v = new DataView(new ArrayBuffer(8));
    v.setUint32(0, id, true); v.setUint16(4, event, true); v.setUint16(6, value, true);
    mem.write(CTRL_OUT + 64 * d, new Uint8Array(v.buffer).subarray(0, Math.min(8, len)));
    post(COVQ, d, [[CTRL_OUT + 64 * d, len, 0]]);
  };
  let seen = 0;
  /** Control messages the device put in c_ivq since the last call: [id, event, value, extra]. */
  const received = (): [number, number, number, string][] => {
    const msgs: [number, number, number, string][] = [];
    for (; seen < usedIdx(CIVQ); seen++) {
      const at = CTRL_IN + 256 * usedId(CIVQ, seen);
      const len = usedLen(CIVQ, seen);
      const b = mem.slice(at, len);
      const v = new DataView(b.buffer, b.byteOffset, b.length);
      msgs.push([v.getUint32(0, true), v.getUint16(4, true), v.getUint16(6, true), dec(b.subarray(8))]);
    }
    return msgs;
  };
  /** The whole bring-up: DEVICE_READY, both ports added and ready. */
  const handshake = () => {
    fillControl();
    send(0xffffffff, C.DEVICE_READY, 1);
    assert.deepEqual(received(), [[0, C.DEVICE_ADD, 1, ''], [1, C.DEVICE_ADD, 1, '']]);
    send(0, C.PORT_READY, 1);
    assert.deepEqual(received(), [[0, C.CONSOLE_PORT, 1, ''], [0, C.PORT_OPEN, 1, '']]);
    fillControl(4);
    send(1, C.PORT_READY, 1);
    assert.deepEqual(received(), [[1, C.PORT_NAME, 1, NAME], [1, C.PORT_OPEN, 1, '']]);
  };
  return { dev, out, agent, opens, fillControl, send, received, handshake, ...rig };
}

test('virtio-console multiport: MULTIPORT offered, max_nr_ports 2, six queues', () => {
  const { r, w, t } = setup();
  w(Reg.DeviceFeaturesSel, 0);
  assert.equal(r(Reg.DeviceFeatures) & 0b111, (1 << ConsoleFeature.SIZE) | (1 << ConsoleFeature.MULTIPORT));
  assert.equal(t.read(Reg.Config + 4, 4), 2);
  w(Reg.QueueSel, 5);
  assert.equal(r(Reg.QueueNumMax), 64);
  w(Reg.QueueSel, 6);
  assert.equal(r(Reg.QueueNumMax), 0);
});

test('virtio-console multiport: the control conversation Linux expects, then bytes both ways on the named port', () => {
  const { dev, mem, post, usedIdx, usedLen, out, agent, opens, send, received, handshake, logs } = setup();
  handshake();
  // hvc0: the guest's init_port_console says PORT_OPEN 1 for port 0; console bytes flow as before.
  dev.sendInput(enc('early-console'));
  post(RECEIVEQ, 0, [[RX, 64, WRITE]]);
  assert.equal(usedIdx(RECEIVEQ), 0, 'port 0 input waits until the guest connected hvc0 (Linux drops it before)');
  send(0, C.PORT_OPEN, 1);
  assert.equal(usedIdx(RECEIVEQ), 1);
  assert.equal(dec(mem.slice(RX, usedLen(RECEIVEQ, 0))), 'early-console');
  assert.deepEqual(opens, [], 'port 0 opening is not a named port event');
  // Host bytes for the agent port wait while the guest has it closed, even with buffers posted.
  assert.equal(dev.sendPortInput(1, enc('{"execute":"guest-ping"}\n')), true);
  post(PORT1_RX, 0, [[RX + 0x100, 16, WRITE]]);
  post(PORT1_RX, 1, [[RX + 0x200, 64, WRITE]]);
  assert.equal(usedIdx(PORT1_RX), 0);
  send(1, C.PORT_OPEN, 1);
  assert.deepEqual(opens, [true]);
  assert.equal(dev.portOpen(1), true);
  assert.equal(usedIdx(PORT1_RX), 2);
  assert.equal(dec(mem.slice(RX + 0x100, 16)) + dec(mem.slice(RX + 0x200, usedLen(PORT1_RX, 1))), '{"execute":"guest-ping"}\n');
  // Guest to host.
  mem.write(TX, enc('{"return": {}}\n'));
  post(PORT1_TX, 0, [[TX, 15, 0]]);
  assert.deepEqual(agent, ['{"return": {}}\n']);
  assert.deepEqual(out, [], 'named port output never reaches the console sink');
  // The guest closes the port: the host hears it; a reopen is heard too.
  send(1, C.PORT_OPEN, 0);
  send(1, C.PORT_OPEN, 1);
  assert.deepEqual(opens, [true, false, true]);
  assert.deepEqual(received(), []);
  assert.deepEqual(logs, []);
});

test('virtio-console multiport: resize goes as a RESIZE control message (rows, cols)', () => {
  const { dev, received, handshake } = setup();
  handshake();
  dev.resize(100, 30);
  const [msg] = received();
  assert.deepEqual(msg.slice(0, 3), [0, C.RESIZE, 0]);
  const b = enc(msg[3]);
  assert.equal(b[0] | (b[1] << 8), 30);
  assert.equal(b[2] | (b[3] << 8), 100);
});

test('virtio-console multiport: bad ids, short messages and repeated DEVICE_READY are ignored, never thrown', () => {
  const { dev, r, send, received, handshake, opens, logs } = setup();
  send(0, C.DEVICE_READY, 1, 4); // 4 bytes: not a message (handshake() then checks DEVICE_READY works once)
  handshake();
  send(0xffffffff, C.DEVICE_READY, 1);
  send(2, C.PORT_READY, 1);
  send(0xffffffff, C.PORT_OPEN, 1);
  send(7, C.PORT_OPEN, 1);
  send(1, 0xffff, 1);
  send(1, C.PORT_NAME, 1); // an event only the device sends
  assert.deepEqual(received(), []);
  assert.deepEqual(opens, []);
  assert.equal(r(Reg.Status) & 0x40, 0, 'no DEVICE_NEEDS_RESET');
  assert.throws(() => dev.sendPortInput(2, enc('x')), RangeError);
  assert.deepEqual(logs, []);
});

test('virtio-console multiport: a closed port keeps at most PORT_INPUT_LIMIT bytes; a reset closes it and drops them', () => {
  const { dev, w, opens, send, handshake, bringUp } = setup();
  handshake();
  assert.equal(dev.sendPortInput(1, new Uint8Array(PORT_INPUT_LIMIT)), true);
  assert.equal(dev.sendPortInput(1, enc('more')), false, 'beyond the limit: dropped, and said so');
  send(1, C.PORT_OPEN, 1);
  w(Reg.Status, 0);
  assert.deepEqual(opens, [true, false], 'a device reset closes the guest end');
  assert.equal(dev.portOpen(1), false);
  bringUp();
  assert.equal(dev.save().ports?.[0].input, '', 'pending bytes for the old driver are gone');
});

test('virtio-console multiport: a driver without MULTIPORT gets the single-port console', () => {
  const { dev, mem, post, usedIdx, out, send } = setup(1 << ConsoleFeature.SIZE);
  send(0, C.DEVICE_READY, 1); // on queue 3, which this driver does not use: nothing happens
  dev.sendInput(enc('hi'));
  post(RECEIVEQ, 0, [[RX, 16, WRITE]]);
  assert.equal(usedIdx(RECEIVEQ), 1);
  assert.equal(dec(mem.slice(RX, 2)), 'hi');
  mem.write(TX, enc('out'));
  post(1, 0, [[TX, 3, 0]]);
  assert.deepEqual(out, ['out']);
  assert.equal(usedIdx(CIVQ), 0);
});

test('virtio-console multiport: save/restore keeps the named port open and its pending bytes', () => {
  const { dev, send, handshake } = setup();
  handshake();
  send(1, C.PORT_OPEN, 1);
  const saved = dev.save();
  const copy = new VirtioConsole({ output: () => {}, ports: [{ name: NAME, output: () => {} }] });
  copy.restore(JSON.parse(JSON.stringify(saved)));
  assert.equal(copy.portOpen(1), true);
  assert.throws(() => new VirtioConsole({ output: () => {}, ports: [{ name: 'a/b', output: () => {} }] }), RangeError);
});
