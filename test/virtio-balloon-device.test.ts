// virtio-balloon without a guest: up to four queues' rings built by hand in a GuestMemory and
// driven through the virtio-mmio transport, as Linux's driver would (dense queue numbering).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';

import { GuestMemory } from '../src/hw/memory.js';
import { canReleasePages } from '../src/hw/huge-pages.js';
import { VIRTQ_DESC_F_NEXT as NEXT, VIRTQ_DESC_F_WRITE as WRITE } from '../src/devices/virtio/queue.js';
import { INT_CONFIG_CHANGE, INT_USED_BUFFER, Reg, Status, VirtioMmio } from '../src/devices/virtio/mmio.js';
import { BalloonFeature, BalloonStat, pfnRuns, VirtioBalloon, type BalloonOptions } from '../src/devices/virtio/balloon.js';

const BASE = 0x8000_0000;
const QSIZE = 8;
const ring = (i: number) => ({ desc: BASE + 0x3000 * i, avail: BASE + 0x3000 * i + 0x1000, used: BASE + 0x3000 * i + 0x2000 });
const BUF = BASE + 0x10000;
const F = (b: number) => 1 << b;
const ALL = F(BalloonFeature.MUST_TELL_HOST) | F(BalloonFeature.STATS_VQ) | F(BalloonFeature.DEFLATE_ON_OOM) | F(BalloonFeature.PAGE_REPORTING);

function rig(opts: { device?: Partial<BalloonOptions>; accept?: number; ram?: number; queues?: number } = {}) {
  const mem = new GuestMemory(BASE, opts.ram ?? 4 * 1024 * 1024);
  const logs: string[] = [];
  const activity: number[] = [];
  const dev = new VirtioBalloon({ memory: mem, log: (l) => logs.push(l), onActivity: () => activity.push(1), ...opts.device });
  const irq: boolean[] = [];
  const t = new VirtioMmio(mem, dev, { set: (l) => irq.push(l) }, (l) => logs.push(l));
  const r = (off: number) => t.read(off, 4);
  const w = (off: number, v: number) => t.write(off, 4, v);
  const accept = (opts.accept ?? ALL) & r(Reg.DeviceFeatures);
  const queues = opts.queues ?? 2 + ((accept & F(BalloonFeature.STATS_VQ)) ? 1 : 0) + ((accept & F(BalloonFeature.PAGE_REPORTING)) ? 1 : 0);
  w(Reg.Status, Status.Acknowledge | Status.Driver);
  w(Reg.DriverFeaturesSel, 0); w(Reg.DriverFeatures, accept);
  w(Reg.DriverFeaturesSel, 1); w(Reg.DriverFeatures, 1);
  w(Reg.Status, Status.Acknowledge | Status.Driver | Status.FeaturesOk);
  for (let i = 0; i < queues; i++) {
    const q = ring(i);
    w(Reg.QueueSel, i); w(Reg.QueueNum, QSIZE);
    w(Reg.QueueDescLow, q.desc); w(Reg.QueueDriverLow, q.avail); w(Reg.QueueDeviceLow, q.used);
    w(Reg.QueueReady, 1);
  }
  w(Reg.Status, Status.Acknowledge | Status.Driver | Status.FeaturesOk | Status.DriverOk);
  const availIdx = [0, 0, 0, 0];
  const post = (qi: number, first: number, bufs: [number, number, number][]) => {
    const { desc, avail } = ring(qi);
    bufs.forEach(([addr, len, flags], i) => {
      const at = desc + 16 * (first + i);
      mem.writeU64(at, BigInt(addr)); mem.writeU32(at + 8, len);
      mem.writeU16(at + 12, flags | (i < bufs.length - 1 ? NEXT : 0)); mem.writeU16(at + 14, first + i + 1);
    });
    mem.writeU16(avail + 4 + 2 * (availIdx[qi] % QSIZE), first);
    availIdx[qi] = (availIdx[qi] + 1) & 0xffff;
    mem.writeU16(avail + 2, availIdx[qi]);
    w(Reg.QueueNotify, qi);
  };
  const usedIdx = (qi: number) => mem.readU16(ring(qi).used + 2);
  const usedId = (qi: number, n: number) => mem.readU32(ring(qi).used + 4 + 8 * (n % QSIZE));
  /** Writes PFNs at `at` and posts them on queue `qi` as one readable buffer. */
  const postPfns = (qi: number, at: number, pfns: number[], first = 0) => {
    pfns.forEach((p, i) => mem.writeU32(at + 4 * i, p));
    post(qi, first, [[at, 4 * pfns.length, 0]]);
  };
  return { mem, dev, t, r, w, irq, logs, activity, post, postPfns, usedIdx, usedId, accept };
}

