// The host's memory policy as a pure function (src/host/memory-policy.ts): a guest under pressure
// grows even when the host is above its goal, an idle one shrinks toward its minimum, targets
// never leave [min, max], no move is larger than 100 MiB, and shares split what there is; a guest
// that gives nothing back for 30 s is backed off from and not asked again during a cool-down; a guest
// without a balloon driver is left alone; a guest that lies (says its balloon holds pages the host still
// holds for it, or sends statistics that cannot be true) is judged by the host's own count.
// A VM whose balloon moved in the last 6 s waits for statistics from after the move before it is
// shrunk or grown without pressure (stale statistics shrank idle guests into pressure and back).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COOLDOWN_MS, decideMemory, RESIDENT_SLACK_MIB, SETTLE_MS, STALL_MS, STEP_MIB, type PolicyVm } from '../src/host/memory-policy.js';

const roomy = { totalMib: 16384, availableMib: 12000 };
const tight = { totalMib: 4096, availableMib: 400 }; // 90% used: 410 MiB above an 80% goal

function vm(id: string, over: Partial<PolicyVm> & { available?: number } = {}): PolicyVm {
  const { available, ...rest } = over;
  const base: PolicyVm = { id, name: id, minMib: 128, maxMib: 512, shares: 1000, targetMib: 256, actualMib: 256, guest: null, skip: null, ...rest };
  if (base.guest === null && base.skip === null) base.guest = { availableMib: available ?? 100, freeMib: available ?? 100, totalMib: base.maxMib };
  return base;
}

const byId = (ds: ReturnType<typeof decideMemory>, id: string) => {
  const d = ds.find((x) => x.id === id);
  assert.ok(d, `a decision for ${id}`);
  return d;
};

