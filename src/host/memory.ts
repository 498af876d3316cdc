/**
 * The memory policy's runner: every POLICY_INTERVAL_MS it reads each running VM's balloon
 * (GET /balloon, GET /balloon/statistics) and the host's /proc/meminfo, asks decideMemory
 * (memory-policy.ts) for targets, applies the changed ones with PATCH /balloon, and records each
 * change with its reason (an event in the store, and the last decision in memory for the API).
 * A VM set by hand, without a balloon driver, paused, or whose process does not answer is left
 * alone for the round. Also serves GET/PATCH /vms/{vm}/memory.
 */
import type { Logger } from 'pino';
import { decideMemory, type GuestMemoryStats, type PolicyVm, type ShrinkWatch } from './memory-policy.js';
import { hostMemory, processRss } from './proc.js';
import type { StateStore } from './store.js';
import type { Supervisor, VmHandle } from './supervisor.js';
import { checkMemoryTarget, MEMORY_SHARES_DEFAULT } from './vm-spec.js';
import { vmmRequest, VmmRequestError } from './vmm-client.js';
import type { BalloonInfo, BalloonStats } from '../vmm/config.js';

export const POLICY_INTERVAL_MS = 2000;
/** How long after its start a guest may take to load virtio_balloon before the host says it has none. */
const DRIVER_GRACE_MS = 120_000;
const MIB = 1024 * 1024;

export interface MemoryDecision { at: string; target_mib: number; reason: string }

interface VmMemoryState {
  /** Guest memory the balloon leaves (memory_max - balloon size): the target, and what the guest has. */
  targetMib: number | null;
  actualMib: number | null;
  /** When (Date.now()) the host first saw the balloon's actual at its present value: the policy lets a moved balloon settle. */
  actualSinceMs: number | null;
  /** Guest RAM the host holds for the VM by its own count (null: the VMM cannot tell). */
  residentMib: number | null;
  guest: GuestMemoryStats | null;
  /**
   * Whether the guest's virtio_balloon runs the device (the VMM's driver_ok): false once it went
   * away, or when it never came within the grace time; null while the guest may still load it.
   */
  driver: boolean | null;
  /** The same in words for the API ("driver running", "no driver in the guest", ...); null without a process. */
  balloon: string | null;
  /** The process the state is about (a new one starts afresh), and whether its guest's driver ever ran. */
  pid: number | null;
  driverSeen: boolean;
  /** The policy's bookkeeping between rounds (memory-policy.ts: a shrink being watched, a back-off's end). */
  giving: ShrinkWatch | null;
  backoffUntilMs: number | null;
  /** Why the policy left the VM alone in its last round (null: it balanced it). */
  skip: string | null;
  /** The `skip` the last round saw (an event says a new one once; view() probes too, so not `skip` itself). */
  skipAnnounced: string | null;
  lastDecision: MemoryDecision | null;
  prevAllocStall: number | null;
}

const emptyState = (): VmMemoryState => ({
  targetMib: null, actualMib: null, actualSinceMs: null, residentMib: null, guest: null, driver: null, balloon: null, pid: null, driverSeen: false, giving: null, backoffUntilMs: null,
  skip: null, skipAnnounced: null, lastDecision: null, prevAllocStall: null,
});

export class MemoryBalancer {
  private readonly states = new Map<string, VmMemoryState>();
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(private readonly sup: Supervisor, private readonly store: StateStore, private readonly log: Logger, private readonly intervalMs = POLICY_INTERVAL_MS) {}

