/**
 * What each VM uses, sampled every few seconds: CPU time from its cgroup (or its threads'
 * schedstat where there is no cgroup), the time it was held back by its cap or waited for a
 * core, the host RSS of its process, and the disk and network counters its VMM keeps. The
 * percentages are over the last sampling interval (100 = one host core).
 */
import type { Cgroups } from './cgroups.js';
import { hostCpuSample, hostMemory, processRss, processSchedStat, type HostCpuSample } from './proc.js';
import type { VmHandle } from './supervisor.js';
import { vmmRequest } from './vmm-client.js';

export const SAMPLE_INTERVAL_MS = 2000;

interface CpuSample { at: number; usageUs: number; throttledUs: number; waitUs: number }

export interface VmUsage {
  cpu: { usage_s: number; percent: number; throttled_s: number | null; throttled_periods: number | null; wait_s: number | null; wait_percent: number };
  memory: { guest_mib: number; rss_bytes: number | null };
  disk: Record<string, { read_bytes: number; write_bytes: number; read_ops: number; write_ops: number; flush_ops?: number }>;
  net: Record<string, { rx_bytes: number; tx_bytes: number; rx_packets: number; tx_packets: number }>;
  instructions_retired: number;
  sampled_at: string;
}

export interface HostUsage {
  cpus: number;
  cpu_percent: number;
  memory: { total_bytes: number; available_bytes: number; used_bytes: number };
}

interface VmmMetrics {
  vcpu?: { instructions_retired: number }[];
  block?: VmUsage['disk'];
  net?: VmUsage['net'];
}

export class UsageSampler {
  private readonly previous = new Map<string, CpuSample>();
  private readonly latest = new Map<string, VmUsage>();
  private hostPrev: HostCpuSample = hostCpuSample();
  private host: HostUsage;
  private timer: NodeJS.Timeout | null = null;
  private sampling = false;

  constructor(private readonly cgroups: Cgroups | null, private readonly vms: () => VmHandle[], private readonly hostCpus: number) {
    this.host = this.hostNow(0);
  }

  start(): void {
    this.timer = setInterval(() => { void this.sample(); }, SAMPLE_INTERVAL_MS);
    this.timer.unref();
    void this.sample();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private hostNow(percent: number): HostUsage {
    const m = hostMemory();
    return { cpus: this.hostCpus, cpu_percent: percent, memory: { total_bytes: m.totalBytes, available_bytes: m.availableBytes, used_bytes: m.totalBytes - m.availableBytes } };
  }

  /** Takes one sample of every VM with a process, and of the host. */
  async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const h = hostCpuSample();
      const dt = h.totalTicks - this.hostPrev.totalTicks;
      this.host = this.hostNow(dt > 0 ? Math.round(((h.busyTicks - this.hostPrev.busyTicks) / dt) * 100 * this.hostCpus * 10) / 10 : 0);
      this.hostPrev = h;
      const live = new Set<string>();
      await Promise.all(this.vms().map(async (vm) => {
        if (!vm.proc) return;
        live.add(vm.id);
        this.latest.set(vm.id, await this.sampleVm(vm));
      }));
      for (const id of [...this.previous.keys()]) if (!live.has(id)) { this.previous.delete(id); this.latest.delete(id); }
    } finally {
      this.sampling = false;
    }
  }

  private async sampleVm(vm: VmHandle): Promise<VmUsage> {
    const pid = vm.proc?.pid ?? 0;
    const now = performance.now();
    const cg = this.cgroups?.usage(vm.id) ?? null;
    const sched = processSchedStat(pid);
    const usageUs = cg?.usageUs ?? sched?.runUs ?? 0;
    const cur: CpuSample = { at: now, usageUs, throttledUs: cg?.throttledUs ?? 0, waitUs: sched?.waitUs ?? 0 };
    const prev = this.previous.get(vm.id);
    this.previous.set(vm.id, cur);
    const span = prev ? (now - prev.at) * 1000 : 0;
    const pct = (a: number, b: number): number => (span > 0 ? Math.max(0, Math.round(((a - b) / span) * 1000) / 10) : 0);
    let m: VmmMetrics = {};
    try {
      m = await vmmRequest<VmmMetrics>(vm.files.apiSock, 'GET', '/metrics', undefined, 1000);
    } catch {
      // A VM that is starting or busy answers next time; its counters stay empty meanwhile.
    }
    return {
      cpu: {
        usage_s: Math.round(usageUs / 1000) / 1000,
        percent: prev ? pct(cur.usageUs, prev.usageUs) : 0,
        throttled_s: cg?.throttledUs !== undefined ? Math.round(cg.throttledUs / 1000) / 1000 : null,
        throttled_periods: cg?.throttledPeriods ?? null,
        wait_s: sched ? Math.round(sched.waitUs / 1000) / 1000 : null,
        wait_percent: prev ? pct(cur.waitUs, prev.waitUs) : 0,
      },
      memory: { guest_mib: vm.record.spec.memory_mib, rss_bytes: processRss(pid) },
      disk: m.block ?? {},
      net: m.net ?? {},
      instructions_retired: (m.vcpu ?? []).reduce((a, v) => a + v.instructions_retired, 0),
      sampled_at: new Date().toISOString(),
    };
  }

  /** The last sample of a VM (null when it has no process or was not sampled yet). */
  vm(id: string): VmUsage | null {
    return this.latest.get(id) ?? null;
  }

  /** A fresh sample of one VM now (the CPU percent is over the time since the last sample). */
  async vmNow(vm: VmHandle): Promise<VmUsage | null> {
    if (!vm.proc) return null;
    const u = await this.sampleVm(vm);
    this.latest.set(vm.id, u);
    return u;
  }

  hostUsage(): HostUsage {
    return this.host;
  }
}
