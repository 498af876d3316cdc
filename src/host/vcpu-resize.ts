/**
 * Live vCPUs (`vessel vm set NAME --vcpus N` on a running VM, PATCH /vms/{vm} {vcpus}). The VM's
 * board has `max_vcpus` harts, all in its device tree; the VMM's allotment (`vcpu_count`, PUT
 * /vm.resize) says how many of them the guest may start (SBI HSM refuses the others).
 *
 *   - Up: the allotment is raised first, then the guest agent onlines the new CPUs
 *     (`guest-get-vcpus`, `guest-set-vcpus`: qemu-ga writes /sys/devices/system/cpu/cpuN/online,
 *     the kernel starts the hart through SBI HSM), and the host waits until the agent reports
 *     them online and the VMM counts the harts started. Without an agent the allotment is raised
 *     and the answer says the guest must online the CPUs itself.
 *   - Down: the agent offlines the highest CPUs first (Linux migrates their tasks and the hart
 *     stops itself through SBI HSM hart_stop; its host thread sleeps), the host waits until the
 *     VMM counts no more harts started than asked, then lowers the allotment, so the guest cannot
 *     start them again. Without an agent: refused (409, "no guest agent"), nothing changed.
 *
 * CPU 0 is never offlined (the allotment is at least 1 and the highest CPUs go first). Linux
 * numbers the boot hart cpu0 and the others in device-tree order, so on this board cpuN is hart N.
 */
import { ConflictError, UnavailableError } from './errors.js';
import { GuestAgentCommandError, NoGuestAgentError, withAgent, type AgentVm, type QgaClient, type VmmRequest } from './guest-agent.js';

/** How long the host waits for the guest's CPUs to come online or go offline. */
export const VCPU_SETTLE_TIMEOUT_MS = 20_000;

/** What a live vCPU change did, as the API answers it (`vcpus_change` in PATCH /vms/{vm}). */
export interface VcpuChange {
  previous: number;
  vcpus: number;
  max_vcpus: number;
  /** The running VM's allotment changed (false: a stopped VM, its next start). */
  live: boolean;
  /** CPUs online in the guest after the change (the VMM's count of started harts); null for a stopped VM. */
  online: number | null;
  /** How long after the request the guest showed the new count online (null: it did not, or no agent). */
  seen_after_ms: number | null;
  /** One sentence per step. */
  notes: string[];
}

interface VmmVcpus { max: number; allotted: number; online: number }

type GuestCpu = { 'logical-id': number; online: boolean; 'can-offline'?: boolean };

async function vmmVcpus(vm: AgentVm, request: VmmRequest): Promise<VmmVcpus> {
  const m = await request(vm.apiSock, 'GET', '/metrics') as { vcpus?: VmmVcpus };
  if (!m.vcpus) throw new ConflictError(`VM "${vm.name}" runs in a VM process without live vCPUs (started before Vessel had them): stop and start it, then set --vcpus`);
  return m.vcpus;
}

