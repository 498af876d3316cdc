/**
 * The VM's balloon as the API sees it (Firecracker's /balloon and /balloon/statistics): the
 * configuration collected before InstanceStart, and, once the board runs, requests turned into
 * calls on its VirtioBalloon (src/devices/virtio/balloon.ts). Vm owns one; it checks the VM's
 * state through the callbacks it passes in and throws VmError-like RequestErrors with sentences.
 */
import { BalloonStat, BALLOON_PAGE, type VirtioBalloon } from '../devices/virtio/balloon.js';
import type { VirtioOptions } from '../machine/machine.js';
import type { Balloon, BalloonInfo, BalloonStats, BalloonStatsUpdate, BalloonUpdate } from './config.js';
import type { BalloonMetrics } from './metrics.js';

const PAGES_PER_MIB = (1024 * 1024) / BALLOON_PAGE;

/** Firecracker's statistics names by virtio tag. */
const STAT_NAMES: [number, keyof BalloonStats][] = [
  [BalloonStat.SWAP_IN, 'swap_in'], [BalloonStat.SWAP_OUT, 'swap_out'],
  [BalloonStat.MAJFLT, 'major_faults'], [BalloonStat.MINFLT, 'minor_faults'],
  [BalloonStat.MEMFREE, 'free_memory'], [BalloonStat.MEMTOT, 'total_memory'],
  [BalloonStat.AVAIL, 'available_memory'], [BalloonStat.CACHES, 'disk_caches'],
  [BalloonStat.HTLB_PGALLOC, 'hugetlb_allocations'], [BalloonStat.HTLB_PGFAIL, 'hugetlb_failures'],
  [BalloonStat.OOM_KILL, 'oom_kill'], [BalloonStat.ALLOC_STALL, 'alloc_stall'],
  [BalloonStat.ASYNC_SCAN, 'async_scan'], [BalloonStat.DIRECT_SCAN, 'direct_scan'],
  [BalloonStat.ASYNC_RECLAIM, 'async_reclaim'], [BalloonStat.DIRECT_RECLAIM, 'direct_reclaim'],
];

export interface VmBalloonHooks {
  /** The board's balloon once the VM runs (null before InstanceStart and without a balloon). */
  device: () => VirtioBalloon | null;
  /** Whether InstanceStart has happened (the VM is Running, Paused or Stopped, or starting). */
  started: () => boolean;
  /** Throws unless the VM is Not started (`what` names the request). */
  preBoot: (what: string) => void;
  /** Throws unless the VM is Running or Paused. */
  postBoot: (what: string) => void;
  /** Guest memory in MiB, as configured now. */
  memoryMib: () => number;
  /** Throws unless a virtio slot is free for one more device. */
  claimSlot: (what: string) => void;
  /** The error type to throw (VmError). */
  error: (message: string) => Error;
}

export class VmBalloon {
  private cfg: Required<Balloon> | null = null;

  constructor(private readonly hooks: VmBalloonHooks) {}

  get configured(): boolean { return this.cfg !== null; }

  private checkAmount(mib: number, what: string | null): void {
    const mem = this.hooks.memoryMib();
    if (mib > mem) throw this.hooks.error(`${what === null ? 'the balloon\'s ' : `${what}: `}amount_mib ${mib} is larger than the guest memory (${mem} MiB)`);
  }

  private need(what: string): Required<Balloon> {
    if (!this.cfg) throw this.hooks.error(`${what}: no balloon device is configured (PUT /balloon before InstanceStart)`);
    return this.cfg;
  }

  /** PUT /balloon: before InstanceStart only. */
  put(b: Balloon): void {
    const what = 'PUT /balloon';
    this.hooks.preBoot(what);
    this.checkAmount(b.amount_mib, what);
    if (!this.cfg) this.hooks.claimSlot(what);
    this.cfg = { amount_mib: b.amount_mib, deflate_on_oom: b.deflate_on_oom, stats_polling_interval_s: b.stats_polling_interval_s ?? 0, free_page_reporting: b.free_page_reporting ?? false };
  }

  /** PATCH /balloon: a new target (before InstanceStart: a new initial target). */
  patch(u: BalloonUpdate): void {
    const what = 'PATCH /balloon';
    const cfg = this.need(what);
    this.checkAmount(u.amount_mib, what);
    if (this.hooks.started()) {
      this.hooks.postBoot(what);
      this.hooks.device()?.setTarget(u.amount_mib * PAGES_PER_MIB);
    }
    cfg.amount_mib = u.amount_mib;
  }

