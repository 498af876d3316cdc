/**
 * virtio-balloon (virtio 1.2 §5.5, "traditional memory balloon"). The host sets a target in
 * `num_pages` (4 KiB pages); the guest's driver allocates that many pages and sends their page
 * frame numbers on the inflateq, or gives pages back and sends them on the deflateq, and writes
 * how many the balloon holds into `actual`.
 *
 * Inflate: every PFN is checked to name a page of guest RAM (others are counted, logged and
 * skipped) and goes back to the host with madvise(MADV_DONTNEED) (GuestMemory.discard): the host
 * frees the pages and the guest reads zeros there if it touches them. Guest RAM is in 2 MiB
 * transparent huge pages, and Linux sends at most 256 PFNs (1 MiB) a chain: released chain by
 * chain, every huge page would be split first, and the memory would come back in 4 KiB pages
 * when the guest uses it again (docs/PERFORMANCE.md "Huge pages and the balloon"). So inflated
 * pages wait, by host huge page, until their huge page is complete (then it goes back whole) or
 * the inflation ends (the guest's actual reaches the target, or no inflate for PENDING_MS; then
 * the rest goes back in runs). A page waiting is still the guest's memory on the host, which is
 * safe: with MUST_TELL_HOST the guest names a page on the deflateq before it uses it again, and
 * a deflated page simply stops waiting. Reported free pages (below) cannot wait: the guest may
 * take them back as soon as the report is returned.
 * Deflate: nothing to do on the host (the pages fault back in on first touch), only counted.
 *
 * Statistics (STATS_VQ): the driver posts one buffer of (le16 tag, le64 value) pairs; the device
 * keeps it and, every polling interval, hands it back (used ring + interrupt) to ask for fresh
 * numbers, as QEMU and Firecracker do. Free page reporting (PAGE_REPORTING): each buffer on the
 * reporting_vq lists free ranges (2 MiB chunks with Linux's defaults), released like inflated
 * pages and returned.
 *
 * Queue numbering follows Linux (drivers/virtio/virtio_balloon.c init_vqs and virtio_mmio's
 * vm_find_vqs): only queues whose feature was negotiated exist and they are numbered densely,
 * so statsq is 2 when STATS_VQ was negotiated, and reporting_vq is 3 after it, or 2 without it.
 * FREE_PAGE_HINT is not offered, so there is no free_page_vq.
 *
 * Everything the guest supplies is bounded: at most MAX_PFN_BYTES of PFNs per chain, at most
 * MAX_STATS_BYTES of statistics; a malformed chain is counted and returned, never an exception
 * into the CPU (queue-level violations go to the transport, which asks for a reset).
 */
import type { AccessWidth } from '../mmio.js';
import type { GuestMemory } from '../../hw/memory.js';
import { savedInt, savedObject, SnapshotStateError } from '../../hw/snapshot-state.js';
import type { VirtioDevice, VirtioTransport } from './mmio.js';
import type { DescriptorChain, GuestBuffer, VirtQueue } from './queue.js';

export const VIRTIO_ID_BALLOON = 5;
/** The device status bit a driver sets once it runs the device (virtio 1.2 §2.1). */
const DRIVER_OK = 4;

export const BalloonFeature = { MUST_TELL_HOST: 0, STATS_VQ: 1, DEFLATE_ON_OOM: 2, FREE_PAGE_HINT: 3, PAGE_POISON: 4, PAGE_REPORTING: 5 } as const;

/** The balloon's page size: PFNs and num_pages/actual count 4 KiB pages (VIRTIO_BALLOON_PFN_SHIFT 12). */
export const BALLOON_PAGE = 4096;
/** Queue roles, in Linux's order. */
export type BalloonQueue = 'inflate' | 'deflate' | 'stats' | 'reporting';

/** Statistics tags (include/uapi/linux/virtio_balloon.h). */
export const BalloonStat = {
  SWAP_IN: 0, SWAP_OUT: 1, MAJFLT: 2, MINFLT: 3, MEMFREE: 4, MEMTOT: 5, AVAIL: 6, CACHES: 7,
  HTLB_PGALLOC: 8, HTLB_PGFAIL: 9, OOM_KILL: 10, ALLOC_STALL: 11, ASYNC_SCAN: 12, DIRECT_SCAN: 13,
  ASYNC_RECLAIM: 14, DIRECT_RECLAIM: 15,
} as const;
/** Tags above this are ignored (a newer driver's); the table has room for all known ones. */
const MAX_STAT_TAG = 15;
const STAT_ENTRY = 10; // __le16 tag, __le64 val, packed

