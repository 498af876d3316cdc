import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Clint, ClintReg } from '../src/machine/clint.js';
import { VirtualClock, TIMEBASE_FREQUENCY } from '../src/machine/clock.js';

/** A host clock moved by hand, in milliseconds. */
function manualHost() {
  let ms = 1000;
  return { now: () => ms, advance: (delta: number) => (ms += delta) };
}

function setup(harts = 2) {
  const host = manualHost();
  const clock = new VirtualClock(host.now);
  const software: string[] = [];
  const timer: string[] = [];
  const clint = new Clint(
    harts,
    clock,
    (hart, level) => software.push(`${hart}=${level ? 1 : 0}`),
    (hart, level) => timer.push(`${hart}=${level ? 1 : 0}`),
  );
  /** A 64-bit access as the bus performs it: low word first. */
  const write64 = (offset: number, value: bigint) => {
    clint.write(offset, 4, Number(value & 0xffff_ffffn));
    clint.write(offset + 4, 4, Number(value >> 32n));
  };
  const read64 = (offset: number) => {
    const lo = clint.read(offset, 4);
    const hi = clint.read(offset + 4, 4);
    return (BigInt(hi) << 32n) | BigInt(lo);
  };
  return { host, clock, clint, software, timer, write64, read64 };
}

test('VirtualClock ticks at 10 MHz, stops while paused, and can be set', () => {
  const host = manualHost();
  const clock = new VirtualClock(host.now);
  assert.equal(TIMEBASE_FREQUENCY, 10_000_000);
  assert.equal(clock.now(), 0);
  host.advance(1.5);
  assert.equal(clock.now(), 15_000);
  clock.pause();
  host.advance(1000);
  assert.equal(clock.now(), 15_000, 'paused time does not count');
  clock.set(100);
  assert.equal(clock.now(), 100);
  clock.resume();
  host.advance(0.25);
  assert.equal(clock.now(), 2600);
  clock.set(2 ** 40);
  host.advance(1);
  assert.equal(clock.now(), 2 ** 40 + 10_000);
  assert.equal(clock.msUntil(2 ** 40 + 30_000), 2);
  assert.equal(clock.msUntil(0), 0);
});

test('VirtualClock on the real host clock advances monotonically', async () => {
  const clock = new VirtualClock();
  const first = clock.now();
  await new Promise((resolve) => setTimeout(resolve, 20));
  const elapsed = clock.now() - first;
  assert.ok(elapsed >= 150_000 && elapsed < 5_000_000, `20 ms gave ${elapsed} ticks`);
});

test('mtime reads the clock and writes move it', () => {
  const { host, clock, read64, write64 } = setup();
  host.advance(2);
  assert.equal(read64(ClintReg.Mtime), 20_000n);
  write64(ClintReg.Mtime, 0x1_0000_0005n);
  assert.equal(clock.now(), 0x1_0000_0005);
  host.advance(0.1);
  assert.equal(read64(ClintReg.Mtime), 0x1_0000_0005n + 1000n);
});

test('a split 64-bit mtime read cannot see a carry between its halves', () => {
  const { host, clock, clint } = setup();
  clock.set(0xffff_fff0);
  const lo = clint.read(ClintReg.Mtime, 4);
  host.advance(1); // 10,000 ticks: the low word wraps
  const hi = clint.read(ClintReg.Mtime + 4, 4);
  assert.equal(lo, 0xffff_fff0);
  assert.equal(hi, 0, 'high word latched with the low word');
  assert.equal(clint.read(ClintReg.Mtime + 4, 4), 1, 'a lone high read is live');
});

test('mtimecmp raises MTIP when mtime reaches it and lowers it when moved ahead', () => {
  const { host, clint, timer, write64, read64 } = setup();
  assert.equal(clint.nextDeadline(), 2 ** 64, 'unprogrammed comparators are at the maximum');
  write64(ClintReg.Mtimecmp + 8, 50_000n); // hart 1
  assert.equal(read64(ClintReg.Mtimecmp + 8), 50_000n);
  assert.equal(clint.nextDeadline(), 50_000);
  host.advance(4.9);
  clint.update();
  assert.deepEqual(timer, []);
  host.advance(0.1);
  clint.update();
  assert.deepEqual(timer, ['1=1']);
  clint.update();
  assert.deepEqual(timer, ['1=1'], 'no repeat while the level is unchanged');
  write64(ClintReg.Mtimecmp + 8, 80_000n);
  assert.deepEqual(timer, ['1=1', '1=0'], 'a write re-evaluates at once');
  write64(ClintReg.Mtimecmp, 10_000n); // hart 0, already past
  assert.deepEqual(timer, ['1=1', '1=0', '0=1']);
  assert.equal(clint.nextDeadline(), 10_000);
});

test('writing mtime backwards clears a pending timer', () => {
  const { host, clint, timer, write64 } = setup(1);
  write64(ClintReg.Mtimecmp, 1000n);
  host.advance(1);
  clint.update();
  assert.deepEqual(timer, ['0=1']);
  write64(ClintReg.Mtime, 0n);
  assert.deepEqual(timer, ['0=1', '0=0']);
});

test('msip raises and lowers the software interrupt per hart', () => {
  const { clint, software } = setup();
  clint.write(ClintReg.Msip + 4, 4, 1);
  assert.equal(clint.read(ClintReg.Msip + 4, 4), 1);
  assert.equal(clint.read(ClintReg.Msip, 4), 0);
  clint.write(ClintReg.Msip + 4, 4, 0xffff_ffff);
  clint.write(ClintReg.Msip + 4, 4, 0);
  assert.deepEqual(software, ['1=1', '1=0']);
  clint.write(ClintReg.Msip + 8, 4, 1); // hart 2 does not exist
  clint.write(ClintReg.Msip, 1, 1); // byte access ignored
  assert.deepEqual(software, ['1=1', '1=0']);
  assert.equal(clint.read(0x8000, 4), 0);
});
