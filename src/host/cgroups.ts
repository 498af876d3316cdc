/**
 * CPU shares for VM processes through the kernel's cgroup CPU controller, as Proxmox VE and
 * libvirt do it for KVM. Each VM gets its own group under a `vessel` parent:
 *
 *   v1 (this machine): /sys/fs/cgroup/cpu/vessel/<vm>      cpu.shares, cpu.cfs_quota_us/period_us
 *                      /sys/fs/cgroup/cpuacct/vessel/<vm>  cpuacct.usage (when mounted apart)
 *   v2:                /sys/fs/cgroup/vessel/<vm>          cpu.weight, cpu.max, cpu.stat
 *
 * A VM's weight is given on the v2 scale (1 to 10,000, default 100, Proxmox's `cpuunits`) and
 * mapped to v1 shares as weight x 1024 / 100 (v1's default 1024 = v2's 100). The cap is a percent
 * of one host core (0 = none): a quota of cap x 1,000 us per 100,000 us period, Proxmox's
 * `cpulimit`. A host without a usable controller (no cgroup fs, not root, a container without
 * delegation) still runs VMs: `probeCgroups` says why, once, and nothing is enforced.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const CPU_WEIGHT_DEFAULT = 100;
export const CPU_WEIGHT_MIN = 1;
export const CPU_WEIGHT_MAX = 10_000;
/** The CFS period the cap's quota is a share of (Proxmox's and systemd's). */
export const CFS_PERIOD_US = 100_000;

export interface CpuAllocation {
  /** Relative share, 1..10000 (v2 scale). */
  weight: number;
  /** Percent of one host core, 0 = no cap. */
  capPercent: number;
}

/** What the kernel reports for a group; fields it does not report are absent. */
export interface CpuUsage {
  /** CPU time used by the group's processes, in microseconds. */
  usageUs: number;
  /** Periods in which the group hit its cap, and time it was held back by it. */
  throttledPeriods?: number;
  throttledUs?: number;
}

export type CgroupMode = 'v1' | 'v2' | 'none';

export interface CgroupProbe {
  mode: CgroupMode;
  /** Why weights and caps are not enforced (mode 'none'). */
  reason?: string;
}

export class CgroupError extends Error {
  override name = 'CgroupError';
}

/** v1 shares for a v2-scale weight: v1's default 1024 is v2's default 100. */
export function weightToShares(weight: number): number {
  return Math.max(2, Math.min(262_144, Math.round((weight * 1024) / 100)));
}

/** The quota in microseconds per CFS_PERIOD_US for a cap in percent of one core; -1 = none. */
export function capToQuotaUs(capPercent: number): number {
  return capPercent === 0 ? -1 : Math.round((capPercent / 100) * CFS_PERIOD_US);
}

function readText(file: string): string {
  return fs.readFileSync(file, 'utf8');
}

function write(file: string, value: string): void {
  try {
    fs.writeFileSync(file, value);
  } catch (e) {
    throw new CgroupError(`cannot write "${value.trim()}" to ${file}: ${(e as Error).message}`);
  }
}

/** Parses "key value" lines (cpu.stat). */
function keyValues(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) m.set(k, Number(v));
  }
  return m;
}

/** The cgroup mounts of this host. */
export class Cgroups {
  private constructor(
    readonly mode: CgroupMode,
    /** v1: the cpu hierarchy's mount; v2: the unified mount. */
    private readonly cpuRoot: string,
    /** v1: the cpuacct hierarchy's mount (often the same as cpu's). */
    private readonly acctRoot: string,
    readonly parent: string,
  ) {}

  /**
   * Finds a usable CPU controller: v2 when /sys/fs/cgroup is the unified hierarchy with `cpu`
   * available, else v1's `cpu` hierarchy; then checks that a group can be made under `parent`.
   */
  static probe(root = '/sys/fs/cgroup', parent = 'vessel'): { cgroups: Cgroups | null; probe: CgroupProbe } {
    const none = (reason: string) => ({ cgroups: null, probe: { mode: 'none' as const, reason } });
    if (process.platform !== 'linux') return none('cgroups exist on Linux only');
    let cg: Cgroups;
    if (fs.existsSync(path.join(root, 'cgroup.controllers'))) {
      const controllers = readText(path.join(root, 'cgroup.controllers')).split(/\s+/);
      if (!controllers.includes('cpu')) return none(`the cgroup v2 hierarchy at ${root} has no cpu controller`);
      cg = new Cgroups('v2', root, root, parent);
    } else if (fs.existsSync(path.join(root, 'cpu', 'cpu.shares'))) {
      const acct = fs.existsSync(path.join(root, 'cpuacct', 'cpuacct.usage')) ? path.join(root, 'cpuacct') : path.join(root, 'cpu');
      cg = new Cgroups('v1', path.join(root, 'cpu'), acct, parent);
    } else {
      return none(`no cgroup CPU controller is mounted at ${root} (neither v2's cgroup.controllers nor v1's cpu/cpu.shares)`);
    }
    try {
      cg.ensureParent();
    } catch (e) {
      return none((e as Error).message);
    }
    return { cgroups: cg, probe: { mode: cg.mode } };
  }

