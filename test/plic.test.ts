import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Plic, PlicReg, plicContext, type PlicMode } from '../src/machine/plic.js';

const PRIORITY = (irq: number) => PlicReg.Priority + 4 * irq;
const PENDING = (word: number) => PlicReg.Pending + 4 * word;
const ENABLE = (ctx: number, word = 0) => PlicReg.Enable + PlicReg.EnableStride * ctx + 4 * word;
const THRESHOLD = (ctx: number) => PlicReg.Context + PlicReg.ContextStride * ctx;
const CLAIM = (ctx: number) => THRESHOLD(ctx) + 4;

/** A 2-hart, 96-source PLIC that records every context output change. */
function setup() {
  const events: string[] = [];
  const levels = new Map<string, boolean>();
  const plic = new Plic(2, 96, (hart: number, mode: PlicMode, level: boolean) => {
    events.push(`${hart}${mode}=${level ? 1 : 0}`);
    levels.set(`${hart}${mode}`, level);
  });
  const level = (hart: number, mode: PlicMode) => levels.get(`${hart}${mode}`) ?? false;
  return { plic, events, level };
}

test('contexts are ordered hart0 M, hart0 S, hart1 M, hart1 S', () => {
  assert.deepEqual(
    [plicContext(0, 'M'), plicContext(0, 'S'), plicContext(1, 'M'), plicContext(1, 'S')],
    [0, 1, 2, 3],
  );
  const { plic, events } = setup();
  plic.write(PRIORITY(10), 4, 1);
  plic.write(ENABLE(3), 4, 1 << 10);
  plic.line(10).set(true);
  assert.deepEqual(events, ['1S=1']);
});

test('a source interrupts only contexts that enable it, above their threshold', () => {
  const { plic, level } = setup();
  const uart = plic.line(10);
  uart.set(true);
  assert.equal(plic.read(PENDING(0), 4), 1 << 10, 'pending regardless of enable');
  assert.equal(level(0, 'S'), false, 'not enabled, priority 0');

  plic.write(ENABLE(1), 4, 1 << 10);
  assert.equal(level(0, 'S'), false, 'priority 0 never interrupts');
  plic.write(PRIORITY(10), 4, 3);
  assert.equal(level(0, 'S'), true);
  assert.equal(level(0, 'M'), false);

  plic.write(THRESHOLD(1), 4, 3);
  assert.equal(level(0, 'S'), false, 'priority must exceed the threshold');
  assert.equal(plic.read(CLAIM(1), 4), 0, 'nothing to claim at or below the threshold');
  plic.write(THRESHOLD(1), 4, 2);
  assert.equal(level(0, 'S'), true);

  uart.set(false);
  assert.equal(level(0, 'S'), false, 'a withdrawn request is no longer pending');
  assert.equal(plic.read(PENDING(0), 4), 0);
});

test('claim returns the highest priority, then the lowest id, and completes re-arm level sources', () => {
  const { plic, level, events } = setup();
  plic.write(ENABLE(1), 4, (1 << 1) | (1 << 2) | (1 << 10));
  plic.write(PRIORITY(1), 4, 1);
  plic.write(PRIORITY(2), 4, 5);
  plic.write(PRIORITY(10), 4, 5);
  for (const irq of [1, 2, 10]) plic.line(irq).set(true);

  assert.equal(plic.read(CLAIM(1), 4), 2, 'priority 5 beats 1; id 2 beats 10 on a tie');
  assert.equal(plic.read(CLAIM(1), 4), 10);
  assert.equal(plic.read(CLAIM(1), 4), 1);
  assert.equal(level(0, 'S'), false, 'everything claimed');
  assert.equal(plic.read(CLAIM(1), 4), 0);
  assert.equal(plic.read(PENDING(0), 4), 0, 'claiming clears pending');

  // Source 2's line is still high: completing makes it pending again.
  plic.write(CLAIM(1), 4, 2);
  assert.equal(level(0, 'S'), true);
  assert.equal(plic.read(PENDING(0), 4), 1 << 2);

  // Source 10 drops its line before completion: nothing more from it.
  plic.line(10).set(false);
  plic.write(CLAIM(1), 4, 10);
  assert.equal(plic.read(PENDING(0), 4), 1 << 2);
  assert.equal(plic.read(CLAIM(1), 4), 2);
  assert.equal(level(0, 'S'), false);
  assert.deepEqual(events, ['0S=1', '0S=0', '0S=1', '0S=0']);
});

