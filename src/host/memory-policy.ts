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
 *   demand = held - guest available          (what the guest uses; ballooned pages are in neither)
 *   want   = clamp(demand + max(20% of demand, 32 MiB), memory_min, memory_max)
 *
 * (demand includes what the guest's kernel keeps out of MemTotal: a 256 MiB guest of the default
 * image has MemTotal 184 MiB, so an idle one uses about 100 MiB and settles near 138 MiB.)
 *
 * 1. A VM under pressure (available below half its buffer, or allocation stalls since the last
 *    round) grows by up to a step whatever the host's headroom says; it is never shrunk.
 * 2. A VM above `want` shrinks toward it (an idle VM gives its surplus up, down to memory_min).
 * 3. Other VMs below `want` (available under the buffer, not yet pressure) grow only within the
 *    host's headroom (80% goal), split by shares. What step 2 asks others to give is not counted
 *    until the host's /proc/meminfo shows it: an ask is not memory.
 * 4. A host above its goal (counting what step 1 gives) takes the rest from VMs not under
 *    pressure, down to max(min, demand + half the buffer) so none is squeezed into pressure,
 *    split inversely by shares (a VM with more shares gives less).
 * Every move is at most 100 MiB per round; a move under 4 MiB is not made (no churn).
 *
 * The guest's statistics lag its balloon: the driver sends them every 2 s, while `actual` is read
 * as it is. Right after the balloon moved, `held - available` is wrong by the move: a shrink looks
 * like less demand (the next round shrinks again, past what the guest needs, into pressure, and
 * the pressure grows it back by a step), a growth like more (and it grows again). Idle VMs went
 * up and down by up to 100 MiB that way, and each round trip left host memory behind (guest pages
 * touched in between; docs/PERFORMANCE.md "Idle density with the policy"). So a VM whose balloon
 * moved less than SETTLE_MS ago (`balloonStillMs`) is settling: it is neither shrunk nor grown
 * without pressure, nor taken from for the host, until its statistics are from after the move.
 * Pressure still grows it at once: a growth too large is given back later, a guest left short is not.
 *
 * The host trusts only its own count for what a guest gives back. `actual` is the guest's word
 * (the balloon's size as its driver writes it) and so are its statistics; `residentMib`, the guest
 * RAM the host holds for the VM (the VMM's mincore of it), is the host kernel's. A guest holds
 * `held` = actual, or its resident memory where that is more (by RESIDENT_SLACK_MIB or more): a guest
 * that says its balloon took pages it still uses is treated as holding them, so it is watched
 * and backed off from like one that gives nothing. Statistics that cannot be true (available
 * above what it holds) are cut to what it holds. A guest's lies can shrink it, or grow it within
 * its memory_max (pressure it claims), but never make the host count memory as free.
 *
 * Two kinds of guest are not asked for memory:
 * - One without a balloon driver (`driverOk` false) is left alone: its balloon cannot move.
 * - One asked to shrink (target MIN_MOVE_MIB or more below actual) whose actual has not fallen for STALL_MS cannot give
 *   (it refuses or stalls: nothing free to give, or a stuck driver). The policy backs off: its
 *   target goes back up to what it holds, and for COOLDOWN_MS it is not asked to shrink again
 *   (it may still grow). The runner keeps `giving` and `backoffUntilMs` from one round to the next.
 */

export const STEP_MIB = 100;
export const BUFFER_PERCENT = 20;
export const BUFFER_MIN_MIB = 32;
export const HOST_GOAL_PERCENT = 80;
export const MIN_MOVE_MIB = 4;
/**
 * Resident guest RAM this far above actual means the guest holds more than it says. Below it is
 * honest noise: pages in flight, zero pages a snapshot load wrote whole extents over, reads of
 * never-written RAM (which mincore counts).
 */
export const RESIDENT_SLACK_MIB = 16;
/** A guest asked to shrink whose actual has not fallen for this long cannot give: back off. */
export const STALL_MS = 30_000;
/** After a back-off, the VM is not asked to shrink for this long. */
export const COOLDOWN_MS = 300_000;
/** A balloon that moved less than this long ago is settling: its statistics may be from before the move (3 of the host's 2 s statistics intervals). */
export const SETTLE_MS = 6000;
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
  /** The memory target now (memory_max - balloon target) and what the guest says it has (memory_max - balloon actual). */
  targetMib: number;
  actualMib: number;
  /** Guest RAM the host holds for the VM, by the host's count (absent: not known; `actualMib` is used). */
  residentMib?: number;
  /** How long the balloon's actual has stood still (ms); under SETTLE_MS the VM is settling. Absent: long enough. */
  balloonStillMs?: number;
  /** Null: the policy leaves the VM alone (`skip` says why). */
  guest: GuestMemoryStats | null;
  /** Why the VM is not balanced this round (set by hand, no balloon driver, no answer); null = balanced. */
  skip: string | null;
  /** False: the guest has no balloon driver (the VMM saw no DRIVER_OK); the VM is left alone. */
  driverOk?: boolean;
  /** From the last round's decision: the shrink being watched, and the end of a back-off (ms). */
  giving?: ShrinkWatch | null;
  backoffUntilMs?: number | null;
}

/** A shrink the guest was asked for: since when (ms) its actual stands at `actualMib` without falling. */
export interface ShrinkWatch { sinceMs: number; actualMib: number }

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
  /** For the next round (PolicyVm.giving, PolicyVm.backoffUntilMs). */
  giving: ShrinkWatch | null;
  backoffUntilMs: number | null;
}

