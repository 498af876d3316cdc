/**
 * The host's memory policy, a pure function: from each VM's balloon and guest statistics and the
 * host's /proc/meminfo, the memory target (guest RAM the balloon leaves it) of each VM for the
 * next round, with the reason. The runner (memory.ts) calls it every few seconds and applies the
 * targets with PATCH /balloon (balloon = memory_max - target).
 *
 * Model: Proxmox's AutoBalloon.pm (host goal = 80% of host RAM used, at most 100 MiB per VM per
 * round, `shares` split what there is), with its known flaw fixed: AutoBalloon moves VMs only by
 * the host's headroom, so a VM already squeezed and under pressure cannot get memory back while
 * the host is above its goal, and an idle VM keeps what it has while the host has room. Here each
 * VM's own demand comes first, as in Hyper-V's Dynamic Memory ("demand plus a buffer"):
 *
 *   demand = actual - guest available        (what the guest uses; ballooned pages are in neither)
 *   want   = clamp(demand + max(20% of demand, 32 MiB), memory_min, memory_max)
 *
 * (demand includes what the guest's kernel keeps out of MemTotal: a 256 MiB guest of the default
 * image has MemTotal 184 MiB, so an idle one uses about 100 MiB and settles near 138 MiB.)
 *
 * 1. A VM under pressure (available below half its buffer, or allocation stalls since the last
 *    round) grows by up to a step whatever the host's headroom says; it is never shrunk.
 * 2. A VM above `want` shrinks toward it (an idle VM gives its surplus up, down to memory_min).
 * 3. Other VMs below `want` (available under the buffer, not yet pressure) grow only within the
 *    host's headroom (80% goal, plus what step 2 frees), split by shares.
 * 4. A host above its goal (counting what step 1 gives) takes the rest from VMs not under
 *    pressure, down to max(min, demand + half the buffer) so none is squeezed into pressure,
 *    split inversely by shares (a VM with more shares gives less).
 * Every move is at most 100 MiB per round; a move under 4 MiB is not made (no churn).
 */

export const STEP_MIB = 100;
export const BUFFER_PERCENT = 20;
export const BUFFER_MIN_MIB = 32;
export const HOST_GOAL_PERCENT = 80;
export const MIN_MOVE_MIB = 4;
/** The shares a VM has by default; inverse weights are relative to it. */
const MEMORY_SHARES_REF = 1000;

export interface GuestMemoryStats {
  /** MemAvailable, MemFree and MemTotal as the guest reports them (MiB). */
  availableMib: number;
  freeMib: number;
  totalMib: number;
  /** Allocation stalls (direct reclaim) since the last round, when the guest reports them. */
  allocStalls?: number;
}

export interface PolicyVm {
  id: string;
  name: string;
  minMib: number;
  maxMib: number;
  shares: number;
  /** The memory target now (memory_max - balloon target) and what the guest has (memory_max - balloon actual). */
  targetMib: number;
  actualMib: number;
  /** Null: the policy leaves the VM alone (`skip` says why). */
  guest: GuestMemoryStats | null;
  /** Why the VM is not balanced this round (set by hand, no balloon driver, no answer); null = balanced. */
  skip: string | null;
}

export interface HostMemoryInfo {
  totalMib: number;
  availableMib: number;
}

export interface PolicyDecision {
  id: string;
  targetMib: number;
  /** False when the VM keeps its target. */
  changed: boolean;
  reason: string;
}