/** struct virtio_balloon_config: num_pages, actual, free_page_hint_cmd_id, poison_val (le32 each). */
const CONFIG_SIZE = 16;
const QUEUE_SIZE = 128;
/** PFN bytes read from one inflate/deflate chain at most (Linux sends up to 256 PFNs, 1 KiB). */
const MAX_PFN_BYTES = 64 * 1024;
/** Statistics bytes read from one chain at most (16 tags are 160 bytes). */
const MAX_STATS_BYTES = 4096;
/** Log lines about bad guest input, at most (then only counted). */
const MAX_LOG_LINES = 16;
/** Inflated pages of incomplete huge pages go back this long after the last inflate request at the latest. */
const PENDING_MS = 1000;
const HUGE_PAGE = 2 * 1024 * 1024;

export interface BalloonOptions {
  /** The guest RAM the PFNs refer to (the same the transport uses). */
  memory: GuestMemory;
  /** Offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM (the guest may deflate under memory pressure). */
  deflateOnOom?: boolean;
  /** Offer STATS_VQ; statistics are requested every `statsIntervalS` seconds (0: only when asked). Default on. */
  stats?: boolean;
  statsIntervalS?: number;
  /** Offer PAGE_REPORTING (free page reporting). Default on. */
  freePageReporting?: boolean;
  /** Initial target in 4 KiB pages. */
  targetPages?: number;
  /** The device has work for the harts outside a driver notify (config change, stats request): wake them. */
  onActivity?: () => void;
  /** False while the VM is paused or stopped: the statistics timer then leaves guest memory alone. */
  isRunning?: () => boolean;
  log?: (line: string) => void;
  name?: string;
}

export interface BalloonCounters {
  /** Inflate/deflate/report chains handled. */
  inflates: number;
  deflates: number;
  reports: number;
  /** Pages named in inflate and deflate chains (good ones). */
  inflatedPages: number;
  deflatedPages: number;
  /** PFNs outside guest RAM, skipped. */
  badPfns: number;
  /** Chains without the buffers their queue needs, or with a length that is not whole entries. */
  malformed: number;
  /** Bytes given back to the host with MADV_DONTNEED (inflate and free page reporting). */
  releasedBytes: number;
  /** madvise calls (runs released). */
  releaseCalls: number;
  /** Statistics buffers received. */
  statsUpdates: number;
}

/** What VirtioBalloon.save() returns. */
export interface BalloonState {
  numPages: number;
  actual: number;
  poison: number;
  statsHead: number | null;
  statsIntervalS: number;
  stats: [number, string][];
  counters: BalloonCounters;
}

const zeroCounters = (): BalloonCounters => ({ inflates: 0, deflates: 0, reports: 0, inflatedPages: 0, deflatedPages: 0, badPfns: 0, malformed: 0, releasedBytes: 0, releaseCalls: 0, statsUpdates: 0 });

export class VirtioBalloon implements VirtioDevice {
  readonly name: string;
  readonly deviceId = VIRTIO_ID_BALLOON;
  readonly features: bigint;
  readonly queueCount: number;
  readonly queueMaxSize = QUEUE_SIZE;
  readonly counters: BalloonCounters = zeroCounters();
  private readonly memory: GuestMemory;
  private readonly opts: BalloonOptions;
  private readonly log: (line: string) => void;
  private logLines = 0;
  private transport: VirtioTransport | null = null;
  private numPages: number;
  private actualPages = 0;
  private poison = 0;
  /** The statistics buffer the device holds until it asks for fresh numbers. */
  private statsHead: number | null = null;
  private statsDue = false;
  private statsIntervalS: number;
  private statsTimer: NodeJS.Timeout | null = null;
  private lastStats = new Map<number, bigint>();
  private statsWaiters: (() => void)[] = [];
  /** Inflated pages not yet given back, by host huge page (its index from RAM's hugePageOffset): a bit per page, and how many are set. */
  private pending = new Map<number, { bits: Uint32Array; count: number }>();
  private pendingTimer: NodeJS.Timeout | null = null;