  /** PATCH /balloon/statistics: statistics cannot be turned on or off once the device exists. */
  patchStats(u: BalloonStatsUpdate): void {
    const what = 'PATCH /balloon/statistics';
    const cfg = this.need(what);
    const next = u.stats_polling_interval_s;
    if (this.hooks.started()) {
      this.hooks.postBoot(what);
      if (cfg.stats_polling_interval_s === 0 && next !== 0) throw this.hooks.error(`${what}: statistics were disabled when the VM started (stats_polling_interval_s 0) and cannot be enabled now`);
      if (cfg.stats_polling_interval_s !== 0 && next === 0) throw this.hooks.error(`${what}: statistics cannot be disabled after InstanceStart; give an interval of at least 1 s`);
      this.hooks.device()?.setStatsInterval(next);
    }
    cfg.stats_polling_interval_s = next;
  }

  /** GET /balloon */
  info(): BalloonInfo {
    const cfg = this.need('GET /balloon');
    const out: BalloonInfo = { ...cfg };
    const dev = this.hooks.device();
    if (dev) Object.assign(out, sizes(dev));
    return out;
  }

  /** GET /balloon/statistics */
  statistics(): BalloonStats {
    const what = 'GET /balloon/statistics';
    const cfg = this.need(what);
    if (cfg.stats_polling_interval_s === 0) throw this.hooks.error(`${what}: the balloon's statistics are not enabled (stats_polling_interval_s 0 in PUT /balloon)`);
    const dev = this.hooks.device();
    if (!dev) throw this.hooks.error(`${what}: the VM is not started`);
    const out: BalloonStats = sizes(dev);
    for (const [tag, name] of STAT_NAMES) {
      const v = dev.statistics.get(tag);
      if (v !== undefined) (out as unknown as Record<string, number>)[name] = Number(v);
    }
    return out;
  }

  /** What the Machine gets (VirtioOptions.balloon), or undefined without a balloon; throws when it no longer fits the memory. */
  machineOption(): VirtioOptions['balloon'] {
    if (!this.cfg) return undefined;
    this.checkAmount(this.cfg.amount_mib, null);
    return {
      targetPages: this.cfg.amount_mib * PAGES_PER_MIB,
      deflateOnOom: this.cfg.deflate_on_oom,
      stats: this.cfg.stats_polling_interval_s > 0,
      statsIntervalS: this.cfg.stats_polling_interval_s,
      freePageReporting: this.cfg.free_page_reporting,
    };
  }

  /** The balloon section of GET /vm/config and of a snapshot's configuration. */
  config(): Balloon | undefined {
    return this.cfg ? { ...this.cfg } : undefined;
  }

  /** Forgets the configuration (a failed snapshot load). */
  clear(): void { this.cfg = null; }

  /** The balloon section of GET /metrics, when the board has one. */
  metrics(): BalloonMetrics | undefined {
    const dev = this.hooks.device();
    if (!dev) return undefined;
    const c = dev.counters;
    return {
      target_pages: dev.targetPages, actual_pages: dev.actual,
      inflate_count: c.inflates, deflate_count: c.deflates, report_count: c.reports,
      inflated_pages: c.inflatedPages, deflated_pages: c.deflatedPages,
      released_bytes: c.releasedBytes, bad_pfns: c.badPfns, malformed_requests: c.malformed, stats_updates: c.statsUpdates,
    };
  }
}

function sizes(dev: VirtioBalloon): { target_pages: number; actual_pages: number; target_mib: number; actual_mib: number; driver_ok: boolean; resident_mib?: number } {
  const resident = dev.residentBytes;
  return {
    target_pages: dev.targetPages, actual_pages: dev.actual,
    target_mib: Math.floor(dev.targetPages / PAGES_PER_MIB), actual_mib: Math.floor(dev.actual / PAGES_PER_MIB),
    driver_ok: dev.driverOk,
    // The host's own count of the guest RAM it holds: the host policy trusts it over actual, the guest's word.
    ...(resident !== null ? { resident_mib: Math.ceil(resident / (PAGES_PER_MIB * BALLOON_PAGE)) } : {}),
  };
}