const pfnOf = (addr: number) => addr / 4096;

test('virtio-balloon: device ID 5, features offered as configured, num_pages/actual in the configuration space', () => {
  const { r, w, t, dev, irq, activity } = rig({ device: { targetPages: 1234 } });
  assert.equal(r(Reg.DeviceID), 5);
  w(Reg.DeviceFeaturesSel, 0);
  assert.equal(r(Reg.DeviceFeatures) & 0xff, F(BalloonFeature.MUST_TELL_HOST) | F(BalloonFeature.STATS_VQ) | F(BalloonFeature.PAGE_REPORTING), 'no DEFLATE_ON_OOM unless configured, no FREE_PAGE_HINT, no PAGE_POISON');
  w(Reg.DeviceFeaturesSel, 1);
  assert.equal(r(Reg.DeviceFeatures) & 1, 1, 'VERSION_1');
  assert.equal(r(Reg.Status) & Status.FeaturesOk, Status.FeaturesOk);
  assert.equal(t.read(Reg.Config, 4), 1234, 'num_pages');
  assert.equal(t.read(Reg.Config + 4, 4), 0, 'actual');
  t.write(Reg.Config + 4, 4, 777);
  assert.equal(dev.actual, 777, 'the driver writes actual');
  t.write(Reg.Config, 4, 5);
  assert.equal(t.read(Reg.Config, 4), 1234, 'num_pages is the host\'s');
  irq.length = 0;
  dev.setTarget(4096);
  assert.equal(t.read(Reg.Config, 4), 4096);
  assert.equal(r(Reg.InterruptStatus) & INT_CONFIG_CHANGE, INT_CONFIG_CHANGE, 'a target change interrupts');
  assert.equal(irq.at(-1), true);
  assert.ok(activity.length > 0, 'and wakes the harts');

  const oom = rig({ device: { deflateOnOom: true, stats: false, freePageReporting: false } });
  oom.w(Reg.DeviceFeaturesSel, 0);
  assert.equal(oom.r(Reg.DeviceFeatures) & 0xff, F(BalloonFeature.MUST_TELL_HOST) | F(BalloonFeature.DEFLATE_ON_OOM));
  oom.w(Reg.QueueSel, 2);
  assert.equal(oom.r(Reg.QueueNumMax), 0, 'only inflateq and deflateq without stats and reporting');
});

test('virtio-balloon: queues are numbered densely as Linux does (reporting_vq is 2 without STATS_VQ)', () => {
  const full = rig();
  assert.deepEqual([full.dev.queueIndex('stats'), full.dev.queueIndex('reporting')], [2, 3]);
  const noStats = rig({ accept: ALL & ~F(BalloonFeature.STATS_VQ) });
  assert.deepEqual([noStats.dev.queueIndex('stats'), noStats.dev.queueIndex('reporting')], [null, 2]);
  // A report on queue 2 of that device releases memory (and is not taken as statistics).
  noStats.mem.bytes.fill(0x5a, 0x200000, 0x400000);
  noStats.post(2, 0, [[BASE + 0x200000, 0x200000, WRITE]]);
  assert.equal(noStats.usedIdx(2), 1);
  assert.equal(noStats.dev.counters.reports, 1);
  assert.equal(noStats.dev.counters.statsUpdates, 0);
  const noReport = rig({ accept: ALL & ~F(BalloonFeature.PAGE_REPORTING) });
  assert.deepEqual([noReport.dev.queueIndex('stats'), noReport.dev.queueIndex('reporting')], [2, null]);
});