  constructor(opts: BalloonOptions) {
    this.opts = opts;
    this.memory = opts.memory;
    this.name = opts.name ?? 'virtio-balloon';
    this.log = opts.log ?? ((l) => console.error(l));
    const bit = (b: number, on: boolean): bigint => (on ? 1n << BigInt(b) : 0n);
    const stats = opts.stats ?? true;
    const reporting = opts.freePageReporting ?? true;
    this.features = bit(BalloonFeature.MUST_TELL_HOST, true) | bit(BalloonFeature.STATS_VQ, stats)
      | bit(BalloonFeature.DEFLATE_ON_OOM, opts.deflateOnOom ?? false) | bit(BalloonFeature.PAGE_REPORTING, reporting);
    this.queueCount = 2 + (stats ? 1 : 0) + (reporting ? 1 : 0);
    this.numPages = this.checkedPages(opts.targetPages ?? 0);
    this.statsIntervalS = stats ? Math.max(0, Math.floor(opts.statsIntervalS ?? 0)) : 0;
    this.armStatsTimer();
  }

  attach(transport: VirtioTransport): void { this.transport = transport; }

  private checkedPages(pages: number): number {
    if (!Number.isInteger(pages) || pages < 0 || pages > 0xffff_ffff) throw new RangeError(`balloon target of ${pages} pages is not a 32-bit page count`);
    return pages;
  }

  /** Target in 4 KiB pages (num_pages). */
  get targetPages(): number { return this.numPages; }
  /** Pages the guest says the balloon holds (actual). */
  get actual(): number { return this.actualPages; }
  /** Whether a guest driver runs the device (DRIVER_OK set; a reset, e.g. rmmod virtio_balloon, clears it). */
  get driverOk(): boolean { return ((this.transport?.currentStatus ?? 0) & DRIVER_OK) !== 0; }
  get statsEnabled(): boolean { return (this.features >> BigInt(BalloonFeature.STATS_VQ) & 1n) === 1n; }
  get statsInterval(): number { return this.statsIntervalS; }
  /** Bytes of guest RAM the host holds now, by the host kernel's count (null where it cannot tell): what the guest really gave back shows here. */
  get residentBytes(): number | null { return this.memory.residentBytes(); }
  /** The latest statistics from the guest, by tag (empty until the driver sent some). */
  get statistics(): ReadonlyMap<number, bigint> { return this.lastStats; }

  /** Sets num_pages and tells the driver (configuration-change interrupt). */
  setTarget(pages: number): void {
    this.numPages = this.checkedPages(pages);
    this.transport?.configChanged();
    this.opts.onActivity?.();
  }

  /** Changes how often statistics are requested (seconds; 0 stops the polling). Only with STATS_VQ. */
  setStatsInterval(seconds: number): void {
    if (!this.statsEnabled) throw new Error(`${this.name}: statistics are not enabled`);
    if (!Number.isInteger(seconds) || seconds < 0) throw new RangeError(`statistics interval ${seconds} is not a whole number of seconds`);
    this.statsIntervalS = seconds;
    this.armStatsTimer();
  }

  private armStatsTimer(): void {
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.statsTimer = null;
    if (this.statsIntervalS <= 0) return;
    this.statsTimer = setInterval(() => this.requestStats(), this.statsIntervalS * 1000);
    this.statsTimer.unref();
  }

  /**
   * Hands the held statistics buffer back to the guest so that it sends fresh numbers. Returns
   * false when there is nothing to hand back (no driver buffer yet, or a request pending) or the
   * VM is not running. `onUpdate` is called at the next statistics buffer.
   */
  requestStats(onUpdate?: () => void): boolean {
    if (onUpdate) this.statsWaiters.push(onUpdate);
    if (this.opts.isRunning?.() === false) return false;
    const index = this.queueIndex('stats');
    if (index === null || !this.transport?.kick) return false;
    if (this.statsHead === null) {
      // Linux posts its first buffer (with the numbers at probe) and kicks before DRIVER_OK,
      // when the transport ignores notifications: look for it now.
      this.transport.kick(index);
      return false;
    }
    this.statsDue = true;
    this.transport.kick(index);
    this.opts.onActivity?.();
    return true;
  }

  /** Stops the timers (the machine is closing). */
  close(): void {
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.statsTimer = null;
    this.dropPending();
  }

  private negotiated(bit: number): boolean {
    const f = this.transport?.negotiatedFeatures ?? this.features;
    return ((f >> BigInt(bit)) & 1n) === 1n;
  }

  /** The queue index of a role under the negotiated features (Linux numbers existing queues densely), or null. */
  queueIndex(role: BalloonQueue): number | null {
    const stats = this.negotiated(BalloonFeature.STATS_VQ);
    switch (role) {
      case 'inflate': return 0;
      case 'deflate': return 1;
      case 'stats': return stats ? 2 : null;
      case 'reporting': return this.negotiated(BalloonFeature.PAGE_REPORTING) ? (stats ? 3 : 2) : null;
    }
  }

