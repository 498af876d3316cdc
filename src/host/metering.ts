/**
 * Metering: what each VM was given and what it used, added up every second and written every
 * interval (30 s by default; `VESSEL_METER_INTERVAL_MS`) as one row per VM in the `meter` table
 * of host.db:
 *
 * - vCPU-seconds allotted (vCPUs x the seconds its process ran, paused included) and used (the
 *   CPU time of its cgroup or threads, from the usage sampler: the increase since the last row);
 * - memory MiB-seconds allotted (memory_mib while its process runs) and held (what the balloon
 *   leaves the guest, `actual_mib`, else the process's RSS);
 * - disk GiB-seconds (the apparent size of its disks, stopped or not: storage is held either way,
 *   and what its snapshots hold on disk, snapshots.ts);
 * - network bytes received and sent (the increase of its VMM's counters).
 *
 * Rows outlive their VM (a bill does not shrink when the VM is deleted). `usage()` sums them
 * over a window per tenant and VM and prices them (prices.ts-like settings from a JSON or
 * YAML file, `vessel host --prices FILE`), with what dedicated servers would have cost for the
 * same VMs: as many servers as the tenant's peak of allotted vCPUs and memory needs, for the
 * window's length.
 */
import * as fs from 'node:fs';
import type Database from 'better-sqlite3';
import { parse as parseYaml } from 'yaml';
import { HostStartError } from './errors.js';
import type { MemoryBalancer } from './memory.js';
import type { StateStore } from './store.js';
import type { Supervisor } from './supervisor.js';
import { snapshotBytes } from './snapshots.js';
import { diskGib, type Tenants } from './tenants.js';
import type { UsageSampler } from './usage.js';

export const METER_INTERVAL_MS = 30_000;
const MIB = 1024 * 1024;
const HOURS_PER_MONTH = 730;

export interface Prices {
  currency: string;
  /** Per vCPU-hour; of the vCPUs allotted (`cpu_basis: allotted`, the default, as clouds bill) or of CPU time used. */
  vcpu_hour: number;
  cpu_basis: 'allotted' | 'used';
  /** Per GiB-hour of memory; held after the balloon (`memory_basis: held`, the default) or allotted. */
  memory_gib_hour: number;
  memory_basis: 'allotted' | 'held';
  /** Per GiB-month of disk. */
  disk_gib_month: number;
  /** Per GiB sent or received. */
  network_gib: number;
  /** The dedicated server the cost case compares with: its monthly price and what it holds. */
  dedicated_server: { name: string; monthly: number; vcpus: number; memory_gib: number };
}

export const DEFAULT_PRICES: Prices = {
  currency: 'EUR',
  vcpu_hour: 0.006,
  cpu_basis: 'allotted',
  memory_gib_hour: 0.003,
  memory_basis: 'held',
  disk_gib_month: 0.05,
  network_gib: 0.01,
  dedicated_server: { name: '4 cores, 16 GiB', monthly: 40, vcpus: 4, memory_gib: 16 },
};

