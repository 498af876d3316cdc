/**
 * The host's VMs: it creates them, starts each as its own `vessel vmm` process in its own CPU
 * cgroup, watches the processes, restarts them as their policy says, and re-adopts the ones
 * still running when the host itself restarts. The store holds what must survive the host
 * (definitions, desired state, which pid runs which VM); everything else here is derived.
 *
 *   stopped ──start──▶ starting ──API answers──▶ running ◀──pause/resume──▶ paused
 *      ▲                  │                        │                        │
 *      └──── process ends (stop, poweroff, crash: restarted per policy) ◀──┘
 *
 * Operations on one VM run one at a time (a per-VM queue); different VMs do not wait for each other.
 */
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { Cgroups } from './cgroups.js';
import { ConflictError, NotFoundError, UnavailableError } from './errors.js';
import { processArgs, processStartTime, sameProcess } from './proc.js';
import { StateStore, StateStoreError, type DesiredState, type ExitRecord, type VmRecord } from './store.js';
import { isVmmOf, readExitFile, spawnVmm, vmFiles, vmmLogReason, type VmFiles } from './vm-process.js';
import { checkCpu, checkMaxVcpus, checkMemoryShares, checkName, checkSpec, maxVcpus, SpecError, vmmConfig, type RestartPolicy, type VmSpec } from './vm-spec.js';
import { vmmRequest } from './vmm-client.js';
import { growDiskImage, type DiskGrowth } from './disk-resize.js';
import { allotmentNow, type VcpuChange } from './vcpu-resize.js';

export type VmRunState = 'stopped' | 'starting' | 'running' | 'paused' | 'stopping' | 'crashed';

/** How long a VM process may take from spawn to answering that its VM runs. */
const START_TIMEOUT_MS = 60_000;
/** How long `shutdown` waits for the guest to power off after its agent was asked to. */
const SHUTDOWN_TIMEOUT_MS = 120_000;
/** How long `stop` waits after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 10_000;
/** How often processes the host did not spawn itself (re-adopted ones) are checked. */
const WATCH_INTERVAL_MS = 1000;
/** A VM that failed this many times within the window is left crashed. */
const RESTART_LIMIT = 5;
const RESTART_WINDOW_MS = 5 * 60_000;

interface Running {
  pid: number;
  pidStart: string;
  startedAt: string;
  /** Set when this host spawned the process (exit events come from it); absent when adopted. */
  child?: ChildProcess;
  exited: Promise<void>;
  markExited: () => void;
}

export class VmHandle {
  state: VmRunState = 'stopped';
  proc: Running | null = null;
  /** Why the last start failed, shown until the next start. */
  error: string | null = null;
  failures: number[] = [];
  restartTimer: NodeJS.Timeout | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(public record: VmRecord, readonly files: VmFiles) {}

  get id(): string { return this.record.id; }
  get name(): string { return this.record.name; }