test('virtio-balloon: inflate releases in-RAM pages (they read back as zeros) once the inflation reaches its target, skips out-of-range PFNs, deflate only counts', () => {
  const { mem, dev, postPfns, usedIdx, logs, r, t } = rig({ device: { targetPages: 3 } });
  const a = BASE + 0x100000, b = BASE + 0x101000, c = BASE + 0x300000;
  mem.bytes.fill(0xa5, 0x100000, 0x102000);
  mem.bytes.fill(0xa5, 0x300000, 0x301000);
  mem.bytes.fill(0x3c, 0x102000, 0x103000); // a neighbour not in the balloon
  const bad = [0, pfnOf(BASE) - 1, pfnOf(mem.end), 0xffff_ffff];
  postPfns(0, BUF, [pfnOf(c), pfnOf(b), bad[0], pfnOf(a), bad[1], bad[2], bad[3]]);
  assert.equal(usedIdx(0), 1, 'the chain is returned');
  assert.equal(dev.counters.inflates, 1);
  assert.equal(dev.counters.inflatedPages, 3);
  assert.equal(dev.counters.badPfns, 4);
  assert.equal(logs.filter((l) => /outside guest RAM/.test(l)).length, 4, logs.join('\n'));
  assert.equal(r(Reg.Status) & Status.DeviceNeedsReset, 0, 'bad PFNs do not break the device');
  assert.equal(dev.counters.releaseCalls, 0, 'pages of incomplete huge pages wait for the inflation to end');
  t.write(Reg.Config + 4, 4, 3); // the driver: actual = 3, the target
  if (canReleasePages()) {
    assert.equal(dev.counters.releaseCalls, 2, 'a and b coalesce into one run, c is another');
    assert.equal(dev.counters.releasedBytes, 3 * 4096);
    assert.ok(mem.bytes.subarray(0x100000, 0x102000).every((x) => x === 0), 'inflated pages read zeros');
    assert.ok(mem.bytes.subarray(0x300000, 0x301000).every((x) => x === 0));
  } else {
    assert.equal(dev.counters.releasedBytes, 0, 'without the addon nothing is claimed released');
  }
  assert.ok(mem.bytes.subarray(0x102000, 0x103000).every((x) => x === 0x3c), 'the neighbouring page is untouched');
  postPfns(1, BUF, [pfnOf(a), pfnOf(b), bad[3]], 2);
  assert.equal(usedIdx(1), 1);
  assert.equal(dev.counters.deflates, 1);
  assert.equal(dev.counters.deflatedPages, 2);
  assert.equal(dev.counters.badPfns, 5);
});

test('virtio-balloon: pfnRuns sorts, merges neighbours and duplicates', () => {
  assert.deepEqual(pfnRuns([5, 3, 4, 4, 10, 0x80000, 0x80001]), [[3 * 4096, 3 * 4096], [10 * 4096, 4096], [0x80000 * 4096, 2 * 4096]]);
  assert.deepEqual(pfnRuns([]), []);
});

test('virtio-balloon: inflating touched memory lowers the process RSS (MADV_DONTNEED)', { skip: !canReleasePages() && 'no madvise addon' }, () => {
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
  const { mem, dev, postPfns } = rig({ ram: 64 * 1024 * 1024 });
  const from = 16 * 1024 * 1024, len = 32 * 1024 * 1024;
  // A first inflate of untouched pages warms the device's code up: V8 optimizing it holds a few MiB the measurement would count.
  const warm: number[] = [];
  for (let off = from + len; off < 64 * 1024 * 1024; off += 4096) warm.push(pfnOf(BASE + off));
  postPfns(0, BUF, warm, 4);
  postPfns(1, BUF, warm, 5);
  const warmReleased = dev.counters.releasedBytes;
  mem.bytes.fill(1, from, from + len);
  const before = rss();
  const pfns: number[] = [];
  for (let off = from; off < from + len; off += 4096) pfns.push(pfnOf(BASE + off));
  postPfns(0, BUF, pfns); // 8,192 PFNs: one 32 KiB buffer
  // Each huge page the chain completes goes back whole at once; at most the two at the ends wait.
  assert.ok(dev.counters.releasedBytes - warmReleased >= len - 4 * 1024 * 1024, `released ${dev.counters.releasedBytes - warmReleased} at once`);
  dev.save(); // a snapshot gives back what waits (its state has no place for it)
  const after = rss();
  assert.equal(dev.counters.releasedBytes - warmReleased, len);
  assert.ok(before - after > 24 * 1024 * 1024, `RSS ${before} -> ${after}`);
  assert.ok(mem.bytes.subarray(from, from + len).every((x) => x === 0));
});