  start(): void {
    this.timer = setInterval(() => { void this.round(); }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private state(id: string): VmMemoryState {
    let s = this.states.get(id);
    if (!s) { s = emptyState(); this.states.set(id, s); }
    return s;
  }

  /** The latest known numbers of a VM (for stats and Prometheus; no request). */
  cached(id: string): Readonly<VmMemoryState> | null {
    return this.states.get(id) ?? null;
  }

  /** Reads the VM's balloon and statistics into its state; sets `skip` when the policy must leave it alone. */
  private async probe(vm: VmHandle, timeoutMs = 1000): Promise<VmMemoryState> {
    const s = this.state(vm.id);
    const max = vm.record.spec.memory_mib;
    if (vm.proc?.pid !== s.pid) {
      // A new process (or none): its guest starts afresh.
      Object.assign(s, { targetMib: null, actualMib: null, actualSinceMs: null, residentMib: null, guest: null, driver: null, balloon: null, driverSeen: false, giving: null, backoffUntilMs: null, prevAllocStall: null });
      s.pid = vm.proc?.pid ?? null;
    }
    if (!vm.proc || vm.state !== 'running') {
      s.skip = `the VM is ${vm.state}`;
      return s;
    }
    let info: BalloonInfo;
    try {
      info = await vmmRequest<BalloonInfo>(vm.files.apiSock, 'GET', '/balloon', undefined, timeoutMs);
    } catch (e) {
      s.skip = e instanceof VmmRequestError && e.status === 400
        ? 'its process has no balloon (it was started by a host without one; a restart adds it)'
        : `its process did not answer (${(e as Error).message})`;
      return s;
    }
    s.targetMib = max - (info.target_mib ?? info.amount_mib);
    const actual = max - (info.actual_mib ?? 0);
    if (actual !== s.actualMib) s.actualSinceMs = Date.now();
    s.actualMib = actual;
    s.residentMib = info.resident_mib ?? null;
    const age = Date.now() - Date.parse(vm.proc.startedAt);
    if (info.driver_ok === false) {
      // The VMM sees no driver on the device (a VMM without driver_ok: the statistics tell, below).
      s.guest = null;
      if (s.driverSeen) s.driver = false;
      else s.driver = age > DRIVER_GRACE_MS ? false : null;
      s.balloon = s.driver === false ? 'no driver in the guest' : 'waiting for the guest\'s driver';
      s.skip = s.driver === false
        ? (s.driverSeen ? 'the guest has no balloon driver: its virtio_balloon went away (unloaded?)' : `the guest has no balloon driver: none within ${DRIVER_GRACE_MS / 1000} s of its start (a kernel without virtio_balloon?)`)
        : 'waiting for the guest\'s balloon driver';
      return s;
    }
    if (info.driver_ok === true) {
      s.driverSeen = true;
      s.driver = true;
      s.balloon = 'driver running';
    }
    let st: BalloonStats | null = null;
    try {
      st = await vmmRequest<BalloonStats>(vm.files.apiSock, 'GET', '/balloon/statistics', undefined, timeoutMs);
    } catch (e) {
      s.skip = `its process did not answer (${(e as Error).message})`;
      return s;
    }
    if (st.available_memory === undefined || st.total_memory === undefined) {
      s.guest = null;
      if (info.driver_ok === true) {
        s.skip = 'waiting for the guest\'s first balloon statistics';
        return s;
      }
      s.driver = age > DRIVER_GRACE_MS ? false : null;
      s.balloon = s.driver === false ? 'no driver in the guest' : 'waiting for the guest\'s driver';
      s.skip = s.driver === false
        ? `the guest has no balloon driver: no statistics within ${DRIVER_GRACE_MS / 1000} s of its start (a kernel without virtio_balloon?)`
        : 'waiting for the guest\'s balloon driver';
      return s;
    }
    s.driver = true;
    s.balloon = 'driver running';
    const stalls = st.alloc_stall;
    const allocStalls = stalls !== undefined && s.prevAllocStall !== null ? Math.max(0, stalls - s.prevAllocStall) : undefined;
    s.prevAllocStall = stalls ?? null;
    s.guest = { availableMib: Math.floor(st.available_memory / MIB), freeMib: Math.floor((st.free_memory ?? 0) / MIB), totalMib: Math.floor(st.total_memory / MIB), ...(allocStalls !== undefined ? { allocStalls } : {}) };
    s.skip = vm.record.spec.memory_manual_mib !== undefined
      ? `its target was set by hand to ${vm.record.spec.memory_manual_mib} MiB (vessel vm set --memory auto gives it back to the policy)`
      : null;
    return s;
  }

  /** One round of the policy over every VM with a process. Never throws. */
  async round(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const vms = this.sup.list().filter((vm) => vm.proc);
      for (const id of [...this.states.keys()]) if (!vms.some((vm) => vm.id === id)) this.states.delete(id);
      const inputs: PolicyVm[] = [];
      const byId = new Map<string, { vm: VmHandle; s: VmMemoryState }>();
      await Promise.all(vms.map(async (vm) => {
        const s = await this.probe(vm);
        byId.set(vm.id, { vm, s });
        const spec = vm.record.spec;
        inputs.push({
          id: vm.id, name: vm.name, minMib: spec.memory_min_mib, maxMib: spec.memory_mib, shares: spec.memory_shares ?? MEMORY_SHARES_DEFAULT,
          targetMib: s.targetMib ?? spec.memory_mib, actualMib: s.actualMib ?? spec.memory_mib, guest: s.guest, skip: s.skip,
          ...(s.residentMib !== null ? { residentMib: s.residentMib } : {}),
          ...(s.actualSinceMs !== null ? { balloonStillMs: Date.now() - s.actualSinceMs } : {}),
          ...(s.driver === false ? { driverOk: false } : {}), giving: s.giving, backoffUntilMs: s.backoffUntilMs,
        });
      }));
      const m = hostMemory();
      const decisions = decideMemory(inputs, { totalMib: Math.floor(m.totalBytes / MIB), availableMib: Math.floor(m.availableBytes / MIB) }, Date.now());
      for (const d of decisions) {
        const entry = byId.get(d.id);
        if (!entry) continue;
        const { vm, s } = entry;
        const announced = s.skipAnnounced;
        s.skipAnnounced = s.skip;
        const at = new Date().toISOString();
        s.giving = d.giving;
        s.backoffUntilMs = d.backoffUntilMs;
        if (s.skip !== null) {
          // A VM left alone: say so once when the reason changes, not every round.
          if (s.skip !== announced && !s.skip.startsWith('waiting') && !s.skip.startsWith('the VM is')) this.store.event(vm.id, vm.name, 'memory', `policy leaves it alone: ${s.skip}`);
          continue;
        }
        if (d.changed) {
          try {
            await vmmRequest(vm.files.apiSock, 'PATCH', '/balloon', { amount_mib: vm.record.spec.memory_mib - d.targetMib }, 1000);
            s.targetMib = d.targetMib;
            this.store.event(vm.id, vm.name, 'memory', d.reason);
            this.log.info({ vm: vm.name, target_mib: d.targetMib, reason: d.reason }, 'memory target');
          } catch (e) {
            s.skip = `its process did not take the new target (${(e as Error).message})`;
            continue;
          }
        }
        s.lastDecision = { at, target_mib: d.targetMib, reason: d.reason };
      }
    } catch (e) {
      this.log.error({ err: (e as Error).message }, 'memory policy round failed');
    } finally {
      this.busy = false;
    }
  }

  /** GET /vms/{vm}/memory */
  async view(vm: VmHandle): Promise<Record<string, unknown>> {
    const s = await this.probe(vm);
    const spec = vm.record.spec;
    const mib = (v: number | undefined): number | null => (v === undefined ? null : v);
    return {
      target_mib: s.targetMib,
      actual_mib: s.actualMib,
      memory_min_mib: spec.memory_min_mib,
      memory_max_mib: spec.memory_mib,
      memory_shares: spec.memory_shares ?? MEMORY_SHARES_DEFAULT,
      guest_used_mib: s.guest && s.actualMib !== null ? Math.max(0, s.actualMib - s.guest.availableMib) : null,
      guest_available_mib: mib(s.guest?.availableMib),
      guest_free_mib: mib(s.guest?.freeMib),
      guest_total_mib: mib(s.guest?.totalMib),
      guest_resident_mib: s.residentMib,
      host_rss_bytes: vm.proc ? processRss(vm.proc.pid) : null,
      manual: spec.memory_manual_mib !== undefined,
      balloon_driver: s.driver,
      balloon: s.balloon,
      backoff_until: s.backoffUntilMs !== null && s.backoffUntilMs > Date.now() ? new Date(s.backoffUntilMs).toISOString() : null,
      skipped: s.skip,
      last_decision: s.lastDecision,
    };
  }

  /**
   * `vessel vm set --memory SIZE|auto`: a target by hand, kept in the VM's spec (a stopped VM boots
   * with it), the policy stepping aside; `auto` gives the VM back to the policy, which decides at once.
   */
  async setTarget(vm: VmHandle, target: number | 'auto'): Promise<void> {
    await vm.serial(async () => {
      const spec = { ...vm.record.spec };
      if (target === 'auto') delete spec.memory_manual_mib;
      else {
        checkMemoryTarget(spec, target);
        spec.memory_manual_mib = target;
      }
      if (target !== 'auto' && vm.proc && vm.state !== 'stopping') {
        await vmmRequest(vm.files.apiSock, 'PATCH', '/balloon', { amount_mib: spec.memory_mib - target }, 2000);
      }
      this.store.updateSpec(vm.id, spec);
      vm.record.spec = spec;
      const s = this.state(vm.id);
      const reason = target === 'auto' ? 'memory target given back to the policy (auto)' : `memory target set by hand to ${target} MiB; the policy leaves the VM alone`;
      if (target !== 'auto') s.targetMib = target;
      s.lastDecision = { at: new Date().toISOString(), target_mib: target === 'auto' ? s.targetMib ?? spec.memory_mib : target, reason };
      this.store.event(vm.id, vm.name, 'memory', reason);
    });
    if (target === 'auto') await this.round();
  }
}