  private roleOf(index: number): BalloonQueue | null {
    for (const role of ['inflate', 'deflate', 'stats', 'reporting'] as const) if (this.queueIndex(role) === index) return role;
    return null;
  }

  /** The device's state; inflated pages still waiting go back to the host first (the state has no place for them). */
  save(): BalloonState {
    this.releasePending();
    return {
      numPages: this.numPages, actual: this.actualPages, poison: this.poison, statsHead: this.statsHead,
      statsIntervalS: this.statsIntervalS,
      stats: [...this.lastStats].map(([tag, v]) => [tag, v.toString()]),
      counters: { ...this.counters },
    };
  }

  restore(saved: unknown): void {
    const s = savedObject(this.name, saved);
    const u32 = (k: string): number => savedInt(`${this.name}.${k}`, s[k], 0, 0xffff_ffff);
    this.numPages = u32('numPages');
    this.actualPages = u32('actual');
    this.poison = u32('poison');
    this.statsHead = s.statsHead === null ? null : savedInt(`${this.name}.statsHead`, s.statsHead, 0, QUEUE_SIZE - 1);
    if (this.statsEnabled) this.statsIntervalS = savedInt(`${this.name}.statsIntervalS`, s.statsIntervalS, 0, 0x7fff_ffff);
    if (!Array.isArray(s.stats)) throw new SnapshotStateError(`${this.name}.stats: not a list`);
    this.lastStats = new Map(s.stats.map((e: unknown) => {
      if (!Array.isArray(e) || typeof e[1] !== 'string' || !/^\d{1,20}$/.test(e[1])) throw new SnapshotStateError(`${this.name}.stats: ${JSON.stringify(e)} is not a [tag, value] pair`);
      return [savedInt(`${this.name}.stats tag`, e[0], 0, MAX_STAT_TAG), BigInt(e[1]) & 0xffff_ffff_ffff_ffffn] as [number, bigint];
    }));
    const c = savedObject(`${this.name}.counters`, s.counters);
    for (const k of Object.keys(this.counters) as (keyof BalloonCounters)[]) this.counters[k] = savedInt(`${this.name}.counters.${k}`, c[k], 0, Number.MAX_SAFE_INTEGER);
    this.armStatsTimer();
  }

  configRead(offset: number, width: AccessWidth): number {
    if (offset < 0 || offset + width > CONFIG_SIZE) return 0;
    const c = new DataView(new ArrayBuffer(CONFIG_SIZE));
    c.setUint32(0, this.numPages, true);
    c.setUint32(4, this.actualPages, true);
    c.setUint32(8, 0, true); // free_page_hint_cmd_id: FREE_PAGE_HINT is not offered
    c.setUint32(12, this.poison, true);
    return width === 1 ? c.getUint8(offset) : width === 2 ? c.getUint16(offset, true) : c.getUint32(offset, true);
  }

  /** The driver writes `actual` (and poison_val, kept though PAGE_POISON is not offered); num_pages is the host's. */
  configWrite(offset: number, width: AccessWidth, value: number): void {
    if (offset < 4 || offset + width > CONFIG_SIZE || (offset >= 8 && offset < 12)) return;
    const c = new DataView(new ArrayBuffer(CONFIG_SIZE));
    c.setUint32(4, this.actualPages, true);
    c.setUint32(12, this.poison, true);
    if (width === 1) c.setUint8(offset, value);
    else if (width === 2) c.setUint16(offset, value, true);
    else c.setUint32(offset, value >>> 0, true);
    this.actualPages = c.getUint32(4, true);
    this.poison = c.getUint32(12, true);
    // The inflation has reached its target: what still waits goes back now.
    if (this.actualPages >= this.numPages) this.releasePending();
  }

  /** Driver reset: the held statistics buffer belongs to the old rings. The target stays; actual is the new driver's to set. */
  reset(): void {
    this.dropPending(); // every page is the guest's again: none is given back
    this.statsHead = null;
    this.statsDue = false;
    this.actualPages = 0;
    this.poison = 0;
  }

  notify(queueIndex: number, queue: VirtQueue, transport: VirtioTransport): void {
    this.transport = transport;
    switch (this.roleOf(queueIndex)) {
      case 'inflate': this.pages(queue, true); break;
      case 'deflate': this.pages(queue, false); break;
      case 'stats': this.stats(queue); break;
      case 'reporting': this.report(queue); break;
      default: break;
    }
  }