interface Work {
  vm: PolicyVm;
  guest: GuestMemoryStats;
  /** What the guest holds: its actual, or its resident memory where the host counts more. */
  held: number;
  demand: number;
  want: number;
  pressure: string | null;
  /** Why the VM's statistics may be from before its balloon's last move (null: they are not). */
  settling: string | null;
  /** The least step 4 leaves the VM: its minimum, or its demand plus half its buffer. */
  floor: number;
  next: number;
  why: string;
  /** Set when the guest could not give: the target goes back up to what it holds, whatever the size of the move. */
  backOff: string | null;
  giving: ShrinkWatch | null;
  backoffUntilMs: number | null;
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

const clock = (ms: number): string => new Date(ms).toISOString().slice(11, 19);

/**
 * `nowMs` is the runner's clock (Date.now()); only the back-off uses it. Decisions come in no
 * particular order; find them by id.
 */
export function decideMemory(vms: PolicyVm[], host: HostMemoryInfo, nowMs = 0): PolicyDecision[] {
  const out: PolicyDecision[] = [];
  const work: Work[] = [];
  for (const vm of vms) {
    if (vm.driverOk === false || vm.skip !== null || vm.guest === null) {
      const why = vm.driverOk === false ? 'no balloon driver in the guest (its balloon cannot move)' : vm.skip ?? 'no statistics from the guest';
      out.push({ id: vm.id, targetMib: vm.targetMib, changed: false, reason: `left alone: ${why}`, giving: null, backoffUntilMs: vm.backoffUntilMs ?? null });
      continue;
    }
    const held = vm.residentMib !== undefined && vm.residentMib - vm.actualMib >= RESIDENT_SLACK_MIB ? vm.residentMib : vm.actualMib;
    const g = { ...vm.guest, availableMib: clamp(vm.guest.availableMib, 0, held) };
    const demand = Math.max(0, held - g.availableMib);
    const buffer = bufferFor(demand);
    const want = clamp(demand + buffer, vm.minMib, vm.maxMib);
    let pressure: string | null = null;
    if (g.availableMib < buffer / 2 && vm.targetMib < vm.maxMib) pressure = `guest available ${g.availableMib} MiB is below half its ${buffer} MiB buffer`;
    else if ((g.allocStalls ?? 0) > 0 && vm.targetMib < vm.maxMib) pressure = `${g.allocStalls} allocation stalls in the guest`;
    // Under pressure the guest's MemAvailable understates what it needs: ask for a full step more.
    const goal = pressure ? clamp(Math.max(want, vm.targetMib + STEP_MIB), vm.minMib, vm.maxMib) : want;
    let floor = clamp(demand + Math.ceil(buffer / 2), vm.minMib, vm.maxMib);

    // 0. A guest that cannot give: watch each shrink; no fall of actual in STALL_MS backs off.
    let giving: ShrinkWatch | null = null;
    let backoffUntilMs = vm.backoffUntilMs != null && vm.backoffUntilMs > nowMs ? vm.backoffUntilMs : null;
    let backOff: string | null = null;
    if (held - vm.targetMib >= MIN_MOVE_MIB) {
      const w = vm.giving;
      if (!w || held < w.actualMib) giving = { sinceMs: nowMs, actualMib: held };
      else if (nowMs - w.sinceMs < STALL_MS) giving = w;
      else {
        backoffUntilMs = nowMs + COOLDOWN_MS;
        const says = held !== vm.actualMib ? ` by the host's count; it says ${vm.actualMib} MiB` : '';
        backOff = `backs off: the guest gave back nothing in ${Math.round((nowMs - w.sinceMs) / 1000)} s (asked for ${vm.targetMib} MiB, holds ${held} MiB${says}); not asked to shrink before ${clock(backoffUntilMs)} UTC`;
      }
    }
    // Backing off: the target goes back up to what the guest holds. Cooling down: it does not fall.
    if (backOff) floor = Math.max(floor, clamp(held, vm.minMib, vm.maxMib));
    else if (backoffUntilMs !== null) floor = Math.max(floor, vm.targetMib);
    const settling = vm.balloonStillMs !== undefined && vm.balloonStillMs < SETTLE_MS
      ? `its balloon moved ${(vm.balloonStillMs / 1000).toFixed(1)} s ago, its statistics may be older` : null;
    work.push({ vm, guest: g, held, demand, want: goal, pressure, settling, floor, next: vm.targetMib, why: '', backOff, giving, backoffUntilMs });
  }

  // 1 and 2: the guest's own demand.
  const growers: Work[] = [];
  for (const w of work) {
    const { vm } = w;
    if (w.pressure) {
      w.next = Math.max(vm.targetMib, w.backOff ? w.floor : 0, Math.min(w.want, vm.targetMib + STEP_MIB));
      w.why = `grows: under pressure (${w.pressure}); demand ${w.demand} MiB, wants ${w.want} MiB`;
    } else if (w.backOff) {
      w.next = Math.max(w.floor, Math.min(w.want, vm.targetMib + STEP_MIB));
      w.why = w.backOff;
    } else if (w.settling && w.want !== vm.targetMib) {
      w.why = `holds: settling (${w.settling}); demand ${w.demand} MiB`;
    } else if (w.want < vm.targetMib && w.backoffUntilMs !== null) {
      w.why = `holds: backing off until ${clock(w.backoffUntilMs)} UTC (the guest could not give); demand ${w.demand} MiB`;
    } else if (w.want < vm.targetMib) {
      w.next = Math.max(w.want, vm.targetMib - STEP_MIB);
      w.why = `shrinks: guest uses ${w.demand} MiB, available ${w.guest.availableMib} MiB; demand plus buffer is ${w.want} MiB`;
    } else if (w.want > vm.targetMib) {
      growers.push(w);
    } else {
      w.why = `holds: demand ${w.demand} MiB plus buffer is its target`;
    }
  }

  // 3: growth without pressure, within the host's measured headroom only.
  const hostUsed = host.totalMib - host.availableMib;
  const headroom = Math.round((host.totalMib * HOST_GOAL_PERCENT) / 100) - hostUsed;
  const budget = Math.max(0, headroom);
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
    const givers = work.filter((w) => !w.pressure && !w.settling && w.next > w.floor);
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
    const changed = Math.abs(next - w.vm.targetMib) >= MIN_MOVE_MIB || (next !== w.vm.targetMib && (w.backOff !== null || next === w.vm.minMib || next === w.vm.maxMib));
    // A target below what the guest holds is watched (from the first round it is asked); a few MiB short is no stall.
    const target = changed ? next : w.vm.targetMib;
    const giving = w.held - target < MIN_MOVE_MIB ? null : w.giving ?? { sinceMs: nowMs, actualMib: w.held };
    out.push({ id: w.vm.id, targetMib: target, changed, reason: `${changed ? w.why : w.why.replace(/^(grows|shrinks)/, 'holds (move under 4 MiB)')} → ${target} MiB`, giving, backoffUntilMs: w.backoffUntilMs });
  }
  return out;
}