test('virtio-balloon: inflated pages go back by whole host huge pages (no split), the rest when the inflation stops; deflated ones never', { skip: !canReleasePages() && 'no madvise addon' }, async () => {
  const { mem, dev, postPfns, usedIdx } = rig({ ram: 16 * 1024 * 1024, device: { targetPages: 4096 } });
  const huge = 2 * 1024 * 1024;
  const start = mem.hugePageOffset + huge; // a whole host huge page inside RAM
  const pages = (from: number, n: number) => Array.from({ length: n }, (_, i) => pfnOf(BASE + from) + i);
  mem.bytes.fill(7, start, start + huge);
  // Linux sends 256 PFNs (1 MiB) a chain: the first half waits, the second completes the huge page.
  postPfns(0, BUF, pages(start + huge / 2, 256));
  assert.equal(dev.counters.releaseCalls, 0, 'half a huge page waits');
  assert.ok(mem.bytes.subarray(start, start + huge).every((x) => x === 7), 'and stays as it was');
  postPfns(0, BUF + 0x1000, pages(start, 256), 1);
  assert.equal(usedIdx(0), 2);
  assert.deepEqual([dev.counters.releaseCalls, dev.counters.releasedBytes], [1, huge], 'one madvise of the whole 2 MiB');
  assert.ok(mem.bytes.subarray(start, start + huge).every((x) => x === 0));
  // Ten pages of another huge page, four of them deflated before the inflation stops: six go back, after PENDING_MS.
  const other = start + 2 * huge;
  mem.bytes.fill(9, other, other + 10 * 4096);
  postPfns(0, BUF + 0x2000, pages(other, 10), 2);
  postPfns(1, BUF + 0x3000, pages(other + 6 * 4096, 4), 3);
  assert.equal(dev.counters.releaseCalls, 1);
  await new Promise((r) => setTimeout(r, 1300));
  assert.deepEqual([dev.counters.releaseCalls, dev.counters.releasedBytes], [2, huge + 6 * 4096], 'the six still in the balloon, in one run');
  assert.ok(mem.bytes.subarray(other, other + 6 * 4096).every((x) => x === 0));
  assert.ok(mem.bytes.subarray(other + 6 * 4096, other + 10 * 4096).every((x) => x === 9), 'the deflated pages were never given back: the guest\'s data is there');
  // A driver reset drops what waits: every page is the guest's again.
  postPfns(0, BUF + 0x4000, pages(other + 20 * 4096, 4), 4);
  dev.reset();
  await new Promise((r) => setTimeout(r, 1300));
  assert.equal(dev.counters.releaseCalls, 2);
});

test('virtio-balloon: statistics buffer is kept, parsed, and handed back for fresh numbers', () => {
  const { mem, dev, post, usedIdx, usedId, irq, r, w } = rig({ device: { isRunning: () => true } });
  const put = (at: number, stats: [number, bigint][]) => stats.forEach(([tag, v], i) => {
    mem.writeU16(at + 10 * i, tag); mem.writeU64(at + 10 * i + 2, v);
  });
  put(BUF, [[BalloonStat.MEMFREE, 100n << 20n], [BalloonStat.MEMTOT, 256n << 20n], [99, 5n], [BalloonStat.MAJFLT, 7n]]);
  assert.equal(dev.requestStats(), false, 'nothing to hand back before the driver posts a buffer');
  post(2, 0, [[BUF, 40, 0]]);
  assert.equal(usedIdx(2), 0, 'the device keeps the buffer');
  assert.equal(dev.statistics.get(BalloonStat.MEMFREE), 100n << 20n);
  assert.equal(dev.statistics.get(BalloonStat.MEMTOT), 256n << 20n);
  assert.equal(dev.statistics.get(BalloonStat.MAJFLT), 7n);
  assert.equal(dev.statistics.has(99), false, 'unknown tags are ignored');
  w(Reg.InterruptACK, INT_USED_BUFFER);
  irq.length = 0;
  let updated = 0;
  assert.equal(dev.requestStats(() => updated++), true);
  assert.equal(usedIdx(2), 1, 'handed back');
  assert.equal(usedId(2, 0), 0);
  assert.equal(r(Reg.InterruptStatus) & INT_USED_BUFFER, INT_USED_BUFFER);
  assert.equal(irq.at(-1), true);
  assert.equal(dev.requestStats(), false, 'no second request while the guest holds the buffer');
  put(BUF, [[BalloonStat.MEMFREE, 50n << 20n]]);
  post(2, 0, [[BUF, 10, 0]]);
  assert.equal(updated, 1, 'the waiter is told');
  assert.equal(dev.statistics.get(BalloonStat.MEMFREE), 50n << 20n);
  assert.equal(dev.statistics.has(BalloonStat.MEMTOT), false, 'a stat the guest did not send this time is gone');
  // A buffer that is not whole entries: the whole ones count, the device goes on.
  w(Reg.InterruptACK, INT_USED_BUFFER);
  dev.requestStats();
  put(BUF, [[BalloonStat.AVAIL, 9n]]);
  post(2, 0, [[BUF, 15, 0]]);
  assert.equal(dev.statistics.get(BalloonStat.AVAIL), 9n);
  assert.equal(dev.counters.malformed, 1);
  assert.equal(r(Reg.Status) & Status.DeviceNeedsReset, 0);
  // The state survives a snapshot: a restored device hands back the same buffer.
  const saved = JSON.parse(JSON.stringify(dev.save())) as unknown;
  const other = rig({ device: { isRunning: () => true } });
  other.dev.restore(saved);
  assert.equal(other.dev.statistics.get(BalloonStat.AVAIL), 9n);
  assert.deepEqual(other.dev.counters, dev.counters);
});