test('memory policy: a guest under pressure grows, at most 100 MiB a round, even on a host above its goal', () => {
  const ds = decideMemory([vm('busy', { targetMib: 200, actualMib: 200, available: 10 })], tight);
  const d = byId(ds, 'busy');
  assert.equal(d.changed, true);
  assert.equal(d.targetMib, 200 + STEP_MIB);
  assert.match(d.reason, /^grows: under pressure \(guest available 10 MiB is below half its 38 MiB buffer/);
  // Allocation stalls are pressure too.
  const s = byId(decideMemory([vm('stall', { targetMib: 300, actualMib: 300, available: 150, guest: { availableMib: 150, freeMib: 20, totalMib: 512, allocStalls: 7 } })], tight), 'stall');
  assert.ok(s.targetMib > 300);
  assert.match(s.reason, /7 allocation stalls/);
});

test('memory policy: an idle guest shrinks toward its minimum in steps, and stays there', () => {
  let target = 512;
  const seen: number[] = [];
  for (let round = 0; round < 6; round++) {
    // Demand stays 40 MiB: available is what the guest has minus that.
    const d = byId(decideMemory([vm('idle', { targetMib: target, actualMib: target, available: target - 40 })], roomy), 'idle');
    assert.ok(target - d.targetMib <= STEP_MIB, `a step of at most ${STEP_MIB} MiB (${target} -> ${d.targetMib})`);
    target = d.targetMib;
    seen.push(target);
  }
  assert.deepEqual(seen, [412, 312, 212, 128, 128, 128]);
  const last = byId(decideMemory([vm('idle', { targetMib: 128, actualMib: 128, available: 88 })], roomy), 'idle');
  assert.equal(last.changed, false);
  assert.match(last.reason, /^holds/);
});

test('memory policy: a target never leaves [min, max]', () => {
  for (const available of [0, 5, 50, 200, 400]) {
    for (const targetMib of [128, 200, 450, 512]) {
      for (const host of [roomy, tight]) {
        const d = byId(decideMemory([vm('x', { targetMib, actualMib: targetMib, available: Math.min(available, targetMib) })], host), 'x');
        assert.ok(d.targetMib >= 128 && d.targetMib <= 512, `target ${d.targetMib} from ${targetMib} (available ${available})`);
        assert.ok(Math.abs(d.targetMib - targetMib) <= STEP_MIB);
      }
    }
  }
  // Pressure at the maximum: nowhere to grow.
  const top = byId(decideMemory([vm('top', { targetMib: 512, actualMib: 512, available: 5 })], roomy), 'top');
  assert.equal(top.targetMib, 512);
});

test('memory policy: shares split the host\'s headroom among VMs that want to grow', () => {
  // Each has 40 MiB available, under its 60 MiB buffer (20% of 300) but not under half of it: it wants 20 MiB
  // more, which the host's headroom limits (not pressure yet).
  const host = { totalMib: 1000, availableMib: 230 }; // used 770, goal 800: 30 MiB headroom
  const a = vm('a', { shares: 2000, maxMib: 1024, targetMib: 340, actualMib: 340, available: 40 }); // demand 300, wants 360
  const b = vm('b', { shares: 1000, maxMib: 1024, targetMib: 340, actualMib: 340, available: 40 });
  const ds = decideMemory([a, b], host);
  assert.equal(byId(ds, 'a').targetMib, 360, 'two thirds of 30 MiB');
  assert.equal(byId(ds, 'b').targetMib, 350, 'one third');
  assert.match(byId(ds, 'a').reason, /host headroom 30 MiB, its share 20 MiB/);
  // With room on the host, both get what they want.
  const wide = decideMemory([a, b], roomy);
  assert.equal(byId(wide, 'a').targetMib, 360);
  assert.equal(byId(wide, 'b').targetMib, 360);
  // With none (the host at its goal), neither grows, and the reason says why.
  const none = byId(decideMemory([a], { totalMib: 1000, availableMib: 200 }), 'a');
  assert.equal(none.targetMib, 340);
  assert.match(none.reason, /the host is at its 80% goal/);
});

test('memory policy: a host above its goal takes from VMs not under pressure, less from those with more shares; never from a pressured one', () => {
  const host = { totalMib: 4096, availableMib: 719 }; // 3377 used, goal 3277: 100 MiB over, and busy's growth on top
  const rich = vm('rich', { shares: 3000, targetMib: 400, actualMib: 400, available: 120 }); // demand 280, wants 336, floor 308
  const poor = vm('poor', { shares: 1000, targetMib: 400, actualMib: 400, available: 120 });
  const busy = vm('busy', { targetMib: 200, actualMib: 200, available: 10 });
  const ds = decideMemory([rich, poor, busy], host);
  const r = byId(ds, 'rich').targetMib;
  const p = byId(ds, 'poor').targetMib;
  assert.ok(r < 400 && p < 400, `both shrink (${r}, ${p})`);
  assert.ok(400 - p > 400 - r, `fewer shares give more (${p} vs ${r})`);
  assert.ok(r >= 308 && p >= 308, 'never below what the guest uses plus half its buffer (not into pressure)');
  assert.deepEqual([p, r], [308, 318]);
  assert.ok(byId(ds, 'busy').targetMib > 200, 'the pressured VM grows all the same');
});

test('memory policy: skipped VMs keep their target and say why', () => {
  const ds = decideMemory([vm('custom', { skip: 'the guest has no balloon driver' }), vm('hand', { skip: 'its target was set by hand' })], tight);
  assert.equal(byId(ds, 'custom').changed, false);
  assert.equal(byId(ds, 'custom').targetMib, 256);
  assert.match(byId(ds, 'custom').reason, /left alone: the guest has no balloon driver/);
});

/** Rounds every 2 s from `from` to `to` (ms) with the guest's actual from `actual(now)`; the runner's bookkeeping as memory.ts does it. */
function rounds(v: PolicyVm, host: { totalMib: number; availableMib: number }, from: number, to: number, actual: (now: number, target: number) => number) {
  const seen: { now: number; target: number; reason: string }[] = [];
  for (let now = from; now <= to; now += 2000) {
    v.actualMib = actual(now, v.targetMib);
    v.guest = { availableMib: v.actualMib - 60, freeMib: v.actualMib - 60, totalMib: v.maxMib }; // an idle guest: it uses 60 MiB
    const d = byId(decideMemory([v], host, now), v.id);
    v.targetMib = d.targetMib;
    v.giving = d.giving;
    v.backoffUntilMs = d.backoffUntilMs;
    seen.push({ now, target: d.targetMib, reason: d.reason });
  }
  return seen;
}

test('memory policy: a guest that gives nothing back for 30 s is backed off from (target back to what it holds) and not asked to shrink during the cool-down', () => {
  const t0 = Date.UTC(2026, 11, 7, 12, 0, 0);
  // Idle (demand 60 MiB, wants 128), at 400 MiB, on a host above its goal: the policy asks it to shrink, it holds on to 400.
  const v = vm('stuck', { targetMib: 400, actualMib: 400 });
  const stuck = rounds(v, tight, t0, t0 + STALL_MS + 4000, () => 400);
  assert.equal(stuck[0].target, 300, 'first asked for a step less');
  const off = stuck.findIndex((r) => /^backs off/.test(r.reason));
  assert.ok(off > 0, `a back-off: ${JSON.stringify(stuck.map((r) => r.reason))}`);
  assert.equal(stuck[off].now - t0, STALL_MS, 'after 30 s without a fall of actual');
  assert.equal(stuck[off].target, 400, 'the target goes back up to what the guest holds');
  assert.match(stuck[off].reason, /^backs off: the guest gave back nothing in 30 s \(asked for 128 MiB, holds 400 MiB\); not asked to shrink before 12:05:30 UTC → 400 MiB$/);
  assert.ok(stuck.slice(0, off).every((r) => r.target < 400), 'asked all along before that');
  assert.equal(v.backoffUntilMs, t0 + STALL_MS + COOLDOWN_MS);
  // The cool-down: idle and on a host above its goal, it is not asked again.
  const cool = rounds(v, tight, t0 + STALL_MS + 6000, t0 + STALL_MS + COOLDOWN_MS - 2000, () => 400);
  assert.ok(cool.every((r) => r.target === 400), 'held at what it has');
  assert.match(cool[0].reason, /^holds: backing off until 12:05:30 UTC \(the guest could not give\)/);
  // It may still grow under pressure during the cool-down.
  const busy = byId(decideMemory([{ ...v, guest: { availableMib: 5, freeMib: 5, totalMib: 512 } }], tight, t0 + STALL_MS + 60_000), 'stuck');
  assert.equal(busy.targetMib, 500);
  // After the cool-down the policy asks again.
  const after = rounds(v, tight, t0 + STALL_MS + COOLDOWN_MS, t0 + STALL_MS + COOLDOWN_MS, () => 400);
  assert.equal(after[0].target, 300);
  assert.match(after[0].reason, /^shrinks/);
});

test('memory policy: a guest that gives slowly is not backed off from; a partial give backs off to what it holds', () => {
  const t0 = 1_000_000;
  // 1 MiB every 10 s: slow, but it moves toward the target.
  const slow = vm('slow', { targetMib: 400, actualMib: 400 });
  const seen = rounds(slow, roomy, t0, t0 + 3 * STALL_MS, (now) => 400 - Math.floor((now - t0) / 10_000));
  assert.ok(seen.every((r) => !/backs off/.test(r.reason)), `no back-off: ${seen.map((r) => r.reason).find((r) => /backs off/.test(r))}`);
  assert.ok(seen.at(-1)!.target < 400);
  // Gives 50 MiB, then stalls: back to the 350 MiB it holds.
  const part = vm('part', { targetMib: 400, actualMib: 400 });
  const p = rounds(part, roomy, t0, t0 + 2 * STALL_MS, (now) => (now - t0 >= 10_000 ? 350 : 400));
  const off = p.find((r) => /^backs off/.test(r.reason));
  assert.ok(off, 'a back-off');
  assert.equal(off.now - t0, 10_000 + STALL_MS, '30 s after the last fall');
  assert.equal(off.target, 350);
  // A guest that stops 2 MiB short of its target is no stall (under the 4 MiB a move needs).
  const near = vm('near', { targetMib: 130, actualMib: 130 });
  const n = rounds(near, roomy, t0, t0 + 2 * STALL_MS, () => 130);
  assert.ok(n.every((r) => !/backs off/.test(r.reason)), 'no back-off');
  const short = byId(decideMemory([{ ...near, targetMib: 128, actualMib: 130, giving: { sinceMs: t0, actualMib: 130 } }], roomy, t0 + 2 * STALL_MS), 'near');
  assert.equal(short.targetMib, 128);
  assert.equal(short.giving, null);
});

test('memory policy: a guest without a balloon driver is left alone, even on a host above its goal', () => {
  const ds = decideMemory([vm('nodrv', { targetMib: 400, actualMib: 400, available: 300, driverOk: false }), vm('drv', { targetMib: 400, actualMib: 400, available: 300 })], tight);
  assert.equal(byId(ds, 'nodrv').changed, false);
  assert.equal(byId(ds, 'nodrv').targetMib, 400);
  assert.match(byId(ds, 'nodrv').reason, /^left alone: no balloon driver in the guest/);
  assert.ok(byId(ds, 'drv').targetMib < 400, 'the same guest with a driver is asked to shrink');
});

test('memory policy: a guest that lies is judged by the host\'s count: says its balloon took pages it still uses, gets watched and backed off from', () => {
  const t0 = Date.UTC(2026, 11, 7, 12, 0, 0);
  // Asked for 128 MiB, the guest writes actual = its target each round (says it gave) while the
  // host still holds 400 MiB of its RAM: it is watched on what it holds, not what it says.
  const liar = vm('liar', { targetMib: 400, actualMib: 400, residentMib: 400 });
  const seen: { now: number; target: number; reason: string }[] = [];
  for (let now = t0; now <= t0 + STALL_MS + 4000; now += 2000) {
    liar.actualMib = liar.targetMib; // the lie
    liar.guest = { availableMib: liar.actualMib - 60, freeMib: liar.actualMib - 60, totalMib: 512 };
    const d = byId(decideMemory([liar], tight, now), 'liar');
    Object.assign(liar, { targetMib: d.targetMib, giving: d.giving, backoffUntilMs: d.backoffUntilMs });
    seen.push({ now, target: d.targetMib, reason: d.reason });
  }
  const off = seen.findIndex((r) => /^backs off/.test(r.reason));
  assert.ok(off > 0, `a back-off: ${JSON.stringify(seen.map((r) => r.reason))}`);
  assert.equal(seen[off].now - t0, STALL_MS, '30 s after the host\'s count stopped falling');
  assert.equal(seen[off].target, 400, 'its target goes back up to what the host holds for it');
  assert.match(seen[off].reason, /holds 400 MiB by the host's count; it says \d+ MiB\)/);
  // The same guest telling the truth (actual = what the host holds) is never backed off from.
  const honest = vm('honest', { targetMib: 400, actualMib: 400, residentMib: 400 });
  for (let now = t0; now <= t0 + STALL_MS + 4000; now += 2000) {
    honest.actualMib = honest.targetMib;
    honest.residentMib = Math.min(honest.residentMib!, honest.actualMib); // given back: the host holds less
    honest.guest = { availableMib: honest.actualMib - 60, freeMib: honest.actualMib - 60, totalMib: 512 };
    const d = byId(decideMemory([honest], tight, now), 'honest');
    assert.doesNotMatch(d.reason, /backs off/);
    Object.assign(honest, { targetMib: d.targetMib, giving: d.giving, backoffUntilMs: d.backoffUntilMs });
  }
  assert.equal(honest.targetMib, 128);
  // Resident memory a few MiB above actual (pages in flight, a snapshot load's zero extents) is no lie.
  const near = byId(decideMemory([vm('near', { targetMib: 300, actualMib: 300, residentMib: 300 + RESIDENT_SLACK_MIB - 1, available: 100 })], roomy, t0), 'near');
  assert.match(near.reason, /guest uses 200 MiB/, 'demand from its actual');
});

test('memory policy: what a guest is asked to give (or says it gave) is not memory: others grow only within the host\'s measured headroom', () => {
  const host = { totalMib: 1000, availableMib: 200 }; // at its 80% goal: no headroom
  const grower = vm('grower', { maxMib: 1024, targetMib: 340, actualMib: 340, available: 40 }); // wants 360, not under pressure
  for (const resident of [400, 150]) {
    // A guest asked to shrink from 400, whether the host still holds its memory (a liar) or not.
    const giver = vm('giver', { targetMib: 400, actualMib: 200, residentMib: resident, available: 100 });
    const ds = decideMemory([giver, grower], host);
    assert.equal(byId(ds, 'grower').targetMib, 340, `no growth on memory only asked for (giver resident ${resident} MiB)`);
    assert.match(byId(ds, 'grower').reason, /the host is at its 80% goal/);
  }
  // Once the host's own numbers show the memory, it grows.
  assert.equal(byId(decideMemory([grower], { totalMib: 1000, availableMib: 300 }), 'grower').targetMib, 360);
});

test('memory policy: statistics that cannot be true are cut to what the guest holds', () => {
  // Available far above what it holds: demand 0, so it shrinks toward its minimum, never below, in steps.
  const d = byId(decideMemory([vm('big', { targetMib: 400, actualMib: 400, available: 1_000_000 })], roomy), 'big');
  assert.equal(d.targetMib, 300);
  assert.match(d.reason, /guest uses 0 MiB, available 400 MiB/);
  // A liar claiming it holds less than the host counts is judged by the host's count: demand from 400, not 100.
  const r = byId(decideMemory([vm('under', { targetMib: 400, actualMib: 100, residentMib: 400, available: 20 })], roomy), 'under');
  assert.match(r.reason, /demand 380 MiB|guest uses 380 MiB/);
});

/**
 * An idle guest using 106 MiB whose statistics lag its balloon by one 2 s round (as the driver
 * sends them every 2 s), the balloon moving to each new target within the round. Returns the
 * targets and whether the guest was ever short (available below half its buffer).
 */
function idleWithLaggingStats(settle: boolean): { targets: number[]; short: boolean } {
  const demand = 106;
  let target = 256, actual = 256, laggedAvailable = 256 - demand, actualSince = -60_000;
  const targets: number[] = [];
  let short = false;
  for (let round = 0; round < 20; round++) {
    const now = round * 2000;
    const d = byId(decideMemory([vm('idle', { minMib: 64, maxMib: 256, targetMib: target, actualMib: actual, available: laggedAvailable, ...(settle ? { balloonStillMs: now - actualSince } : {}) })], roomy, now), 'idle');
    laggedAvailable = Math.max(0, actual - demand);
    if (d.targetMib !== actual) actualSince = now;
    target = actual = d.targetMib;
    short ||= actual - demand < 16;
    targets.push(target);
  }
  return { targets, short };
}

test('memory policy: statistics from before a balloon move do not move it again (an idle guest shrank past its demand, then grew back under pressure)', () => {
  // Without knowing when the balloon last moved: the old behaviour, shrunk into pressure and grown back.
  const blind = idleWithLaggingStats(false);
  assert.equal(blind.short, true, `without the settling rule the guest is left short: ${blind.targets.join(' ')}`);
  assert.ok(Math.max(...blind.targets.slice(3)) > Math.min(...blind.targets), `and its target goes down and up again: ${blind.targets.join(' ')}`);
  // Settling: one step, a wait for fresh statistics, then demand plus buffer (106 + 32), and it stays there.
  const settled = idleWithLaggingStats(true);
  assert.equal(settled.short, false, `never short: ${settled.targets.join(' ')}`);
  for (let i = 1; i < settled.targets.length; i++) assert.ok(settled.targets[i] <= settled.targets[i - 1], `never grows back: ${settled.targets.join(' ')}`);
  assert.equal(settled.targets.at(-1), 138);
  assert.equal(settled.targets[0], 156);
});

test('memory policy: a settling VM holds (no shrink, no growth without pressure, not taken from for the host) but grows under pressure', () => {
  const moving = { balloonStillMs: SETTLE_MS - 1000 };
  const shrink = byId(decideMemory([vm('s', { targetMib: 400, actualMib: 400, available: 350, ...moving })], roomy), 's');
  assert.equal(shrink.changed, false);
  assert.match(shrink.reason, /^holds: settling \(its balloon moved 5\.0 s ago/);
  assert.equal(byId(decideMemory([vm('s', { targetMib: 400, actualMib: 400, available: 350, balloonStillMs: SETTLE_MS })], roomy), 's').targetMib, 300, 'settled: it shrinks');
  const grow = byId(decideMemory([vm('g', { targetMib: 200, actualMib: 200, available: 30, ...moving })], roomy), 'g');
  assert.equal(grow.changed, false, 'no growth without pressure while settling');
  const pressed = byId(decideMemory([vm('p', { targetMib: 200, actualMib: 200, available: 5, ...moving })], tight), 'p');
  assert.equal(pressed.targetMib, 200 + STEP_MIB, 'pressure grows it at once');
  // Host above its goal: only the settled VM gives.
  const ds = decideMemory([vm('a', { targetMib: 400, actualMib: 400, available: 200, ...moving }), vm('b', { targetMib: 400, actualMib: 400, available: 200 })], tight);
  assert.equal(byId(ds, 'a').targetMib, 400);
  assert.ok(byId(ds, 'b').targetMib < 400);
});