test('a claimed source that toggles is not pending again until completed', () => {
  const { plic, level } = setup();
  plic.write(ENABLE(0), 4, 1 << 5);
  plic.write(PRIORITY(5), 4, 7);
  const line = plic.line(5);
  line.set(true);
  assert.equal(plic.read(CLAIM(0), 4), 5);
  line.set(false);
  line.set(true);
  assert.equal(plic.read(PENDING(0), 4), 0);
  assert.equal(level(0, 'M'), false);
  assert.equal(plic.read(CLAIM(0), 4), 0);
  plic.write(CLAIM(0), 4, 5);
  assert.equal(level(0, 'M'), true);
  assert.equal(plic.read(CLAIM(0), 4), 5);
});

test('completing a source that is not claimed, or out of range, changes nothing', () => {
  const { plic, level } = setup();
  plic.write(ENABLE(0), 4, 1 << 3);
  plic.write(PRIORITY(3), 4, 1);
  plic.line(3).set(true);
  plic.write(CLAIM(0), 4, 3); // not claimed yet
  plic.write(CLAIM(0), 4, 0);
  plic.write(CLAIM(0), 4, 96);
  plic.write(CLAIM(0), 4, 0xffff_ffff);
  assert.equal(level(0, 'M'), true);
  assert.equal(plic.read(CLAIM(0), 4), 3);
});

test('a source enabled on two harts is delivered to whichever claims first', () => {
  const { plic, level } = setup();
  plic.write(ENABLE(1), 4, 1 << 7);
  plic.write(ENABLE(3), 4, 1 << 7);
  plic.write(PRIORITY(7), 4, 1);
  plic.line(7).set(true);
  assert.equal(level(0, 'S'), true);
  assert.equal(level(1, 'S'), true);
  assert.equal(plic.read(CLAIM(3), 4), 7);
  assert.equal(level(0, 'S'), false, 'claimed by hart 1, withdrawn from hart 0');
  assert.equal(plic.read(CLAIM(1), 4), 0);
});

test('sources above 31 use the following words', () => {
  const { plic, level } = setup();
  plic.write(ENABLE(2, 2), 4, 1 << (95 - 64));
  plic.write(PRIORITY(95), 4, 2);
  plic.line(95).set(true);
  assert.equal(plic.read(PENDING(2), 4), (1 << 31) >>> 0);
  assert.equal(level(1, 'M'), true);
  assert.equal(plic.read(CLAIM(2), 4), 95);
});

test('registers are WARL: priority 3 bits, enable bits only for real sources', () => {
  const { plic } = setup();
  plic.write(PRIORITY(1), 4, 0xff);
  assert.equal(plic.read(PRIORITY(1), 4), 7);
  plic.write(PRIORITY(0), 4, 5);
  assert.equal(plic.read(PRIORITY(0), 4), 0, 'source 0 does not exist');
  plic.write(THRESHOLD(0), 4, 0x1f);
  assert.equal(plic.read(THRESHOLD(0), 4), 7);
  plic.write(ENABLE(0, 0), 4, 0xffff_ffff);
  assert.equal(plic.read(ENABLE(0, 0), 4), 0xffff_fffe);
  plic.write(ENABLE(0, 2), 4, 0xffff_ffff);
  assert.equal(plic.read(ENABLE(0, 2), 4), 0xffff_ffff, 'sources 64..95 exist');
  plic.write(ENABLE(0, 3), 4, 0xffff_ffff);
  assert.equal(plic.read(ENABLE(0, 3), 4), 0, 'no sources 96..127');
});

test('garbage accesses are ignored and read as zero', () => {
  const { plic, events } = setup();
  plic.write(PENDING(0), 4, 0xffff_ffff);
  assert.equal(plic.read(PENDING(0), 4), 0, 'pending is read-only');
  plic.write(PRIORITY(1), 1, 7);
  assert.equal(plic.read(PRIORITY(1), 4), 0, 'byte writes ignored');
  plic.write(PRIORITY(1) + 2, 4, 7);
  assert.equal(plic.read(PRIORITY(1) + 2, 4), 0, 'misaligned');
  assert.equal(plic.read(THRESHOLD(4), 4), 0, 'context 4 does not exist with 2 harts');
  plic.write(THRESHOLD(4), 4, 1);
  plic.write(ENABLE(4), 4, 2);
  assert.equal(plic.read(THRESHOLD(0) + 8, 4), 0);
  assert.equal(plic.read(0x3ff_fffc, 4), 0);
  assert.deepEqual(events, []);
  assert.throws(() => plic.line(0));
  assert.throws(() => plic.line(96));
});

test('output callbacks fire only on change', () => {
  const { plic, events } = setup();
  plic.write(ENABLE(1), 4, (1 << 1) | (1 << 2));
  plic.write(PRIORITY(1), 4, 1);
  plic.write(PRIORITY(2), 4, 1);
  plic.line(1).set(true);
  plic.line(1).set(true);
  plic.line(2).set(true);
  plic.write(PRIORITY(2), 4, 4);
  assert.deepEqual(events, ['0S=1']);
});