interface Work {
  vm: PolicyVm;
  guest: GuestMemoryStats;
  demand: number;
  want: number;
  pressure: string | null;
  /** The least step 4 leaves the VM: its minimum, or its demand plus half its buffer. */
  floor: number;
  next: number;
  why: string;
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/** The buffer a guest's demand gets on top (Hyper-V's memory buffer). */
export function bufferFor(demandMib: number): number {
  return Math.max(Math.round((demandMib * BUFFER_PERCENT) / 100), BUFFER_MIN_MIB);
}

/** Splits `total` among items in proportion to their weights (0 weights get nothing). */
function split<T>(items: T[], weight: (x: T) => number, total: number): Map<T, number> {
  const sum = items.reduce((a, x) => a + weight(x), 0);
  return new Map(items.map((x) => [x, sum > 0 ? (total * weight(x)) / sum : 0]));
}

export function decideMemory(vms: PolicyVm[], host: HostMemoryInfo): PolicyDecision[] {
  const out: PolicyDecision[] = [];
  const work: Work[] = [];
  for (const vm of vms) {
    if (vm.skip !== null || vm.guest === null) {
      out.push({ id: vm.id, targetMib: vm.targetMib, changed: false, reason: `left alone: ${vm.skip ?? 'no statistics from the guest'}` });
      continue;
    }
    const g = vm.guest;
    const demand = Math.max(0, vm.actualMib - g.availableMib);
    const buffer = bufferFor(demand);
    const want = clamp(demand + buffer, vm.minMib, vm.maxMib);
    let pressure: string | null = null;
    if (g.availableMib < buffer / 2 && vm.targetMib < vm.maxMib) pressure = `guest available ${g.availableMib} MiB is below half its ${buffer} MiB buffer`;
    else if ((g.allocStalls ?? 0) > 0 && vm.targetMib < vm.maxMib) pressure = `${g.allocStalls} allocation stalls in the guest`;
    // Under pressure the guest's MemAvailable understates what it needs: ask for a full step more.
    const goal = pressure ? clamp(Math.max(want, vm.targetMib + STEP_MIB), vm.minMib, vm.maxMib) : want;
    const floor = clamp(demand + Math.ceil(buffer / 2), vm.minMib, vm.maxMib);
    work.push({ vm, guest: g, demand, want: goal, pressure, floor, next: vm.targetMib, why: '' });
  }

  // 1 and 2: the guest's own demand.
  let freed = 0;
  const growers: Work[] = [];
  for (const w of work) {
    const { vm } = w;
    if (w.pressure) {
      w.next = Math.max(vm.targetMib, Math.min(w.want, vm.targetMib + STEP_MIB));
      w.why = `grows: under pressure (${w.pressure}); demand ${w.demand} MiB, wants ${w.want} MiB`;
    } else if (w.want < vm.targetMib) {
      w.next = Math.max(w.want, vm.targetMib - STEP_MIB);
      freed += vm.targetMib - w.next;
      w.why = `shrinks: guest uses ${w.demand} MiB, available ${w.guest.availableMib} MiB; demand plus buffer is ${w.want} MiB`;
    } else if (w.want > vm.targetMib) {
      growers.push(w);
    } else {
      w.why = `holds: demand ${w.demand} MiB plus buffer is its target`;
    }
  }

  // 3: growth without pressure, within the host's headroom (plus what the shrinking VMs free).
  const hostUsed = host.totalMib - host.availableMib;
  const headroom = Math.round((host.totalMib * HOST_GOAL_PERCENT) / 100) - hostUsed;
  const budget = Math.max(0, headroom) + freed;
  const shares = split(growers, (w) => Math.max(1, w.vm.shares), budget);
  for (const w of growers) {
    const room = Math.min(w.want - w.vm.targetMib, STEP_MIB, Math.floor(shares.get(w) ?? 0));
    w.next = w.vm.targetMib + Math.max(0, room);
    w.why = room > 0
      ? `grows: demand ${w.demand} MiB plus buffer is ${w.want} MiB; host headroom ${headroom} MiB, its share ${Math.floor(shares.get(w) ?? 0)} MiB`
      : `holds below its demand plus buffer (${w.want} MiB): the host is at its ${HOST_GOAL_PERCENT}% goal (headroom ${headroom} MiB)`;
  }

  // 4: a host above its goal takes the rest from VMs not under pressure, inversely by shares.
  const shrunk = work.reduce((a, w) => a + (w.vm.targetMib - w.next), 0);
  const over = -headroom - shrunk;
  if (over > 0) {
    const givers = work.filter((w) => !w.pressure && w.next > w.floor);
    const take = split(givers, (w) => (w.next - w.floor) * (MEMORY_SHARES_REF / Math.max(1, w.vm.shares)), over);
    for (const w of givers) {
      const floor = Math.max(w.floor, w.vm.targetMib - STEP_MIB);
      const next = Math.max(floor, Math.ceil(w.next - (take.get(w) ?? 0)));
      if (next < w.next) {
        w.next = next;
        w.why = `shrinks: the host is ${-headroom} MiB above its ${HOST_GOAL_PERCENT}% goal; guest uses ${w.demand} MiB (shares ${w.vm.shares})`;
      }
    }
  }

  for (const w of work) {
    const next = clamp(Math.round(w.next), w.vm.minMib, w.vm.maxMib);
    const changed = Math.abs(next - w.vm.targetMib) >= MIN_MOVE_MIB || (next !== w.vm.targetMib && (next === w.vm.minMib || next === w.vm.maxMib));
    out.push({ id: w.vm.id, targetMib: changed ? next : w.vm.targetMib, changed, reason: `${changed ? w.why : w.why.replace(/^(grows|shrinks)/, 'holds (move under 4 MiB)')} → ${changed ? next : w.vm.targetMib} MiB` });
  }
  return out;
}