  private complain(message: string): void {
    if (this.logLines >= MAX_LOG_LINES) return;
    this.logLines++;
    this.log(`${this.name}: ${message}${this.logLines === MAX_LOG_LINES ? ' (further such messages are only counted)' : ''}`);
  }

  /** The chain's readable bytes (or, leniently, its writable ones when it has no readable buffer), at most `limit`. */
  private readChain(queue: VirtQueue, chain: DescriptorChain, limit: number): Uint8Array {
    if (chain.readable.length > 0) return queue.readAll(chain, limit);
    return queue.readAll({ head: chain.head, readable: chain.writable, writable: [] }, limit);
  }

  private pages(queue: VirtQueue, inflate: boolean): void {
    const what = inflate ? 'inflate' : 'deflate';
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      const total = [...chain.readable, ...chain.writable].reduce((n, b) => n + b.len, 0);
      const data = this.readChain(queue, chain, MAX_PFN_BYTES);
      queue.push(chain.head, 0);
      if (total % 4 !== 0 || total > MAX_PFN_BYTES) {
        this.counters.malformed++;
        this.complain(`${what} chain ${chain.head} holds ${total} bytes: ${total % 4 !== 0 ? 'not whole 32-bit PFNs' : `more than ${MAX_PFN_BYTES}; the first ${MAX_PFN_BYTES} are used`}`);
      }
      const view = new DataView(data.buffer, data.byteOffset, data.length & ~3);
      const pfns: number[] = [];
      for (let at = 0; at < view.byteLength; at += 4) {
        const pfn = view.getUint32(at, true);
        if (!this.memory.contains(pfn * BALLOON_PAGE, BALLOON_PAGE)) {
          this.counters.badPfns++;
          this.complain(`${what} PFN 0x${pfn.toString(16)} is outside guest RAM; skipped`);
          continue;
        }
        pfns.push(pfn);
      }
      if (inflate) {
        this.counters.inflates++;
        this.counters.inflatedPages += pfns.length;
        this.inflated(pfns);
      } else {
        this.counters.deflates++;
        this.counters.deflatedPages += pfns.length;
        this.deflated(pfns);
      }
    }
  }

  /** Host huge page `block`'s [first byte, end) as RAM offsets, cut to RAM. */
  private hugeBlock(block: number): [number, number] {
    const start = this.memory.hugePageOffset + block * HUGE_PAGE;
    return [Math.max(0, start), Math.min(this.memory.size, start + HUGE_PAGE)];
  }

  /** The host huge page of `pfn` (a page of RAM), and the page's index in it. */
  private hugeSlot(pfn: number): [number, number] {
    const at = pfn * BALLOON_PAGE - this.memory.base - this.memory.hugePageOffset;
    const block = Math.floor(at / HUGE_PAGE);
    return [block, (at - block * HUGE_PAGE) / BALLOON_PAGE];
  }

  /** Inflated pages wait by host huge page; a complete huge page goes back whole at once. */
  private inflated(pfns: number[]): void {
    for (const pfn of pfns) {
      const [block, bit] = this.hugeSlot(pfn);
      let p = this.pending.get(block);
      if (!p) this.pending.set(block, p = { bits: new Uint32Array(HUGE_PAGE / BALLOON_PAGE / 32), count: 0 });
      if (p.bits[bit >>> 5] & (1 << (bit & 31))) continue; // named twice
      p.bits[bit >>> 5] |= 1 << (bit & 31);
      const [start, end] = this.hugeBlock(block);
      if (++p.count === (end - start) / BALLOON_PAGE) {
        this.pending.delete(block);
        this.release([[this.memory.base + start, end - start]]);
      }
    }
    if (this.pendingTimer) clearTimeout(this.pendingTimer);
    this.pendingTimer = this.pending.size > 0 ? setTimeout(() => this.releasePending(), PENDING_MS) : null;
    this.pendingTimer?.unref();
  }

  /** Deflated pages are the guest's again: those still waiting stop waiting (they were never given back). */
  private deflated(pfns: number[]): void {
    for (const pfn of pfns) {
      const [block, bit] = this.hugeSlot(pfn);
      const p = this.pending.get(block);
      if (!p || !(p.bits[bit >>> 5] & (1 << (bit & 31)))) continue;
      p.bits[bit >>> 5] &= ~(1 << (bit & 31));
      if (--p.count === 0) this.pending.delete(block);
    }
  }

  /** Gives every waiting inflated page back now, in runs. */
  private releasePending(): void {
    const runs: [number, number][] = [];
    for (const [block, p] of this.pending) {
      const origin = this.memory.base + this.memory.hugePageOffset + block * HUGE_PAGE;
      for (let bit = 0; bit < HUGE_PAGE / BALLOON_PAGE; bit++) {
        if (!(p.bits[bit >>> 5] & (1 << (bit & 31)))) continue;
        const addr = origin + bit * BALLOON_PAGE;
        const last = runs.at(-1);
        if (last && last[0] + last[1] === addr) last[1] += BALLOON_PAGE;
        else runs.push([addr, BALLOON_PAGE]);
      }
    }
    this.dropPending();
    this.release(runs);
  }

  private dropPending(): void {
    this.pending.clear();
    if (this.pendingTimer) clearTimeout(this.pendingTimer);
    this.pendingTimer = null;
  }

  /** Gives runs of guest-physical pages ([address, bytes], in RAM, page-aligned) back to the host. */
  private release(runs: [number, number][]): void {
    for (const [addr, len] of runs) {
      if (this.memory.discard(addr, len)) {
        this.counters.releasedBytes += len;
        this.counters.releaseCalls++;
      }
    }
  }

  private stats(queue: VirtQueue): void {
    if (this.statsDue && this.statsHead !== null) {
      // The host asks for fresh numbers: the driver refills and reposts the same buffer.
      queue.push(this.statsHead, 0);
      this.statsHead = null;
    }
    this.statsDue = false;
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      const data = this.readChain(queue, chain, MAX_STATS_BYTES);
      if (this.statsHead !== null) queue.push(this.statsHead, 0); // a second buffer: keep the newest
      this.statsHead = chain.head;
      if (data.length % STAT_ENTRY !== 0) {
        this.counters.malformed++;
        this.complain(`statistics buffer of ${data.length} bytes is not whole ${STAT_ENTRY}-byte entries; the whole ones are used`);
      }
      const view = new DataView(data.buffer, data.byteOffset, data.length);
      const stats = new Map<number, bigint>();
      for (let at = 0; at + STAT_ENTRY <= data.length; at += STAT_ENTRY) {
        const tag = view.getUint16(at, true);
        if (tag <= MAX_STAT_TAG) stats.set(tag, view.getBigUint64(at + 2, true));
      }
      this.lastStats = stats;
      this.counters.statsUpdates++;
      const waiters = this.statsWaiters;
      this.statsWaiters = [];
      for (const w of waiters) w();
    }
  }

  private report(queue: VirtQueue): void {
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      // Linux posts the ranges as device-writable buffers (virtqueue_add_inbuf); take either kind.
      const ranges: GuestBuffer[] = [...chain.readable, ...chain.writable];
      queue.push(chain.head, 0);
      this.counters.reports++;
      const runs: [number, number][] = [];
      for (const r of ranges) {
        // Whole 4 KiB pages inside the range only (the queue checked it lies in RAM).
        const start = this.memory.base + Math.ceil((r.addr - this.memory.base) / BALLOON_PAGE) * BALLOON_PAGE;
        const end = this.memory.base + Math.floor((r.addr + r.len - this.memory.base) / BALLOON_PAGE) * BALLOON_PAGE;
        if (r.len === 0 || start !== r.addr || end !== r.addr + r.len) {
          this.counters.malformed++;
          this.complain(`reported range 0x${r.addr.toString(16)}+${r.len} is not whole 4 KiB pages${end > start ? '; its whole pages are used' : ''}`);
        }
        if (end > start) runs.push([start, end - start]);
      }
      this.release(runs);
    }
  }
}

/**
 * Sorts PFNs and merges neighbours (and duplicates) into [guest address, bytes] runs, so that
 * one madvise covers each run: a run spanning an aligned 2 MiB frees that huge page whole.
 */
export function pfnRuns(pfns: number[]): [number, number][] {
  const sorted = Uint32Array.from(pfns).sort();
  const runs: [number, number][] = [];
  let i = 0;
  while (i < sorted.length) {
    const first = sorted[i];
    let last = first;
    while (i + 1 < sorted.length && sorted[i + 1] <= last + 1) last = sorted[++i];
    i++;
    runs.push([first * BALLOON_PAGE, (last - first + 1) * BALLOON_PAGE]);
  }
  return runs;
}