  private ensureParent(): void {
    const dir = path.join(this.cpuRoot, this.parent);
    try {
      fs.mkdirSync(dir, { recursive: true });
      if (this.mode === 'v1' && this.acctRoot !== this.cpuRoot) fs.mkdirSync(path.join(this.acctRoot, this.parent), { recursive: true });
    } catch (e) {
      throw new CgroupError(`cannot create the cgroup ${dir}: ${(e as Error).message}`);
    }
    if (this.mode === 'v2') {
      // Children of a v2 group get the cpu controller only when the parent's subtree enables it.
      const enable = (dir: string): void => {
        const control = path.join(dir, 'cgroup.subtree_control');
        if (!readText(control).split(/\s+/).includes('cpu')) write(control, '+cpu');
      };
      enable(this.cpuRoot);
      enable(dir);
    }
  }

  /** The group's directory in the cpu hierarchy (and the unified one on v2). */
  groupDir(name: string): string {
    return path.join(this.cpuRoot, this.parent, name);
  }

  private acctDir(name: string): string {
    return path.join(this.acctRoot, this.parent, name);
  }

  /** Creates the VM's group (if missing) and sets its allocation. */
  create(name: string, alloc: CpuAllocation): void {
    for (const dir of new Set([this.groupDir(name), this.acctDir(name)])) {
      try {
        fs.mkdirSync(dir, { recursive: true });
      } catch (e) {
        throw new CgroupError(`cannot create the cgroup ${dir}: ${(e as Error).message}`);
      }
    }
    this.set(name, alloc);
  }

  /** Changes the allocation of a group; its processes feel it at the next scheduling period. */
  set(name: string, alloc: CpuAllocation): void {
    const dir = this.groupDir(name);
    if (this.mode === 'v2') {
      write(path.join(dir, 'cpu.weight'), `${alloc.weight}\n`);
      const quota = capToQuotaUs(alloc.capPercent);
      write(path.join(dir, 'cpu.max'), `${quota < 0 ? 'max' : quota} ${CFS_PERIOD_US}\n`);
    } else {
      write(path.join(dir, 'cpu.shares'), `${weightToShares(alloc.weight)}\n`);
      write(path.join(dir, 'cpu.cfs_period_us'), `${CFS_PERIOD_US}\n`);
      write(path.join(dir, 'cpu.cfs_quota_us'), `${capToQuotaUs(alloc.capPercent)}\n`);
    }
  }

  /** What the kernel holds for the group now (read back, for checks and `vm show`). */
  read(name: string): { shares?: number; weight?: number; quotaUs: number; periodUs: number } {
    const dir = this.groupDir(name);
    if (this.mode === 'v2') {
      const [quota, period] = readText(path.join(dir, 'cpu.max')).trim().split(/\s+/);
      return { weight: Number(readText(path.join(dir, 'cpu.weight'))), quotaUs: quota === 'max' ? -1 : Number(quota), periodUs: Number(period) };
    }
    return {
      shares: Number(readText(path.join(dir, 'cpu.shares'))),
      quotaUs: Number(readText(path.join(dir, 'cpu.cfs_quota_us'))),
      periodUs: Number(readText(path.join(dir, 'cpu.cfs_period_us'))),
    };
  }

  /** Moves a process (all its threads) into the group. */
  addProcess(name: string, pid: number): void {
    for (const dir of new Set([this.groupDir(name), this.acctDir(name)])) write(path.join(dir, 'cgroup.procs'), `${pid}\n`);
  }

  /** The pids in the group (empty when it does not exist). */
  processes(name: string): number[] {
    try {
      return readText(path.join(this.groupDir(name), 'cgroup.procs')).split('\n').filter((l) => l !== '').map(Number);
    } catch {
      return [];
    }
  }

  exists(name: string): boolean {
    return fs.existsSync(this.groupDir(name));
  }

  usage(name: string): CpuUsage | null {
    try {
      const stat = keyValues(readText(path.join(this.groupDir(name), 'cpu.stat')));
      if (this.mode === 'v2') {
        return { usageUs: stat.get('usage_usec') ?? 0, throttledPeriods: stat.get('nr_throttled'), throttledUs: stat.get('throttled_usec') };
      }
      const usageNs = Number(readText(path.join(this.acctDir(name), 'cpuacct.usage')));
      const throttledNs = stat.get('throttled_time');
      return { usageUs: usageNs / 1000, throttledPeriods: stat.get('nr_throttled'), throttledUs: throttledNs === undefined ? undefined : throttledNs / 1000 };
    } catch {
      return null;
    }
  }

  /**
   * Removes the group. Its processes must have exited; a group whose last process is still
   * being torn down refuses with EBUSY for a moment, so this retries briefly.
   */
  async remove(name: string): Promise<void> {
    for (const dir of new Set([this.groupDir(name), this.acctDir(name)])) {
      for (let attempt = 0; ; attempt++) {
        try {
          fs.rmdirSync(dir);
          break;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          if (code !== 'EBUSY' || attempt >= 50) throw new CgroupError(`cannot remove the cgroup ${dir}: ${(e as Error).message}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
  }

  /** Every group under the parent (for cleaning up after VMs that no longer exist). */
  list(): string[] {
    try {
      return fs.readdirSync(path.join(this.cpuRoot, this.parent), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch {
      return [];
    }
  }
}