  /** Runs `f` after every operation queued on this VM before it. */
  serial<T>(f: () => Promise<T>): Promise<T> {
    const next = this.queue.then(f, f);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

export interface SupervisorOptions {
  store: StateStore;
  cgroups: Cgroups | null;
  stateDir: string;
  hostCpus: number;
  log: Logger;
}

export interface CreateRequest {
  name: string;
  spec: VmSpec;
  start: boolean;
  /** The id from reserveVmDir when files were made for the VM before it is recorded (its root disk copy). */
  id?: string;
  /** The tenant it is made for (null or absent: the admin's own VM); its name need only be free among that tenant's VMs. */
  tenantId?: string | null;
}

/** A snapshot a fresh VM process loads instead of booting (snapshots.ts). */
export interface SnapshotLoad {
  name: string;
  statePath: string;
  memoryPath: string;
  /** Loaded paused (as it was when taken) or running. */
  paused: boolean;
}

export function newVmId(): string {
  return randomBytes(6).toString('hex');
}

export class Supervisor {
  readonly vms = new Map<string, VmHandle>();
  readonly vmsDir: string;
  private watchTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly opts: SupervisorOptions) {
    this.vmsDir = path.join(opts.stateDir, 'vms');
    fs.mkdirSync(this.vmsDir, { recursive: true });
  }

  private get store(): StateStore { return this.opts.store; }
  private get log(): Logger { return this.opts.log; }

  /** The VM with this name, id or unique id prefix. */
  find(nameOrId: string): VmHandle {
    const rec = this.store.findVm(nameOrId);
    const vm = rec && this.vms.get(rec.id);
    if (!vm) throw new NotFoundError(`no VM named "${nameOrId}" (and no VM has that id)`);
    return vm;
  }

  list(): VmHandle[] {
    return [...this.vms.values()];
  }

  /**
   * Loads every VM of the store. A VM whose process still runs (same pid, same start time, its
   * id in the arguments) is adopted as it is; one whose process ended while the host was down
   * gets its exit recorded and is started again when it should run.
   */
  async adopt(): Promise<void> {
    for (const rec of this.store.listVms()) {
      const vm = new VmHandle(rec, vmFiles(this.vmsDir, rec.id));
      this.vms.set(rec.id, vm);
      const rt = this.store.getRuntime(rec.id);
      if (rt && sameProcess(rt.pid, rt.pidStart) && isVmmOf(processArgs(rt.pid), rec.id)) {
        vm.proc = this.running(rt.pid, rt.pidStart, rt.startedAt);
        vm.state = await this.queryState(vm).catch(() => 'running' as VmRunState);
        if (this.opts.cgroups) {
          try {
            this.opts.cgroups.create(rec.id, { weight: rec.spec.cpu_weight, capPercent: rec.spec.cpu_cap });
            this.opts.cgroups.addProcess(rec.id, rt.pid);
          } catch (e) {
            this.log.warn({ vm: rec.name, err: (e as Error).message }, 'cannot restore the VM\'s cgroup');
          }
        }
        this.store.event(rec.id, rec.name, 'adopted', `VM process ${rt.pid} was still running; adopted (${vm.state})`);
        this.log.info({ vm: rec.name, pid: rt.pid, state: vm.state }, 'VM adopted');
        continue;
      }
      if (rt) {
        const exit = readExitFile(vm.files) ?? { exit_code: null, reason: 'the VM process ended while the host was not running, without an exit status (killed or crashed)', at: new Date().toISOString() };
        this.store.clearRuntime(rec.id, exit);
        this.store.event(rec.id, rec.name, 'exited', `while the host was down: ${exit.reason}`);
        await this.removeCgroup(vm);
        if (rec.desired !== 'stopped' && this.shouldRestart(vm, exit)) this.scheduleRestart(vm, 0);
        else if (rec.desired !== 'stopped') vm.state = 'crashed';
      } else if (rec.desired !== 'stopped') {
        this.scheduleRestart(vm, 0);
      }
    }
    await this.removeStrays();
    this.watchTimer = setInterval(() => this.watch(), WATCH_INTERVAL_MS);
    this.watchTimer.unref();
  }

  /** Cgroups and folders of VMs that are no longer in the store (a delete interrupted by a crash). */
  private async removeStrays(): Promise<void> {
    const cg = this.opts.cgroups;
    if (cg) {
      for (const name of cg.list()) {
        if (!this.vms.has(name) && cg.processes(name).length === 0) await cg.remove(name).catch(() => undefined);
      }
    }
    for (const entry of fs.readdirSync(this.vmsDir)) {
      if (!this.vms.has(entry) && /^[0-9a-f]{12}$/.test(entry)) fs.rmSync(path.join(this.vmsDir, entry), { recursive: true, force: true });
    }
  }

  private running(pid: number, pidStart: string, startedAt: string, child?: ChildProcess): Running {
    let markExited = (): void => {};
    const exited = new Promise<void>((resolve) => { markExited = resolve; });
    return { pid, pidStart, startedAt, child, exited, markExited };
  }

  /** Notices re-adopted processes that ended (spawned ones report their exit themselves). */
  private watch(): void {
    for (const vm of this.vms.values()) {
      const p = vm.proc;
      if (p && !p.child && !sameProcess(p.pid, p.pidStart)) void this.processEnded(vm, p, null, null);
    }
  }

  private async queryState(vm: VmHandle): Promise<VmRunState> {
    const info = await vmmRequest<{ state: string }>(vm.files.apiSock, 'GET', '/', undefined, 2000);
    return info.state === 'Paused' ? 'paused' : info.state === 'Running' ? 'running' : 'starting';
  }

  /**
   * Records a new VM and, unless told not to, starts it. Either all of it happens or none: a
   * VM that cannot start is removed again with its files, and the error says why.
   */
  async create(req: CreateRequest): Promise<VmHandle> {
    const id = req.id ?? newVmId();
    let vm: VmHandle | null = null;
    try {
      checkName(req.name);
      const tenantId = req.tenantId ?? null;
      if (this.store.vmsNamed(req.name).some((v) => v.tenantId === tenantId)) throw new ConflictError(`a VM named "${req.name}" already exists`);
      checkSpec(req.spec, this.opts.hostCpus);
      const record: VmRecord = { id, tenantId, name: req.name, createdAt: new Date().toISOString(), spec: req.spec, desired: req.start ? 'running' : 'stopped' };
      try {
        this.store.insertVm(record, `VM "${req.name}" created: ${req.spec.vcpus} vCPU, ${req.spec.memory_mib} MiB`);
      } catch (e) {
        // Two creates of one name (for one tenant) at once: the second loses at the database's unique index.
        if (e instanceof StateStoreError && e.sqliteCode === 'SQLITE_CONSTRAINT_UNIQUE') throw new ConflictError(`a VM named "${req.name}" already exists`);
        throw e;
      }
      vm = new VmHandle(record, vmFiles(this.vmsDir, record.id));
      this.vms.set(record.id, vm);
      this.log.info({ vm: vm.name, id: vm.id }, 'VM created');
      if (req.start) await vm.serial(() => this.startNow(vm as VmHandle));
      return vm;
    } catch (e) {
      if (vm) {
        const created = vm;
        await this.delete(created, true).catch((err: unknown) => this.log.error({ vm: created.name, err: (err as Error).message }, 'cannot remove a VM that failed to start'));
      } else {
        fs.rmSync(path.join(this.vmsDir, id), { recursive: true, force: true });
      }
      throw e;
    }
  }

  /** A folder for a VM about to be created, for files made before it is recorded. */
  reserveVmDir(): { id: string; dir: string } {
    const id = newVmId();
    const dir = path.join(this.vmsDir, id);
    fs.mkdirSync(dir, { recursive: true });
    return { id, dir };
  }

  start(vm: VmHandle): Promise<void> {
    return vm.serial(async () => {
      if (vm.proc) throw new ConflictError(`VM "${vm.name}" is already ${vm.state}`);
      this.cancelRestart(vm);
      this.store.setDesired(vm.id, 'running');
      vm.record.desired = 'running';
      vm.failures = [];
      await this.startNow(vm);
    });
  }

  /**
   * Spawns the VM's process, puts it in its cgroup, records it, and waits until its API says
   * the VM runs. A process that ends first makes this throw with the VMM's own sentence.
   */
  private async startNow(vm: VmHandle, snapshot?: SnapshotLoad): Promise<void> {
    const spec = vm.record.spec;
    vm.error = null;
    vm.state = 'starting';
    let child: ChildProcess;
    try {
      child = spawnVmm(vm.id, vm.files, vmmConfig(vm.id, spec), snapshot === undefined);
    } catch (e) {
      vm.state = 'stopped';
      vm.error = (e as Error).message;
      throw e;
    }
    const pid = child.pid;
    if (pid === undefined) {
      vm.state = 'stopped';
      throw new UnavailableError(`cannot start the process of VM "${vm.name}"`);
    }
    const pidStart = processStartTime(pid) ?? '0';
    const proc = this.running(pid, pidStart, new Date().toISOString(), child);
    vm.proc = proc;
    child.once('exit', (code, signal) => { void this.processEnded(vm, proc, code, signal); });
    if (this.opts.cgroups) {
      try {
        this.opts.cgroups.create(vm.id, { weight: spec.cpu_weight, capPercent: spec.cpu_cap });
        this.opts.cgroups.addProcess(vm.id, pid);
      } catch (e) {
        this.log.warn({ vm: vm.name, err: (e as Error).message }, 'the VM runs without its CPU cgroup');
        this.store.event(vm.id, vm.name, 'warning', `CPU weight and cap not applied: ${(e as Error).message}`);
      }
    }
    try {
      this.store.setRuntime({ vmId: vm.id, pid, pidStart, startedAt: proc.startedAt });
    } catch (e) {
      process.kill(pid, 'SIGKILL');
      throw e;
    }
    const deadline = Date.now() + START_TIMEOUT_MS;
    let loaded = false;
    for (;;) {
      if (vm.proc !== proc) {
        const exit = this.store.lastExit(vm.id);
        const why = exit?.reason ?? 'the VM process exited';
        vm.error = why;
        throw new ConflictError(`VM "${vm.name}" did not start: ${why}`);
      }
      const state = await this.queryState(vm).catch(() => null);
      if (snapshot && state === 'starting' && !loaded) {
        // The fresh VMM answers: it gets the snapshot instead of a configuration (docs/SNAPSHOT.md).
        loaded = true;
        const loading = vmmRequest(vm.files.apiSock, 'PUT', '/snapshot/load', { snapshot_path: snapshot.statePath, mem_backend: { backend_type: 'File', backend_path: snapshot.memoryPath }, resume_vm: !snapshot.paused }, START_TIMEOUT_MS);
        try {
          await loading;
        } catch (e) {
          process.kill(pid, 'SIGKILL');
          vm.error = `its snapshot ${snapshot.name} did not load: ${(e as Error).message}`;
          throw new ConflictError(`VM "${vm.name}" did not start: ${vm.error}`);
        }
        continue;
      }
      if (state === 'running' || state === 'paused') {
        vm.state = state;
        this.store.event(vm.id, vm.name, 'started', `VM process ${pid} started`);
        this.log.info({ vm: vm.name, pid }, 'VM started');
        return;
      }
      if (Date.now() > deadline) {
        process.kill(pid, 'SIGKILL');
        vm.error = `its process did not answer within ${START_TIMEOUT_MS / 1000} s`;
        throw new UnavailableError(`VM "${vm.name}" did not start: ${vm.error}`);
      }
      await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 50))]);
    }
  }

  /** Records how a VM process ended and starts it again when its policy says so. */
  private async processEnded(vm: VmHandle, proc: Running, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (vm.proc !== proc) return;
    vm.proc = null;
    const wanted = vm.record.desired;
    const fromFile = readExitFile(vm.files);
    const exit: ExitRecord = fromFile ?? {
      exit_code: code,
      signal,
      reason: signal ? `the VM process was killed by ${signal}` : code !== null ? `the VM process exited with code ${code}${vmmLogReason(vm.files) ? `: ${vmmLogReason(vm.files)}` : ''}` : 'the VM process is gone (killed or crashed; no exit status)',
      at: new Date().toISOString(),
    };
    if (signal && fromFile) exit.signal = signal;
    // An exit the VMM did not explain (an uncaught exception): its own last words say more.
    if (fromFile && (fromFile.stop ?? 'exit') === 'exit' && fromFile.exit_code !== 0) {
      const why = vmmLogReason(vm.files);
      if (why) exit.reason = `${exit.reason}: ${why}`;
    }
    proc.markExited();
    try {
      this.store.clearRuntime(vm.id, exit);
    } catch (e) {
      this.log.error({ vm: vm.name, err: (e as Error).message }, 'cannot record the end of a VM process');
    }
    await this.removeCgroup(vm);
    const stopping = vm.state === 'stopping' || wanted === 'stopped';
    this.store.event(vm.id, vm.name, 'exited', exit.reason);
    this.log.info({ vm: vm.name, pid: proc.pid, exit }, 'VM process ended');
    if (this.closed || stopping) {
      vm.state = 'stopped';
      return;
    }
    if (this.shouldRestart(vm, exit)) {
      vm.state = 'stopped';
      const now = Date.now();
      vm.failures = vm.failures.filter((t) => now - t < RESTART_WINDOW_MS);
      const clean = exit.stop === 'reboot' || exit.exit_code === 0;
      if (!clean) vm.failures.push(now);
      if (vm.failures.length >= RESTART_LIMIT) {
        vm.state = 'crashed';
        this.store.event(vm.id, vm.name, 'crashed', `failed ${vm.failures.length} times within ${RESTART_WINDOW_MS / 60_000} minutes; not restarted again (vessel vm start restarts it)`);
        return;
      }
      this.scheduleRestart(vm, clean ? 0 : Math.min(30_000, 1000 * 2 ** (vm.failures.length - 1)));
      return;
    }
    // The guest powered itself off (or failed and the policy keeps it down): it stays stopped.
    vm.state = exit.exit_code === 0 && !exit.signal ? 'stopped' : 'crashed';
    vm.record.desired = 'stopped';
    this.store.setDesired(vm.id, 'stopped');
  }

  /**
   * A guest reboot always starts the VM again (QEMU's and libvirt's on_reboot=restart); a clean
   * end (a guest poweroff with code 0) only with policy `always`; a failure (a crash, a signal,
   * a panic, a poweroff with a failure code) unless the policy is `no`.
   */
  private shouldRestart(vm: VmHandle, exit: ExitRecord): boolean {
    if (exit.stop === 'reboot') return true;
    const clean = exit.exit_code === 0 && !exit.signal;
    if (clean) return vm.record.spec.restart === 'always';
    return vm.record.spec.restart !== 'no';
  }

  private scheduleRestart(vm: VmHandle, delayMs: number): void {
    this.cancelRestart(vm);
    vm.restartTimer = setTimeout(() => {
      vm.restartTimer = null;
      if (this.closed || vm.proc || vm.record.desired === 'stopped') return;
      vm.serial(() => this.startNow(vm)).then(
        () => this.store.event(vm.id, vm.name, 'restarted', 'restarted by its policy'),
        (e: unknown) => this.log.warn({ vm: vm.name, err: (e as Error).message }, 'restart failed'),
      );
    }, delayMs);
  }

  private cancelRestart(vm: VmHandle): void {
    if (vm.restartTimer) clearTimeout(vm.restartTimer);
    vm.restartTimer = null;
  }

  private async removeCgroup(vm: VmHandle): Promise<void> {
    try {
      await this.opts.cgroups?.remove(vm.id);
    } catch (e) {
      this.log.warn({ vm: vm.name, err: (e as Error).message }, 'cannot remove the VM\'s cgroup');
    }
  }

  /** Ends the VM's process: SIGTERM, then SIGKILL after the grace time (or at once with `force`). */
  stop(vm: VmHandle, force = false): Promise<void> {
    return vm.serial(() => this.stopNow(vm, force));
  }

  private async stopNow(vm: VmHandle, force: boolean): Promise<void> {
    this.cancelRestart(vm);
    this.store.setDesired(vm.id, 'stopped');
    vm.record.desired = 'stopped';
    const proc = vm.proc;
    if (!proc) {
      if (vm.state === 'crashed') vm.state = 'stopped';
      return;
    }
    vm.state = 'stopping';
    this.signal(proc, force ? 'SIGKILL' : 'SIGTERM');
    const timer = setTimeout(() => this.signal(proc, 'SIGKILL'), force ? 0 : STOP_GRACE_MS);
    if (!proc.child) {
      // An adopted process: the watch notices its end; look more often meanwhile.
      const poll = setInterval(() => { if (!sameProcess(proc.pid, proc.pidStart)) void this.processEnded(vm, proc, null, null); }, 50);
      await proc.exited;
      clearInterval(poll);
    } else {
      await proc.exited;
    }
    clearTimeout(timer);
    this.store.event(vm.id, vm.name, 'stopped', force ? 'stopped (killed)' : 'stopped');
  }

  /**
   * Rolls the VM back to a snapshot (snapshots.ts), as Proxmox's `qm rollback` and libvirt's
   * `snapshot-revert` do: its process (if any) is killed, `prepare` puts the snapshot's disks
   * back and gives the spec the snapshot was taken with, and a fresh VM process loads the
   * snapshot's state, running or paused as it was then. In the VM's queue.
   */
  restoreSnapshot(vm: VmHandle, load: SnapshotLoad, prepare: () => VmSpec): Promise<void> {
    if (vm.state === 'starting') return Promise.reject(new ConflictError(`VM "${vm.name}" is still starting; restore a snapshot once it runs or has stopped`));
    return vm.serial(async () => {
      await this.stopNow(vm, true);
      const spec = prepare();
      this.store.updateSpec(vm.id, spec);
      vm.record.spec = spec;
      this.setDesired(vm, load.paused ? 'paused' : 'running');
      vm.failures = [];
      await this.startNow(vm, load);
      this.store.event(vm.id, vm.name, 'restored', `restored from snapshot ${load.name}`);
    });
  }

  /**
   * A clean shutdown from inside the guest: `send` asks its agent to power off (and throws when
   * there is none); the VM is then to stay stopped, and this waits until its process has ended
   * (UnavailableError after `timeoutMs`, the VM left running).
   */
  shutdown(vm: VmHandle, send: () => Promise<string | void>, timeoutMs = SHUTDOWN_TIMEOUT_MS): Promise<void> {
    if (vm.state === 'starting') return Promise.reject(new ConflictError(`VM "${vm.name}" is still starting; shut it down once it runs`));
    return vm.serial(async () => {
      const proc = vm.proc;
      if (!proc || vm.state === 'stopping') throw new ConflictError(`VM "${vm.name}" is ${vm.state}; only a running VM can be shut down`);
      const how = await send();
      this.cancelRestart(vm);
      this.setDesired(vm, 'stopped');
      this.store.event(vm.id, vm.name, 'shutdown', how || 'the guest agent was asked to power the guest off');
      let timer: NodeJS.Timeout | undefined;
      const ended = await Promise.race([proc.exited.then(() => true), new Promise<boolean>((r) => { timer = setTimeout(() => r(false), timeoutMs); })]);
      clearTimeout(timer);
      if (!ended) throw new UnavailableError(`VM "${vm.name}" did not power off within ${timeoutMs / 1000} s of ${how ? `this: ${how}` : 'its agent\'s guest-shutdown'}; vessel vm stop ends it`);
    });
  }

  private signal(proc: Running, sig: NodeJS.Signals): void {
    if (!sameProcess(proc.pid, proc.pidStart)) return;
    try {
      process.kill(proc.pid, sig);
    } catch { /* gone meanwhile */ }
  }

  pause(vm: VmHandle): Promise<void> {
    return this.setPaused(vm, true);
  }

  resume(vm: VmHandle): Promise<void> {
    return this.setPaused(vm, false);
  }

  /** Pauses or resumes the VM's harts through its VMM (PATCH /vm); the desired state follows. */
  private setPaused(vm: VmHandle, paused: boolean): Promise<void> {
    const verb = paused ? 'pause' : 'resume';
    // Refused at once rather than queued behind the start: the caller learns why now.
    if (vm.state === 'starting') return Promise.reject(new ConflictError(`VM "${vm.name}" is still starting; ${verb} it once it runs`));
    return vm.serial(async () => {
      if (vm.state === 'starting') throw new ConflictError(`VM "${vm.name}" is still starting; ${verb} it once it runs`);
      if (!vm.proc || vm.state === 'stopping') throw new ConflictError(`VM "${vm.name}" is ${vm.state}; only a running or paused VM can be ${paused ? 'paused' : 'resumed'}`);
      await vmmRequest(vm.files.apiSock, 'PATCH', '/vm', { state: paused ? 'Paused' : 'Resumed' });
      vm.state = paused ? 'paused' : 'running';
      this.setDesired(vm, paused ? 'paused' : 'running');
      this.store.event(vm.id, vm.name, paused ? 'paused' : 'resumed', paused ? 'paused' : 'resumed');
    });
  }

  private setDesired(vm: VmHandle, d: DesiredState): void {
    this.store.setDesired(vm.id, d);
    vm.record.desired = d;
  }

  /** Changes CPU weight, cap or restart policy; a running VM's cgroup follows at once. */
  update(vm: VmHandle, change: { cpu_weight?: number; cpu_cap?: number; restart?: RestartPolicy; memory_shares?: number; vcpus?: number; max_vcpus?: number }): Promise<void> {
    return vm.serial(async () => {
      // A running VM's vCPUs change through resizeVcpus (the guest agent takes part); its board's harts are fixed.
      if (change.max_vcpus !== undefined && change.max_vcpus !== maxVcpus(vm.record.spec) && vm.proc) {
        throw new ConflictError(`max_vcpus of a running VM cannot change: its board has ${maxVcpus(vm.record.spec)} harts, listed in the device tree it booted with (stop it, set --max-vcpus ${change.max_vcpus}, start it); nothing was changed`);
      }
      if (change.vcpus !== undefined && change.vcpus !== vm.record.spec.vcpus && vm.proc) {
        throw new ConflictError(`VM "${vm.name}" is ${vm.state}: its vCPUs change live through the guest agent (resizeVcpus), not here; nothing was changed`);
      }
      const spec = { ...vm.record.spec, ...change };
      // A stopped VM's vcpus may not pass a max_vcpus it was given (raise both: --vcpus N --max-vcpus M).
      checkMaxVcpus(spec);
      checkCpu(spec.cpu_weight, spec.cpu_cap, this.opts.hostCpus);
      if (spec.memory_shares !== undefined) checkMemoryShares(spec.memory_shares);
      if (vm.proc && this.opts.cgroups) this.opts.cgroups.set(vm.id, { weight: spec.cpu_weight, capPercent: spec.cpu_cap });
      this.store.updateSpec(vm.id, spec);
      vm.record.spec = spec;
      this.store.event(vm.id, vm.name, 'set', Object.entries(change).map(([k, v]) => `${k} ${String(v)}`).join(', '));
    });
  }

  /**
   * Changes a running or paused VM's vCPUs to `vcpus` (vcpu-resize.ts: the VMM's allotment and
   * the guest agent), in the VM's queue so that it neither starts nor stops meanwhile; the spec
   * follows what the VM process's allotment is afterwards, also when a step failed.
   */
  resizeVcpus(vm: VmHandle, vcpus: number, live: () => Promise<VcpuChange>): Promise<VcpuChange> {
    if (vm.state === 'starting') return Promise.reject(new ConflictError(`VM "${vm.name}" is still starting; change its vCPUs once it runs`));
    return vm.serial(async () => {
      if (!vm.proc || vm.state === 'starting' || vm.state === 'stopping') throw new ConflictError(`VM "${vm.name}" is ${vm.state}; its vCPUs change live once it runs, or for its next start once it has stopped`);
      const max = maxVcpus(vm.record.spec);
      if (vcpus > max) throw new SpecError(`VM "${vm.name}" has max_vcpus ${max}: --vcpus ${vcpus} is more than that (max_vcpus is fixed while it runs: stop it, set --max-vcpus ${vcpus}, start it; nothing was changed)`);
      const record = (n: number, what: string): void => {
        if (n === vm.record.spec.vcpus) return;
        const spec = { ...vm.record.spec, vcpus: n, max_vcpus: max };
        this.store.updateSpec(vm.id, spec);
        vm.record.spec = spec;
        this.store.event(vm.id, vm.name, 'set', what);
      };
      let change: VcpuChange;
      try {
        change = await live();
      } catch (e) {
        // A raised allotment stays raised when the guest agent failed afterwards: the spec says so.
        const n = await allotmentNow(vm.files.apiSock, vmmRequest).catch(() => null);
        if (n !== null) record(n, `vcpus ${n} (live; then: ${(e as Error).message})`);
        throw e;
      }
      record(change.vcpus, `vcpus ${change.previous} -> ${change.vcpus} live (${change.online ?? '?'} online)`);
      return change;
    });
  }

  /**
   * Grows one of the VM's disks to `bytes` (disk-resize.ts): through its VM process while it runs
   * or is paused, else the image file alone. In the VM's queue, so it neither starts nor stops meanwhile.
   */
  growDisk(vm: VmHandle, disk: string, bytes: number, beforeGrow?: (addBytes: number) => void): Promise<DiskGrowth> {
    if (vm.state === 'starting') return Promise.reject(new ConflictError(`VM "${vm.name}" is still starting; grow its disk once it runs`));
    return vm.serial(async () => {
      if (vm.state === 'starting' || vm.state === 'stopping') throw new ConflictError(`VM "${vm.name}" is ${vm.state}; grow its disk once it runs or has stopped`);
      const live = vm.proc !== null;
      const growth = await growDiskImage({ name: vm.name, state: vm.state, spec: vm.record.spec, live, apiSock: vm.files.apiSock }, disk, bytes, vmmRequest, beforeGrow);
      this.store.event(vm.id, vm.name, 'set', growth.notes[0] ?? `${disk} resized`);
      return growth;
    });
  }

  /** Deletes a stopped VM (a running one only with `force`, which stops it first), with its files and cgroup. */
  delete(vm: VmHandle, force = false): Promise<void> {
    if (vm.proc && !force) return Promise.reject(new ConflictError(`VM "${vm.name}" is ${vm.state}; stop it first or delete it with force`));
    const run = async (): Promise<void> => {
      this.cancelRestart(vm);
      this.store.deleteVm(vm.id, vm.name);
      this.vms.delete(vm.id);
      await this.removeCgroup(vm);
      fs.rmSync(vm.files.dir, { recursive: true, force: true });
      this.log.info({ vm: vm.name, id: vm.id }, 'VM deleted');
    };
    if (!vm.proc) return vm.serial(run);
    return this.stop(vm, true).then(() => vm.serial(run));
  }

  /** Stops watching; the VM processes go on running (a restarted host re-adopts them). */
  close(): void {
    this.closed = true;
    if (this.watchTimer) clearInterval(this.watchTimer);
    for (const vm of this.vms.values()) this.cancelRestart(vm);
  }
}

/** Copies the default image's root disk for one VM (sparse; a reflink where the file system has them). */
export function copyRootDisk(source: string, target: string): void {
  const r = spawnSync('cp', ['--sparse=always', '--reflink=auto', source, target], { encoding: 'utf8' });
  if (r.status !== 0) {
    fs.rmSync(target, { force: true });
    const why = (r.stderr || r.error?.message || `cp exited with ${r.status}`).trim();
    if (/No space left/i.test(why)) throw Object.assign(new Error(`cannot copy the root disk for the VM: the state directory's disk is full (${why})`), { full: true });
    throw new Error(`cannot copy the root disk ${source} to ${target}: ${why}`);
  }
}