test('virtio-balloon: the statistics timer does not touch a paused VM', () => {
  let running = false;
  const { dev, post, usedIdx } = rig({ device: { isRunning: () => running } });
  post(2, 0, [[BUF, 10, 0]]);
  assert.equal(dev.requestStats(), false);
  assert.equal(usedIdx(2), 0);
  running = true;
  assert.equal(dev.requestStats(), true);
  assert.equal(usedIdx(2), 1);
});

test('virtio-balloon: free page reporting releases whole pages of each range and returns the buffer', () => {
  const { mem, dev, post, usedIdx, logs, r } = rig();
  mem.bytes.fill(0x77, 0x200000, 0x400000);
  mem.bytes.fill(0x66, 0x10000 + 0x3000, 0x10000 + 0x6000);
  // Two ranges in one chain (Linux posts a scatter list of device-writable buffers), one not page-aligned.
  post(3, 0, [[BASE + 0x200000, 0x200000, WRITE], [BASE + 0x13800, 0x2800, WRITE]]);
  assert.equal(usedIdx(3), 1);
  assert.equal(dev.counters.reports, 1);
  assert.equal(dev.counters.malformed, 1, 'the unaligned range is reported');
  assert.ok(logs.some((l) => /not whole 4 KiB pages/.test(l)));
  assert.equal(r(Reg.Status) & Status.DeviceNeedsReset, 0);
  if (canReleasePages()) {
    assert.equal(dev.counters.releasedBytes, 0x200000 + 0x2000, 'the 2 MiB range and the two whole pages of the other');
    assert.ok(mem.bytes.subarray(0x200000, 0x400000).every((x) => x === 0));
    assert.ok(mem.bytes.subarray(0x14000, 0x16000).every((x) => x === 0));
  }
  assert.ok(mem.bytes.subarray(0x13000, 0x14000).every((x) => x === 0x66), 'the partial page is kept');
});

test('virtio-balloon: malformed chains are bounded, counted and never stop the device', () => {
  const { mem, dev, post, postPfns, usedIdx, r, logs } = rig();
  // A PFN buffer that is not whole PFNs.
  mem.writeU32(BUF, pfnOf(BASE + 0x100000));
  post(0, 0, [[BUF, 6, 0]]);
  assert.equal(usedIdx(0), 1);
  assert.equal(dev.counters.inflatedPages, 1);
  assert.equal(dev.counters.malformed, 1);
  // An oversized PFN list (128 KiB of PFNs): only the first 64 KiB are read.
  post(0, 1, [[BASE + 0x100000, 0x20000, 0]]);
  assert.equal(usedIdx(0), 2);
  assert.equal(dev.counters.malformed, 2);
  assert.equal(dev.counters.badPfns, 16384, 'the first 16,384 entries (zeros: PFN 0, outside RAM) were read, no more');
  // A descriptor outside RAM is a transport-level error: DEVICE_NEEDS_RESET, no exception.
  postPfns(0, BUF, []);
  post(0, 2, [[BASE + mem.size - 4, 64, 0]]);
  assert.equal(r(Reg.Status) & Status.DeviceNeedsReset, Status.DeviceNeedsReset);
  assert.ok(logs.some((l) => /outside RAM/.test(l)));
});