/** The VM process's vCPU allotment now (null from one without live vCPUs). */
export async function allotmentNow(apiSock: string, request: VmmRequest): Promise<number | null> {
  const m = await request(apiSock, 'GET', '/metrics') as { vcpus?: VmmVcpus };
  return m.vcpus?.allotted ?? null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const cpuList = (ids: number[]): string => ids.map((i) => `cpu${i}`).join(', ');

/**
 * Changes a running (or paused) VM's vCPUs from `from` to `to` (1..max_vcpus, checked by the
 * caller). `startedAt` is when the request arrived (for `seen_after_ms`).
 */
export async function resizeVcpusLive(vm: AgentVm, from: number, to: number, request: VmmRequest, startedAt = Date.now()): Promise<VcpuChange> {
  const before = await vmmVcpus(vm, request);
  const max = before.max;
  if (to > max) throw new ConflictError(`VM "${vm.name}" has max_vcpus ${max}: ${to} vCPUs is more than its board has (max_vcpus is fixed while it runs: stop it, set --max-vcpus, start it)`);
  const notes: string[] = [];
  const result = (online: number, seen: number | null): VcpuChange => ({ previous: from, vcpus: to, max_vcpus: max, live: true, online, seen_after_ms: seen, notes });
  if (to >= before.allotted) {
    if (to > before.allotted) {
      await request(vm.apiSock, 'PUT', '/vm.resize', { desired_vcpus: to });
      notes.push(`vCPU allotment raised from ${before.allotted} to ${to} (of max_vcpus ${max}): the guest may start harts 0-${to - 1}`);
    }
    if (vm.state === 'paused') {
      notes.push(`VM "${vm.name}" is paused: its guest agent cannot online the CPUs until it is resumed (then: vessel vm set ${vm.name} --vcpus ${to} again, or online them in the guest)`);
      return result(before.online, null);
    }
    try {
      return await withAgent(vm, request, async (c) => {
        const cpus = await c.getVcpus();
        const off = cpus.filter((x) => !x.online && x['logical-id'] < to).map((x) => x['logical-id']).sort((a, b) => a - b);
        if (off.length > 0) {
          const n = await c.setVcpus(off.map((id) => ({ 'logical-id': id, online: true })));
          if (n < off.length) throw new ConflictError(`the guest agent onlined ${n} of ${off.length} CPUs (${cpuList(off)}); the allotment stays ${to}`);
        }
        const seen = await settle(vm, c, request, to, startedAt);
        notes.push(off.length > 0 ? `the guest agent onlined ${cpuList(off)}: the guest has ${to} CPUs online (${seen} ms after the request)` : `the guest already has CPUs 0-${to - 1} online`);
        return result(to, seen);
      });
    } catch (e) {
      if (!(e instanceof NoGuestAgentError)) throw e;
      notes.push(`${e.message}; the guest must online the new CPUs itself (echo 1 > /sys/devices/system/cpu/cpuN/online for N < ${to})`);
      return result((await vmmVcpus(vm, request)).online, null);
    }
  }
  // Down: the guest first, the allotment after.
  if (vm.state === 'paused') throw new ConflictError(`VM "${vm.name}" is paused: its guest agent cannot take CPUs offline; resume it first; nothing was changed`);
  let seen: number;
  let offlined: number[] = [];
  try {
    seen = await withAgent(vm, request, async (c) => {
      const cpus = await c.getVcpus();
      offlined = cpus.filter((x) => x.online && x['logical-id'] >= to).map((x) => x['logical-id']).sort((a, b) => b - a);
      const stuck = cpus.filter((x) => x.online && x['logical-id'] >= to && x['can-offline'] === false).map((x) => x['logical-id']);
      if (stuck.length > 0) throw new ConflictError(`the guest says ${cpuList(stuck)} cannot be taken offline; nothing was changed`);
      if (offlined.length > 0) {
        // One at a time, the highest first: guest-set-vcpus stops at the first CPU it fails on.
        for (const id of offlined) {
          const n = await c.setVcpus([{ 'logical-id': id, online: false }]);
          if (n !== 1) throw new ConflictError(`the guest agent could not take cpu${id} offline; the allotment stays ${before.allotted}`);
        }
      }
      return settle(vm, c, request, to, startedAt);
    });
  } catch (e) {
    if (e instanceof NoGuestAgentError) throw new NoGuestAgentError(`${e.message}; without it the host cannot take the guest's CPUs offline (no vCPU is pulled from under a guest), so nothing was changed: offline cpu${to}.. in the guest (echo 0 > /sys/devices/system/cpu/cpuN/online), then set --vcpus ${to} again`);
    if (e instanceof GuestAgentCommandError) throw new ConflictError(`${e.message}; the allotment stays ${before.allotted}`);
    throw e;
  }
  if (offlined.length > 0) notes.push(`the guest agent took ${cpuList(offlined)} offline; their harts stopped (${seen} ms after the request)`);
  await request(vm.apiSock, 'PUT', '/vm.resize', { desired_vcpus: to });
  notes.push(`vCPU allotment lowered from ${before.allotted} to ${to} (of max_vcpus ${max}): the guest cannot start the other harts again`);
  return result(to, seen);
}

/**
 * Waits until the guest agent reports exactly CPUs 0..to-1 online and the VMM counts `to` harts
 * started; returns the ms since `startedAt`.
 */
async function settle(vm: AgentVm, c: QgaClient, request: VmmRequest, to: number, startedAt: number): Promise<number> {
  const deadline = Date.now() + VCPU_SETTLE_TIMEOUT_MS;
  let last = '';
  for (let delay = 25; ; delay = Math.min(250, delay * 2)) {
    const cpus: GuestCpu[] = await c.getVcpus();
    const online = cpus.filter((x) => x.online).map((x) => x['logical-id']);
    const harts = (await vmmVcpus(vm, request)).online;
    if (online.length === to && online.every((id) => id < to) && harts === to) return Date.now() - startedAt;
    last = `the guest has ${online.length} CPUs online (${cpuList(online)}), the VMM counts ${harts} harts started`;
    if (Date.now() + delay > deadline) throw new UnavailableError(`VM "${vm.name}": the guest did not reach ${to} CPUs online within ${VCPU_SETTLE_TIMEOUT_MS / 1000} s: ${last}`);
    await sleep(delay);
  }
}