/** Reads a prices file (JSON or YAML): any field of Prices, the rest from the defaults. */
export function loadPrices(file?: string): Prices {
  if (file === undefined) return DEFAULT_PRICES;
  let raw: unknown;
  try {
    raw = parseYaml(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new HostStartError(`--prices ${file}: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new HostStartError(`--prices ${file}: not a mapping of prices`);
  const p = { ...DEFAULT_PRICES, ...(raw as object) } as Prices;
  const bad = (why: string): never => { throw new HostStartError(`--prices ${file}: ${why}`); };
  for (const k of Object.keys(raw)) if (!(k in DEFAULT_PRICES)) bad(`unknown field "${k}" (known: ${Object.keys(DEFAULT_PRICES).join(', ')})`);
  for (const k of ['vcpu_hour', 'memory_gib_hour', 'disk_gib_month', 'network_gib'] as const) {
    if (typeof p[k] !== 'number' || !(p[k] >= 0)) bad(`${k} must be a number of at least 0`);
  }
  if (typeof p.currency !== 'string' || p.currency === '') bad('currency must be a word such as EUR');
  if (p.cpu_basis !== 'allotted' && p.cpu_basis !== 'used') bad('cpu_basis must be "allotted" or "used"');
  if (p.memory_basis !== 'allotted' && p.memory_basis !== 'held') bad('memory_basis must be "allotted" or "held"');
  const d = { ...DEFAULT_PRICES.dedicated_server, ...(p.dedicated_server ?? {}) };
  if (!(d.monthly >= 0) || !(d.vcpus > 0) || !(d.memory_gib > 0)) bad('dedicated_server needs monthly >= 0, vcpus > 0 and memory_gib > 0');
  return { ...p, dedicated_server: d };
}

interface Baseline { pid: number; cpuS: number; rx: number; tx: number }
interface Totals { name: string; alloc: number; used: number; memAlloc: number; memHeld: number; rx: number; tx: number }

/** How often running VMs' time is added up (rows are written every METER_INTERVAL_MS). */
const ACCUMULATE_MS = 1000;

export interface UsageRow {
  vm_id: string;
  vm_name: string;
  vcpu_seconds_allotted: number;
  vcpu_seconds_used: number;
  memory_gib_hours_allotted: number;
  memory_gib_hours_held: number;
  disk_gib_hours: number;
  net_rx_bytes: number;
  net_tx_bytes: number;
  cost: Cost;
}

export interface Cost { cpu: number; memory: number; disk: number; network: number; total: number }

interface SumRow {
  tenant_id: string | null; tenant_name: string | null; vm_id: string; vm_name: string;
  alloc: number; used: number; mem_alloc: number; mem_held: number; disk: number; rx: number; tx: number;
}

const round = (x: number, d = 4): number => Math.round(x * 10 ** d) / 10 ** d;

export class Metering {
  private readonly db: Database.Database;
  private readonly baselines = new Map<string, Baseline>();
  private last = Date.now();
  private lastFlush = Date.now();
  private readonly startedAt = new Date().toISOString();
  private timer: NodeJS.Timeout | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  /** What each VM used since the last row (a VM deleted meanwhile keeps its entry until then). */
  private readonly pending = new Map<string, Totals>();
  /** What each VM with a process held at the last call, to count a process that ends to its end. */
  private readonly running = new Map<string, { vcpus: number; memoryMib: number; heldMib: number; startedAt: number }>();
  /** Each VM's tenant, kept so that the row of a VM deleted since the last one still names it. */
  private readonly tenantOf = new Map<string, string | null>();

  constructor(
    readonly store: StateStore,
    private readonly sup: Supervisor,
    private readonly sampler: UsageSampler,
    private readonly memory: MemoryBalancer,
    private readonly tenants: Tenants,
    readonly prices: Prices,
    readonly intervalMs = Number(process.env['VESSEL_METER_INTERVAL_MS'] ?? METER_INTERVAL_MS),
  ) {
    this.db = store.database;
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meter (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        seconds REAL NOT NULL,
        tenant_id TEXT,
        tenant_name TEXT,
        vm_id TEXT NOT NULL,
        vm_name TEXT NOT NULL,
        vcpu_s_alloc REAL NOT NULL,
        vcpu_s_used REAL NOT NULL,
        mem_mib_s_alloc REAL NOT NULL,
        mem_mib_s_held REAL NOT NULL,
        disk_gib_s REAL NOT NULL,
        net_rx_bytes INTEGER NOT NULL,
        net_tx_bytes INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS meter_at ON meter (at);
    `);
  }

  start(): void {
    this.last = this.lastFlush = Date.now();
    this.timer = setInterval(() => this.accumulate(), Math.max(100, Math.min(ACCUMULATE_MS, this.intervalMs)));
    this.timer.unref();
    this.flushTimer = setInterval(() => this.flush(), Math.max(200, this.intervalMs));
    this.flushTimer.unref();
  }

  /** Stops the timers after a last row for the time since the previous one. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.timer = this.flushTimer = null;
    try { this.flush(); } catch { /* the store may be closing */ }
  }

  /**
   * Adds the time since the last call to each VM's running totals (every second, so a VM that
   * runs for a few seconds between two rows is counted to the second; its CPU time and traffic to
   * the usage sampler's last sample, at most 2 s old).
   */
  accumulate(now = Date.now()): void {
    const prevTick = this.last;
    const dt = (now - prevTick) / 1000;
    this.last = now;
    if (dt <= 0) return;
    for (const vm of this.sup.list()) {
      const p = vm.proc;
      if (!p) {
        // Its process ended since the last call: count it up to its recorded end.
        const was = this.running.get(vm.id);
        const end = Date.parse(this.store.lastExit(vm.id)?.at ?? '');
        if (was && !Number.isNaN(end)) {
          const ran = Math.max(0, Math.min(dt, (end - Math.max(prevTick, was.startedAt)) / 1000));
          const acc = this.totals(vm.id, vm.name);
          acc.alloc += was.vcpus * ran;
          acc.memAlloc += was.memoryMib * ran;
          acc.memHeld += was.heldMib * ran;
        }
        this.running.delete(vm.id);
        this.baselines.delete(vm.id);
        continue;
      }
      const spec = vm.record.spec;
      const acc = this.totals(vm.id, vm.name);
      const ran = Math.max(0, Math.min(dt, (now - Date.parse(p.startedAt)) / 1000));
      acc.alloc += spec.vcpus * ran;
      acc.memAlloc += spec.memory_mib * ran;
      const u = this.sampler.vm(vm.id);
      const m = this.memory.cached(vm.id);
      const heldMib = m?.actualMib ?? (u?.memory.rss_bytes != null ? Math.min(spec.memory_mib, u.memory.rss_bytes / MIB) : spec.memory_mib);
      acc.memHeld += heldMib * ran;
      this.running.set(vm.id, { vcpus: spec.vcpus, memoryMib: spec.memory_mib, heldMib, startedAt: Date.parse(p.startedAt) });
      if (!u) continue;
      const cur = {
        pid: p.pid,
        cpuS: u.cpu.usage_s,
        rx: Object.values(u.net).reduce((a, n) => a + n.rx_bytes, 0),
        tx: Object.values(u.net).reduce((a, n) => a + n.tx_bytes, 0),
      };
      let prev = this.baselines.get(vm.id);
      // A process this meter has not seen: counted from zero when it started after the meter
      // did; an older one (adopted after a host restart) only from now on.
      if (!prev || prev.pid !== p.pid) prev = p.startedAt >= this.startedAt ? { pid: p.pid, cpuS: 0, rx: 0, tx: 0 } : cur;
      acc.used += Math.max(0, cur.cpuS - prev.cpuS);
      acc.rx += Math.max(0, cur.rx - prev.rx);
      acc.tx += Math.max(0, cur.tx - prev.tx);
      this.baselines.set(vm.id, cur);
    }
    // A VM deleted since the last call had stopped before; its last moments are not known: not billed.
    for (const id of [...this.running.keys()]) if (!this.sup.vms.has(id)) this.running.delete(id);
  }

  private totals(vmId: string, name: string): Totals {
    let t = this.pending.get(vmId);
    if (!t) { t = { name, alloc: 0, used: 0, memAlloc: 0, memHeld: 0, rx: 0, tx: 0 }; this.pending.set(vmId, t); }
    if (!this.tenantOf.has(vmId)) this.tenantOf.set(vmId, this.tenants.ownerOf(vmId));
    t.name = name;
    return t;
  }

  /** Writes one row per VM for the time since the last flush: what accumulated, and its disks' size over that time. */
  flush(now = Date.now()): void {
    this.accumulate(now);
    const dt = (now - this.lastFlush) / 1000;
    this.lastFlush = now;
    if (dt <= 0) return;
    const at = new Date(now).toISOString();
    const owners = this.tenants.owners();
    const names = new Map(this.tenants.list().map((t) => [t.id, t.name]));
    const disks = new Map<string, number>();
    for (const vm of this.sup.list()) {
      const d = (diskGib(vm.record.spec) + snapshotBytes(vm) / 2 ** 30) * dt;
      if (d > 0) { disks.set(vm.id, d); this.totals(vm.id, vm.name); }
    }
    const rows: unknown[][] = [];
    for (const [vmId, t] of this.pending) {
      // The tenant as it was when the VM was last seen (a deleted VM's row keeps it).
      const tid = this.sup.vms.has(vmId) ? owners.get(vmId) ?? null : this.tenantOf.get(vmId) ?? null;
      rows.push([at, dt, tid, tid ? names.get(tid) ?? null : null, vmId, t.name, t.alloc, t.used, t.memAlloc, t.memHeld, disks.get(vmId) ?? 0, Math.round(t.rx), Math.round(t.tx)]);
      if (!this.sup.vms.has(vmId)) this.tenantOf.delete(vmId);
    }
    this.pending.clear();
    if (rows.length === 0) return;
    const insert = this.db.prepare(`INSERT INTO meter (at, seconds, tenant_id, tenant_name, vm_id, vm_name, vcpu_s_alloc, vcpu_s_used,
      mem_mib_s_alloc, mem_mib_s_held, disk_gib_s, net_rx_bytes, net_tx_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    try {
      this.db.transaction(() => { for (const r of rows) insert.run(...r); })();
    } catch {
      // A full disk: this interval is not billed; the host goes on.
    }
  }

  private cost(r: { alloc: number; used: number; mem_alloc: number; mem_held: number; disk: number; rx: number; tx: number }): Cost {
    const p = this.prices;
    const cpu = ((p.cpu_basis === 'used' ? r.used : r.alloc) / 3600) * p.vcpu_hour;
    const memory = ((p.memory_basis === 'held' ? r.mem_held : r.mem_alloc) / 1024 / 3600) * p.memory_gib_hour;
    const disk = (r.disk / 3600 / HOURS_PER_MONTH) * p.disk_gib_month;
    const network = ((r.rx + r.tx) / 1024 ** 3) * p.network_gib;
    return { cpu: round(cpu), memory: round(memory), disk: round(disk), network: round(network), total: round(cpu + memory + disk + network) };
  }

  /**
   * The bill between `from` and `to` (ISO times): per tenant (null: the admin's own VMs) and
   * VM, with the cost at the configured prices and the dedicated-server comparison. `tenantId`
   * limits it to one tenant.
   */
  usage(from: string, to: string, tenantId?: string): Record<string, unknown> {
    const where = `at > ? AND at <= ?${tenantId !== undefined ? ' AND tenant_id = ?' : ''}`;
    const args = tenantId !== undefined ? [from, to, tenantId] : [from, to];
    const rows = this.db.prepare(`SELECT tenant_id, MAX(tenant_name) AS tenant_name, vm_id, MAX(vm_name) AS vm_name,
        SUM(vcpu_s_alloc) AS alloc, SUM(vcpu_s_used) AS used, SUM(mem_mib_s_alloc) AS mem_alloc, SUM(mem_mib_s_held) AS mem_held,
        SUM(disk_gib_s) AS disk, SUM(net_rx_bytes) AS rx, SUM(net_tx_bytes) AS tx
      FROM meter WHERE ${where} GROUP BY tenant_id, vm_id ORDER BY tenant_name, vm_name`).all(...args) as SumRow[];
    const peaks = this.db.prepare(`SELECT tenant_id, MAX(v) AS vcpus, MAX(m) AS mem FROM (
        SELECT tenant_id, at, SUM(vcpu_s_alloc / seconds) AS v, SUM(mem_mib_s_alloc / seconds) AS m FROM meter WHERE ${where} GROUP BY tenant_id, at
      ) GROUP BY tenant_id`).all(...args) as { tenant_id: string | null; vcpus: number; mem: number }[];
    const hours = Math.max(0, (Date.parse(to) - Date.parse(from)) / 3_600_000);
    const server = this.prices.dedicated_server;
    const dedicated = (peakVcpus: number, peakMemMib: number, billed: number) => {
      const servers = Math.ceil(Math.max(peakVcpus / server.vcpus, peakMemMib / 1024 / server.memory_gib) - 1e-9);
      const cost = round(servers * server.monthly * (hours / HOURS_PER_MONTH));
      return { servers, server, peak_vcpus: round(peakVcpus, 2), peak_memory_gib: round(peakMemMib / 1024, 3), cost, saving: round(cost - billed) };
    };
    const byTenant = new Map<string | null, { tenant: string | null; vms: UsageRow[]; sums: SumRow }>();
    for (const r of rows) {
      let t = byTenant.get(r.tenant_id);
      if (!t) {
        t = { tenant: r.tenant_name, vms: [], sums: { ...r, alloc: 0, used: 0, mem_alloc: 0, mem_held: 0, disk: 0, rx: 0, tx: 0 } };
        byTenant.set(r.tenant_id, t);
      }
      t.vms.push(this.view(r));
      for (const k of ['alloc', 'used', 'mem_alloc', 'mem_held', 'disk', 'rx', 'tx'] as const) t.sums[k] += r[k];
    }
    const tenants = [...byTenant.entries()].map(([tid, t]) => {
      const totals = this.view(t.sums);
      const peak = peaks.find((p) => p.tenant_id === tid);
      return { tenant: t.tenant, vms: t.vms, totals: { ...totals, vm_id: undefined, vm_name: undefined }, dedicated: dedicated(peak?.vcpus ?? 0, peak?.mem ?? 0, totals.cost.total) };
    });
    const total = tenants.reduce((a, t) => a + t.totals.cost.total, 0);
    return { from, to, hours: round(hours, 3), interval_s: this.intervalMs / 1000, prices: this.prices, tenants, total: round(total) };
  }

  private view(r: SumRow): UsageRow {
    return {
      vm_id: r.vm_id,
      vm_name: r.vm_name,
      vcpu_seconds_allotted: round(r.alloc, 1),
      vcpu_seconds_used: round(r.used, 1),
      memory_gib_hours_allotted: round(r.mem_alloc / 1024 / 3600, 5),
      memory_gib_hours_held: round(r.mem_held / 1024 / 3600, 5),
      disk_gib_hours: round(r.disk / 3600, 5),
      net_rx_bytes: r.rx,
      net_tx_bytes: r.tx,
      cost: this.cost(r),
    };
  }
}
