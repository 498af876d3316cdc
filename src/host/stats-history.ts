/**
 * The last minutes of each running VM's stats (GET /vms/{vm}/stats's body every 2 s, 150 of
 * them: five minutes), so that a page opened now shows graphs of the minutes before it, not an
 * empty axis. Kept in memory only; a VM whose process ends keeps its history until it is deleted.
 */
import type { Supervisor } from './supervisor.js';
import { SAMPLE_INTERVAL_MS } from './usage.js';

export const HISTORY_POINTS = 150;

export interface StatsPoint { at: string; stats: unknown }

export class StatsHistory {
  private readonly points = new Map<string, StatsPoint[]>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly sup: Supervisor, private readonly statsOf: (vmId: string) => Promise<unknown>) {}

  start(): void {
    this.timer = setInterval(() => { void this.sample(); }, SAMPLE_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async sample(): Promise<void> {
    const at = new Date().toISOString();
    for (const id of [...this.points.keys()]) if (!this.sup.vms.has(id)) this.points.delete(id);
    await Promise.all(this.sup.list().filter((vm) => vm.proc).map(async (vm) => {
      let stats: unknown;
      try { stats = await this.statsOf(vm.id); } catch { return; }
      const list = this.points.get(vm.id) ?? [];
      list.push({ at, stats });
      if (list.length > HISTORY_POINTS) list.splice(0, list.length - HISTORY_POINTS);
      this.points.set(vm.id, list);
    }));
  }

  /** The VM's points, oldest first. */
  of(vmId: string): StatsPoint[] {
    return this.points.get(vmId) ?? [];
  }
}
