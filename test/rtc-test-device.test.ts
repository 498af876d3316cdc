import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { GoldfishRtc, RtcReg } from '../src/devices/goldfish-rtc.js';
import { SifiveTest } from '../src/devices/sifive-test.js';

function sifiveTest() {
  const events: string[] = [];
  const device = new SifiveTest(
    (code) => events.push(`poweroff ${code}`),
    () => events.push('reset'),
  );
  return { device, events };
}

test('sifive_test: pass, fail with code, reset', () => {
  const { device, events } = sifiveTest();
  device.write(0, 4, 0x5555);
  device.write(0, 4, (42 << 16) | 0x3333);
  device.write(0, 4, 0x7777);
  assert.deepEqual(events, ['poweroff 0', 'poweroff 42', 'reset']);
});

test('sifive_test: unknown values, other offsets and byte writes do nothing', () => {
  const { device, events } = sifiveTest();
  device.write(0, 4, 0x1234);
  device.write(4, 4, 0x5555);
  device.write(0, 1, 0x55);
  assert.equal(device.read(0, 4), 0);
  assert.deepEqual(events, []);
});

/** An RTC whose host wall clock is moved by hand (ns). */
function rtc(startNs: bigint) {
  let now = startNs;
  const irq: boolean[] = [];
  const device = new GoldfishRtc({ set: (level) => irq.push(level) }, () => now);
  const readTime = () => {
    const lo = device.read(RtcReg.TimeLow, 4);
    const hi = device.read(RtcReg.TimeHigh, 4);
    return (BigInt(hi) << 32n) | BigInt(lo);
  };
  return { device, irq, readTime, advance: (ns: bigint) => (now += ns) };
}

test('goldfish RTC returns wall-clock nanoseconds, TIME_HIGH latched by TIME_LOW', () => {
  const { device, readTime, advance } = rtc(0x1234_5678_ffff_fff0n);
  assert.equal(readTime(), 0x1234_5678_ffff_fff0n);
  const lo = device.read(RtcReg.TimeLow, 4);
  advance(0x100n); // the low word wraps between the two reads
  assert.equal(lo, 0xffff_fff0);
  assert.equal(device.read(RtcReg.TimeHigh, 4), 0x1234_5678, 'high word of the moment TIME_LOW was read');
  assert.equal(readTime(), 0x1234_5679_0000_00f0n);
});

test('goldfish RTC on the host clock is near Date.now()', () => {
  const device = new GoldfishRtc({ set: () => {} });
  const lo = device.read(RtcReg.TimeLow, 4);
  const hi = device.read(RtcReg.TimeHigh, 4);
  const ms = Number(((BigInt(hi) << 32n) | BigInt(lo)) / 1_000_000n);
  assert.ok(Math.abs(ms - Date.now()) < 1000, `RTC ${ms} vs host ${Date.now()}`);
});

test('goldfish RTC time can be set by the guest', () => {
  const { device, readTime, advance } = rtc(5_000_000_000n);
  // Linux writes TIME_HIGH then TIME_LOW.
  device.write(RtcReg.TimeHigh, 4, 0x10);
  device.write(RtcReg.TimeLow, 4, 0x20);
  assert.equal(readTime(), 0x10_0000_0020n);
  advance(7n);
  assert.equal(readTime(), 0x10_0000_0027n);
});

test('goldfish RTC alarm in the past fires at once; interrupt follows IRQ_ENABLED and CLEAR_INTERRUPT', () => {
  const { device, irq } = rtc(1_000_000n);
  device.write(RtcReg.AlarmHigh, 4, 0);
  device.write(RtcReg.AlarmLow, 4, 500_000);
  assert.equal(device.read(RtcReg.AlarmStatus, 4), 0, 'expired, not running');
  assert.deepEqual(irq, [], 'pending but not enabled');
  device.write(RtcReg.IrqEnabled, 4, 1);
  assert.equal(device.read(RtcReg.IrqEnabled, 4), 1);
  assert.deepEqual(irq, [true]);
  device.write(RtcReg.ClearInterrupt, 4, 1);
  assert.deepEqual(irq, [true, false]);
  assert.equal(device.read(RtcReg.AlarmLow, 4), 500_000);
});

test('goldfish RTC alarm in the future fires from a host timer, and can be cleared', async () => {
  const levels: boolean[] = [];
  const device = new GoldfishRtc({ set: (level) => levels.push(level) });
  const now = () => {
    const lo = device.read(RtcReg.TimeLow, 4);
    return (BigInt(device.read(RtcReg.TimeHigh, 4)) << 32n) | BigInt(lo);
  };
  device.write(RtcReg.IrqEnabled, 4, 1);

  const soon = now() + 20_000_000n; // 20 ms
  device.write(RtcReg.AlarmHigh, 4, Number(soon >> 32n));
  device.write(RtcReg.AlarmLow, 4, Number(soon & 0xffff_ffffn));
  assert.equal(device.read(RtcReg.AlarmStatus, 4), 1);
  await sleep(150);
  assert.deepEqual(levels, [true]);
  assert.equal(device.read(RtcReg.AlarmStatus, 4), 0);
  device.write(RtcReg.ClearInterrupt, 4, 1);

  const later = now() + 20_000_000n;
  device.write(RtcReg.AlarmHigh, 4, Number(later >> 32n));
  device.write(RtcReg.AlarmLow, 4, Number(later & 0xffff_ffffn));
  device.write(RtcReg.ClearAlarm, 4, 1);
  assert.equal(device.read(RtcReg.AlarmStatus, 4), 0);
  await sleep(150);
  assert.deepEqual(levels, [true, false], 'a cleared alarm does not fire');
});
