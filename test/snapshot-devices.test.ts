// Each device's save()/restore() pair without booting: a device driven into a non-trivial state
// is saved, the JSON goes through a string (as in the state file), and a fresh device restored
// from it saves the same state and behaves the same; states that do not fit are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Uart16550 } from '../src/devices/uart16550.js';
import { Plic } from '../src/machine/plic.js';
import { Clint } from '../src/machine/clint.js';
import { VirtualClock } from '../src/machine/clock.js';
import { GuestMemory } from '../src/hw/memory.js';
import { VirtioMmio, Reg, Status } from '../src/devices/virtio/mmio.js';
import { VirtioRng } from '../src/devices/virtio/rng.js';
import { SnapshotStateError } from '../src/hw/snapshot-state.js';
import { Bus } from '../src/hw/bus.js';
import { Hart } from '../src/cpu/hart.js';
import { restoreHart, saveHart } from '../src/cpu/hart-snapshot.js';

const roundTrip = <T>(v: T): unknown => JSON.parse(JSON.stringify(v));
const noIrq = { set: (): void => {} };

test('UART: registers, FIFO contents and queued host input survive save/restore', () => {
  const a = new Uart16550(noIrq, () => {});
  a.write(1, 1, 0x05); // IER: received data + line status
  a.write(7, 1, 0x42); // scratch
  a.write(2, 1, 0x01); // FIFO on
  a.receive(new TextEncoder().encode('x'.repeat(20) + 'hello'));
  const saved = roundTrip(a.save());
  const b = new Uart16550(noIrq, () => {});
  b.restore(saved);
  assert.deepEqual(roundTrip(b.save()), saved);
  let text = '';
  while (b.read(5, 1) & 1) text += String.fromCharCode(b.read(0, 1));
  assert.equal(text, 'x'.repeat(20) + 'hello', 'the restored UART hands out the same bytes, FIFO first');
  assert.throws(() => b.restore({ ...(saved as object), rx: 'A'.repeat(100) }), SnapshotStateError);
});

test('PLIC and CLINT: restored state matches and a mismatched shape is refused', () => {
  const a = new Plic(2, 96, () => {});
  a.write(4 * 10, 4, 5); // priority of source 10
  a.write(0x2000, 4, 1 << 10); // enable source 10 for context 0
  a.line(10).set(true);
  const saved = roundTrip(a.save());
  const b = new Plic(2, 96, () => {});
  b.restore(saved);
  assert.deepEqual(roundTrip(b.save()), saved);
  assert.equal(b.read(0x20_0004, 4), 10, 'the restored PLIC hands out the pending claim');
  assert.throws(() => new Plic(1, 96, () => {}).restore(saved), /plic.enable: expected 6 values, got 12/);

  const clock = new VirtualClock(() => 0);
  const c = new Clint(2, clock, () => {}, () => {});
  c.write(0x4008, 4, 1234); // hart 1 mtimecmp low
  c.write(0x4, 4, 1); // MSIP hart 1
  const cs = roundTrip(c.save());
  const d = new Clint(2, clock, () => {}, () => {});
  d.restore(cs);
  assert.equal(d.read(0x4008, 4), 1234);
  assert.equal(d.read(0x4, 4), 1);
});

test('virtio-mmio: negotiated features, queue setup and ring indices survive; a bad ring address is refused', () => {
  const mem = new GuestMemory(0x8000_0000, 16 << 20);
  const a = new VirtioMmio(mem, new VirtioRng(), noIrq, () => {});
  a.write(Reg.Status, 4, Status.Acknowledge | Status.Driver);
  a.write(Reg.DriverFeaturesSel, 4, 1);
  a.write(Reg.DriverFeatures, 4, 1); // VERSION_1
  a.write(Reg.Status, 4, Status.Acknowledge | Status.Driver | Status.FeaturesOk);
  a.write(Reg.QueueSel, 4, 0);
  a.write(Reg.QueueNum, 4, 8);
  a.write(Reg.QueueDescLow, 4, 0x8000_1000);
  a.write(Reg.QueueDriverLow, 4, 0x8000_2000);
  a.write(Reg.QueueDeviceLow, 4, 0x8000_3000);
  a.write(Reg.QueueReady, 4, 1);
  a.write(Reg.Status, 4, Status.Acknowledge | Status.Driver | Status.FeaturesOk | Status.DriverOk);
  const saved = roundTrip(a.save());
  const b = new VirtioMmio(mem, new VirtioRng(), noIrq, () => {});
  b.restore(saved);
  assert.deepEqual(roundTrip(b.save()), saved);
  assert.equal(b.read(Reg.QueueReady, 4), 1);
  assert.equal(b.read(Reg.Status, 4), a.read(Reg.Status, 4));
  const bad = roundTrip(saved) as { queues: { desc: number }[] };
  bad.queues[0].desc = 0x1000;
  assert.throws(() => new VirtioMmio(mem, new VirtioRng(), noIrq, () => {}).restore(bad), /descriptor table at 0x1000 .* is outside RAM/);
});

test('hart: registers and CSRs survive save/restore into another hart of the same id', () => {
  const mem = new GuestMemory(0x8000_0000, 16 << 20);
  const env = { now: (): number => 0, timebaseHz: 10_000_000 };
  const a = new Hart(0, new Bus(mem), env);
  a.setReg(5, 0x1234_5678_9abc_def0n);
  a.pc = 0x8020_0000n;
  a.satpLo = 7; a.stimecmpLo = 99; a.stimecmpHi = 0; a.instret = 1000;
  const saved = roundTrip(saveHart(a));
  const mem2 = new GuestMemory(0x8000_0000, 16 << 20);
  const b = new Hart(0, new Bus(mem2), env);
  restoreHart(b, saved);
  assert.deepEqual(roundTrip(saveHart(b)), saved);
  assert.equal(b.getReg(5), 0x1234_5678_9abc_def0n);
  assert.equal(b.timerDeadline, 99, 'stimecmp is recomputed from its halves');
  assert.throws(() => restoreHart(new Hart(1, new Bus(mem2), env), saved), /hart 1: the saved state is hart 0's/);
});
