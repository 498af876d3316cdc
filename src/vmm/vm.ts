/**
 * One VM as a managed object: its configuration, collected before it starts, and its lifecycle
 *
 *     Not started ──InstanceStart──▶ Running ◀──pause/resume──▶ Paused
 *                                       └──────────┬──────────────┘
 *                                     poweroff, reboot, panic ──▶ Stopped
 *
 * Every method that a client calls checks the state first and throws VmError (answered with
 * 400) when the request cannot be carried out, leaving the VM as it was.
 */
import { statSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { Logger as PinoLogger } from 'pino';
import type { Machine, StopReason } from '../machine/machine.js';
import { SnapshotStateError } from '../hw/snapshot-state.js';
import { DiskLockError } from '../devices/virtio/disk-lock.js';
import { readMemoryFile, readStateFile, SnapshotFileError, writeMemoryFile, writeStateFile, type MemoryFileStats, type SnapshotBody } from './snapshot.js';
import { VmAssembly, type VmBoot } from './assemble.js';
import { checkBootFile, DEFAULT_APPEND } from './boot-files.js';
import { checkDisk, lockDisk, releaseDisks } from './disks.js';
import { ConfigError } from './errors.js';
import { report } from './exit.js';
import { NetOptionError, parseNetOption, type NetOption } from './net-option.js';
import { parseUserNetOptions, UserNetOptionsError } from '../net/user/options.js';
import { GUEST_AGENT_PORT } from './assemble.js';
import { HvcSocketError, HvcSocketServer } from './hvc-socket.js';
import type { BootSource, DiskResize, Drive, FullVmConfiguration, GuestAgent, MachineConfiguration, MachineConfigurationUpdate, NetworkInterface, PartialDrive, SerialDevice, SnapshotCreateParams, SnapshotLoadParams, VmResize, VmState } from './config.js';
import { RequestError } from './errors.js';
import { VmBalloon } from './balloon.js';
import type { VmMetrics } from './metrics.js';
import { checkSerialSpec, formatSerialSpec, openSerial, parseSerialSpec, SerialSpecError, type SerialConsole, type SerialSpec } from './serial.js';

/** A request the VM cannot carry out in its state or with these values; the message says why. */
export class VmError extends RequestError {
  override name = 'VmError';
}

/** A request the guest's present state does not allow yet (answered with 409): PUT /vm.resize below the harts it has online. */
export class VmConflictError extends VmError {
  override name = 'VmConflictError';
  override readonly status = 409;
}

/** The machine configuration as kept: max_vcpus stays absent while it follows vcpu_count. */
type MachineConfig = Required<Omit<MachineConfiguration, 'max_vcpus'>> & { max_vcpus?: number };
/** Firecracker's defaults. */
const DEFAULT_MACHINE: MachineConfig = { vcpu_count: 1, mem_size_mib: 128, smt: false };
/** The board has 8 virtio-mmio slots; the entropy device takes one when configured. */
const VIRTIO_SLOTS = 8;
const MIB = 1024 * 1024;
/** PUT /vm.resize's desired_ram may not go below this (or the boot size, when smaller). */
export const MIN_DESIRED_RAM_MIB = 64;

export interface VmOptions {
  log: PinoLogger;
  /** Called once when the guest stopped (and the VM released its resources), with the exit code for the VMM. */
  onStopped: (reason: StopReason, exitCode: number) => void;
  /** Every byte of the guest's serial output, besides the console (vessel vmm --console-log). */
  consoleLog?: (data: Uint8Array) => void;
}

/** Turns the errors of the helpers shared with `vessel run` into VmError. */
function asVmError<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ConfigError || e instanceof SerialSpecError) throw new VmError(e.message);
    throw e;
  }
}

export class Vm {
  private stateValue: VmState = 'Not started';
  private starting = false;
  private bootSource: BootSource | null = null;
  private machineConfig: MachineConfig = { ...DEFAULT_MACHINE };
  /** In the order they were first added. */
  private readonly drives = new Map<string, Drive>();
  private readonly nets = new Map<string, NetworkInterface>();
  private entropy = false;
  /** PUT /guest-agent: the agent's port and the socket its host end is served on. */
  private guestAgent: GuestAgent | null = null;
  private agentServer: HvcSocketServer | null = null;
  /** PUT/PATCH/GET /balloon and /balloon/statistics (balloon.ts). */
  readonly balloon: VmBalloon = new VmBalloon({
    device: () => this.machine?.balloon ?? null,
    started: () => this.stateValue !== 'Not started' || this.starting,
    preBoot: (what) => this.preBoot(what),
    postBoot: (what) => this.postBoot(what),
    memoryMib: () => this.machineConfig.mem_size_mib,
    claimSlot: (what) => {
      if (this.drives.size + this.nets.size + (this.entropy ? 1 : 0) + (this.guestAgent ? 1 : 0) >= VIRTIO_SLOTS) throw new VmError(`${what}: no free virtio slot for the balloon: the board has ${VIRTIO_SLOTS}`);
    },
    error: (message) => new VmError(message),
  });
  private serialConfig: SerialDevice | null = null;
  private serialSpec: SerialSpec;
  private machine: Machine | null = null;
  private assembly: VmAssembly | null = null;
  /** Each hart's instret when this process started or restored the VM: the metrics count from there. */
  private instretBase: number[] = [];
  private serial: SerialConsole | null = null;
  /** drive_id of each of the machine's disks, in slot order (vda first). */
  private diskIds: string[] = [];
  /** iface_id of each of the machine's network devices, in slot order (eth0 first). */
  private netIds: string[] = [];
  private startedAtMs = 0;
  private pausedSinceMs = 0;
  private pausedTotalMs = 0;

  constructor(private readonly opts: VmOptions, serial: SerialSpec = { kind: 'stdio' }) {
    this.serialSpec = serial;
  }

  get state(): VmState { return this.stateValue; }

  private preBoot(what: string): void {
    if (this.stateValue !== 'Not started' || this.starting) throw new VmError(`${what} is only possible before InstanceStart; the VM is ${this.stateValue === 'Not started' ? 'starting' : this.stateValue}`);
  }

  private postBoot(what: string): void {
    if (this.stateValue === 'Not started') throw new VmError(`${what} is only possible after InstanceStart; the VM is not started`);
    if (this.stateValue === 'Stopped') throw new VmError(`${what} is not possible: the VM has stopped`);
  }

  setBootSource(b: BootSource): void {
    this.preBoot('PUT /boot-source');
    asVmError(() => {
      checkBootFile(b.kernel_image_path, 'kernel');
      if (b.initrd_path !== undefined) checkBootFile(b.initrd_path, 'initrd');
    });
    this.bootSource = { ...b };
  }

  setMachineConfig(m: MachineConfiguration): void {
    this.preBoot('PUT /machine-config');
    this.machineConfig = this.checkedMachineConfig({ ...DEFAULT_MACHINE, ...m });
  }

  patchMachineConfig(m: MachineConfigurationUpdate): void {
    this.preBoot('PATCH /machine-config');
    this.machineConfig = this.checkedMachineConfig({ ...this.machineConfig, ...m });
  }

  private checkedMachineConfig(m: MachineConfig): MachineConfig {
    if (m.smt) throw new VmError('smt cannot be enabled: Vessel\'s RISC-V harts have no SMT siblings');
    if (m.max_vcpus !== undefined && m.max_vcpus < m.vcpu_count) throw new VmError(`max_vcpus ${m.max_vcpus} is less than vcpu_count ${m.vcpu_count}: the board must have at least the harts the guest is given`);
    return m;
  }

  /** The harts of the board: max_vcpus, or vcpu_count when it was not given. */
  private get maxVcpus(): number { return this.machineConfig.max_vcpus ?? this.machineConfig.vcpu_count; }

  /** GET /machine-config: vcpu_count is the allotment now (PUT /vm.resize changes it), max_vcpus the board's harts. */
  get machineConfiguration(): Required<MachineConfiguration> { return { ...this.machineConfig, max_vcpus: this.maxVcpus }; }

  /**
   * PUT /vm.resize: sets the vCPU allotment of a running or paused VM to `desired` (1..max_vcpus).
   * Raising it lets the guest start more harts (it onlines them itself, or through its agent);
   * lowering it is refused (409) while the guest has more harts online than `desired`: the guest
   * takes them offline first (each then stops itself through SBI HSM), so no running hart is
   * ever pulled from under it.
   */
  resizeVcpus(desired: number): void {
    const what = 'PUT /vm.resize';
    this.postBoot(what);
    const machine = this.machine;
    if (!machine) throw new VmError(`${what} is not possible: the VM is ${this.starting ? 'starting' : this.stateValue}`);
    const max = machine.harts.length;
    if (desired > max) throw new VmError(`desired_vcpus ${desired} is more than the VM's max_vcpus ${max} (the harts its device tree lists, fixed at boot)`);
    const started = machine.startedHartIds;
    const online = started.length;
    const beyond = started.filter((id) => id >= desired);
    if (beyond.length > 0) {
      const which = beyond.length === 1 ? `hart ${beyond[0]} is` : `harts ${beyond.slice(0, -1).join(', ')} and ${beyond[beyond.length - 1]} are`;
      const cpus = beyond.map((id) => `cpu${id}`).join(', ');
      throw new VmConflictError(`desired_vcpus ${desired} allots ${desired === 1 ? 'hart 0 only' : `harts 0-${desired - 1}`}, but ${which} still online in the guest: it must take ${beyond.length === 1 ? 'it' : 'them'} offline first (${cpus}: echo 0 > /sys/devices/system/cpu/cpuN/online, or the guest agent's guest-set-vcpus), the highest first; nothing was changed`);
    }
    const before = machine.allottedHarts;
    machine.setAllottedHarts(desired);
    this.machineConfig.vcpu_count = desired;
    if (this.machineConfig.max_vcpus === undefined) this.machineConfig.max_vcpus = max;
    this.opts.log.info({ from: before, vcpus: desired, max_vcpus: max, online }, 'vCPU allotment changed');
  }

  /**
   * PUT /vm.resize with Cloud Hypervisor's body: `desired_vcpus` (resizeVcpus) and/or
   * `desired_ram` in bytes. Debian's riscv64 kernel has no virtio-mem, so the guest RAM is the
   * boot size (mem_size_mib, the most it can have) less the balloon: desired_ram sets the
   * balloon's target to mem_size_mib - desired_ram, the same as PATCH /balloon {amount_mib}. Both
   * fields are checked before either changes.
   */
  resize(r: VmResize): void {
    const what = 'PUT /vm.resize';
    if (r.desired_vcpus === undefined && r.desired_ram === undefined) throw new VmError(`${what} needs desired_vcpus, desired_ram or both`);
    const balloonMib = r.desired_ram === undefined ? undefined : this.balloonForRam(r.desired_ram);
    if (r.desired_vcpus !== undefined) this.resizeVcpus(r.desired_vcpus);
    if (balloonMib !== undefined) {
      this.balloon.patch({ amount_mib: balloonMib });
      this.opts.log.info({ desired_ram: r.desired_ram, balloon_mib: balloonMib }, 'memory resized (balloon target)');
    }
  }

  /** The balloon size (MiB) that leaves the guest `bytes` of RAM; throws when it cannot. */
  private balloonForRam(bytes: number): number {
    const what = 'PUT /vm.resize';
    this.postBoot(what);
    if (!this.machine) throw new VmError(`${what} is not possible: the VM is ${this.starting ? 'starting' : this.stateValue}`);
    const mib = bytes / MIB;
    if (!Number.isInteger(mib)) throw new VmError(`desired_ram ${bytes} is not a whole number of MiB (the balloon moves in MiB)`);
    const boot = this.machineConfig.mem_size_mib;
    if (mib > boot) throw new VmError(`desired_ram ${mib} MiB is more than the VM's memory at boot (mem_size_mib ${boot}), the most it can have: the guest kernel has no virtio-mem, so memory is only given back up to that size by the balloon`);
    const floor = Math.min(MIN_DESIRED_RAM_MIB, boot);
    if (mib < floor) throw new VmError(`desired_ram ${mib} MiB is below ${floor} MiB, the least Vessel leaves a running guest (its kernel and user space would run out of memory)`);
    if (!this.balloon.configured) throw new VmConflictError(`${what}: desired_ram needs a balloon device, and this VM has none (PUT /balloon before InstanceStart); its memory stays ${boot} MiB`);
    return boot - mib;
  }

  /** The vCPU counts of GET /metrics. */
  private vcpuCounts(): { max: number; allotted: number; online: number } {
    const m = this.machine;
    if (!m) return { max: 0, allotted: 0, online: 0 };
    return { max: m.harts.length, allotted: m.allottedHarts, online: m.startedHarts };
  }

  putDrive(id: string, d: Drive): void {
    this.preBoot(`PUT /drives/${id}`);
    if (d.drive_id !== id) throw new VmError(`drive_id "${d.drive_id}" in the body does not match "${id}" in the path`);
    if (d.is_root_device) {
      for (const other of this.drives.values()) {
        if (other.is_root_device && other.drive_id !== id) throw new VmError(`drive "${other.drive_id}" is already the root device; only one drive can be`);
      }
    }
    if (!this.drives.has(id) && this.drives.size + this.nets.size + (this.entropy ? 1 : 0) + (this.guestAgent ? 1 : 0) + (this.balloon.configured ? 1 : 0) >= VIRTIO_SLOTS) {
      throw new VmError(`no free virtio slot for drive "${id}": the board has ${VIRTIO_SLOTS} (drives, network interfaces, the entropy device and the balloon)`);
    }
    asVmError(() => checkDisk({ path: d.path_on_host, readonly: d.is_read_only ?? false }));
    this.drives.set(id, { ...d });
  }

  /**
   * Swaps the drive's image file (path_on_host) or re-reads its size, on a started VM. The new
   * image is locked first (refused when another process or another drive of this VM uses it);
   * the old one's lock is released once the disk serves the new file.
   */
  async patchDrive(id: string, p: PartialDrive): Promise<void> {
    this.postBoot(`PATCH /drives/${id}`);
    if (p.drive_id !== id) throw new VmError(`drive_id "${p.drive_id}" in the body does not match "${id}" in the path`);
    const slot = this.diskIds.indexOf(id);
    const drive = this.drives.get(id);
    if (slot < 0 || !drive || !this.machine) throw new VmError(`there is no drive "${id}"`);
    const disk = this.machine.disks[slot];
    if (p.path_on_host === undefined) {
      disk.resize();
      this.opts.log.info({ drive: id, sectors: Number(disk.capacitySectors) }, 'drive size re-read');
      return;
    }
    const path = p.path_on_host;
    asVmError(() => checkDisk({ path, readonly: disk.readonly }));
    const machine = this.machine;
    const assembly = this.assembly as VmAssembly;
    const current = assembly.disks[slot];
    const st = statSync(path);
    if (current && st.dev === current.dev && st.ino === current.ino) {
      // The file the drive already serves (under this or another name): its locked descriptor stays.
      disk.resize();
      drive.path_on_host = path;
      this.opts.log.info({ drive: id, path, sectors: Number(disk.capacitySectors) }, 'drive image replaced');
      return;
    }
    let next;
    try {
      next = await lockDisk({ path, readonly: disk.readonly });
    } catch (e) {
      if (e instanceof ConfigError && e.cause instanceof DiskLockError) throw new VmError(`drive "${id}": ${e.message}`);
      if (e instanceof ConfigError) throw new VmError(`drive "${id}": "${path}" cannot be opened: ${((e.cause as Error | undefined) ?? e).message}`);
      throw e;
    }
    if (this.machine !== machine || this.assembly !== assembly || this.stateValue === 'Stopped') {
      releaseDisks([next]);
      throw new VmError(`PATCH /drives/${id} is not possible: the VM has stopped`);
    }
    try {
      disk.replaceImage(path);
    } catch (e) {
      releaseDisks([next]);
      throw new VmError(`drive "${id}": "${path}" cannot be opened: ${(e as Error).message}`);
    }
    assembly.swapDisk(slot, next);
    drive.path_on_host = path;
    this.opts.log.info({ drive: id, path, sectors: Number(disk.capacitySectors) }, 'drive image replaced');
  }

  /**
   * PUT /vm.resize-disk: grows a started VM's drive to `desired_size` bytes (the image file is
   * extended through the drive's own descriptor) and raises the config change. A read-only drive
   * and a smaller size are refused with the current size; the same size is a re-read.
   */
  resizeDisk(r: DiskResize): void {
    this.postBoot('PUT /vm.resize-disk');
    const slot = this.diskIds.indexOf(r.id);
    const drive = this.drives.get(r.id);
    if (slot < 0 || !drive || !this.machine) throw new VmError(`there is no drive "${r.id}"`);
    const disk = this.machine.disks[slot];
    if (disk.readonly) throw new VmError(`drive "${r.id}" is read-only; a read-only drive cannot be resized`);
    const before = disk.imageBytes;
    if (r.desired_size < before) throw new VmError(`drive "${r.id}" is ${before} bytes; shrinking it to ${r.desired_size} bytes is not supported (it would cut off the guest's data)`);
    try {
      disk.grow(r.desired_size);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (typeof code === 'string' || e instanceof RangeError) throw new VmError(`drive "${r.id}" cannot be grown to ${r.desired_size} bytes: ${(e as Error).message}`);
      throw e;
    }
    this.opts.log.info({ drive: r.id, from_bytes: before, bytes: r.desired_size, sectors: Number(disk.capacitySectors) }, 'drive grown');
  }

  putNetworkInterface(id: string, n: NetworkInterface): void {
    this.preBoot(`PUT /network-interfaces/${id}`);
    if (n.iface_id !== id) throw new VmError(`iface_id "${n.iface_id}" in the body does not match "${id}" in the path`);
    if ((n.host_dev_name === undefined) === (n.vessel_user_network === undefined)) {
      throw new VmError('a network interface needs exactly one of host_dev_name (a TAP device) or vessel_user_network');
    }
    if (n.guest_mac !== undefined) {
      const mac = n.guest_mac.toLowerCase();
      if (parseInt(mac.slice(0, 2), 16) & 1) throw new VmError(`guest_mac ${n.guest_mac} is a multicast address (lowest bit of the first byte set)`);
      for (const other of this.nets.values()) {
        if (other.iface_id !== id && other.guest_mac?.toLowerCase() === mac) throw new VmError(`guest_mac ${n.guest_mac} is already used by interface "${other.iface_id}"`);
      }
    }
    if (!this.nets.has(id) && this.drives.size + this.nets.size + (this.entropy ? 1 : 0) + (this.guestAgent ? 1 : 0) + (this.balloon.configured ? 1 : 0) >= VIRTIO_SLOTS) {
      throw new VmError(`no free virtio slot for interface "${id}": the board has ${VIRTIO_SLOTS} (drives, network interfaces, the entropy device and the balloon)`);
    }
    netOption(n);
    this.nets.set(id, { ...n });
  }

  setSerial(s: SerialDevice): void {
    this.preBoot('PUT /serial');
    if (s.serial_out_path !== undefined && s.vessel_console !== undefined) throw new VmError('give serial_out_path or vessel_console, not both');
    const spec: SerialSpec = s.serial_out_path !== undefined ? { kind: 'file', path: s.serial_out_path }
      : s.vessel_console !== undefined ? asVmError(() => parseSerialSpec(s.vessel_console as string)) : { kind: 'stdio' };
    asVmError(() => checkSerialSpec(spec));
    this.serialSpec = spec;
    this.serialConfig = { ...s };
  }

  setEntropy(): void {
    this.preBoot('PUT /entropy');
    if (!this.entropy && this.drives.size + this.nets.size + (this.guestAgent ? 1 : 0) + (this.balloon.configured ? 1 : 0) >= VIRTIO_SLOTS) throw new VmError(`no free virtio slot for the entropy device: the board has ${VIRTIO_SLOTS}`);
    this.entropy = true;
  }

  setGuestAgent(g: GuestAgent): void {
    this.preBoot('PUT /guest-agent');
    if (!this.guestAgent && this.drives.size + this.nets.size + (this.entropy ? 1 : 0) + (this.balloon.configured ? 1 : 0) >= VIRTIO_SLOTS) throw new VmError(`no free virtio slot for the guest agent's console: the board has ${VIRTIO_SLOTS}`);
    if (Buffer.byteLength(g.uds_path) > 107) throw new VmError(`guest agent uds_path "${g.uds_path}" is longer than a Unix socket address allows (107 bytes)`);
    this.guestAgent = { uds_path: g.uds_path };
  }

  /** GET /guest-agent: where the channel is served, whether a host client is on it and whether the guest has its port open. */
  guestAgentInfo(): { uds_path: string; port: string; host_connected: boolean; guest_connected: boolean } {
    if (!this.guestAgent) throw new VmError('no guest agent channel is configured (PUT /guest-agent)');
    return {
      uds_path: this.guestAgent.uds_path,
      port: GUEST_AGENT_PORT,
      host_connected: this.agentServer?.connected ?? false,
      guest_connected: this.machine?.hvc?.portOpen(1) ?? false,
    };
  }

  /** Drives in device order: the root device first (vda), then the others as added. */
  private orderedDrives(): Drive[] {
    const all = [...this.drives.values()];
    return [...all.filter((d) => d.is_root_device), ...all.filter((d) => !d.is_root_device)];
  }

  private cmdline(drives: Drive[]): string {
    let args = this.bootSource?.boot_args ?? DEFAULT_APPEND;
    // As Firecracker does: the root device is /dev/vda, writable unless the drive is read-only.
    if (drives[0]?.is_root_device) args += ` root=/dev/vda ${drives[0].is_read_only ? 'ro' : 'rw'}`;
    return args;
  }

  /** InstanceStart: builds the board and starts the harts; resolves once they run. */
  async start(): Promise<void> {
    if (this.stateValue !== 'Not started' || this.starting) throw new VmError(`InstanceStart: the VM is already ${this.starting ? 'starting' : this.stateValue === 'Stopped' ? 'stopped' : 'started'}`);
    const boot = this.bootSource;
    if (!boot) throw new VmError('InstanceStart: no boot source: PUT /boot-source first');
    this.starting = true;
    try {
      asVmError(() => {
        checkBootFile(boot.kernel_image_path, 'kernel');
        if (boot.initrd_path !== undefined) checkBootFile(boot.initrd_path, 'initrd');
      });
      const drives = this.orderedDrives();
      for (const d of drives) asVmError(() => checkDisk({ path: d.path_on_host, readonly: d.is_read_only ?? false }));
      const cmdline = this.cmdline(drives);
      await this.launch({ kind: 'linux', kernel: boot.kernel_image_path, initrd: boot.initrd_path, cmdline }, 'InstanceStart', () => {}, false);
      this.opts.log.info({ cmdline, vcpus: this.machineConfig.vcpu_count, max_vcpus: this.maxVcpus, mem_size_mib: this.machineConfig.mem_size_mib }, 'VM started');
    } finally {
      this.starting = false;
    }
  }

  /**
   * Assembles the VM (assemble.ts: boot files, disk locks, network backends), opens the serial
   * console, builds the board and starts the run loop (held at once when `paused`). `prepare`
   * runs on the new board before that (a snapshot load fills RAM and restores the state there);
   * when anything throws, everything opened is closed again and the VM stays Not started.
   */
  private async launch(boot: VmBoot, what: string, prepare: (machine: Machine) => void, paused: boolean): Promise<void> {
    const drives = this.orderedDrives();
    const nets = [...this.nets.values()];
    let assembly: VmAssembly;
    try {
      assembly = await VmAssembly.open({
        boot,
        cpus: this.maxVcpus,
        allottedHarts: this.machineConfig.vcpu_count,
        memoryBytes: this.machineConfig.mem_size_mib * 1024 * 1024,
        disks: drives.map((d) => ({ path: d.path_on_host, readonly: d.is_read_only ?? false })),
        nets: nets.map((n) => netOption(n)),
        rng: this.entropy,
        balloon: this.balloon.machineOption(),
      });
    } catch (e) {
      if (e instanceof ConfigError || e instanceof VmError) throw new VmError(`${what}: ${e.message}`);
      throw e;
    }
    const consoleLog = this.opts.consoleLog;
    const serial = await asVmErrorAsync(() => openSerial(this.serialSpec, {
      onInput: (bytes) => this.machine?.sendInput(bytes),
      onQuit: () => this.machine?.stop({ kind: 'poweroff', code: 0 }),
      onOutputClosed: (why) => this.machine?.stop({ kind: 'error', message: `${why}: VM stopped` }),
    })).catch((e: unknown) => { assembly.close(); throw e; });
    let agent: HvcSocketServer | null = null;
    if (this.guestAgent) {
      try {
        agent = await HvcSocketServer.listen(this.guestAgent.uds_path, (bytes) => { this.machine?.hvc?.sendPortInput(1, bytes); }, 'guest agent uds_path');
      } catch (e) {
        serial.close();
        assembly.close();
        if (e instanceof HvcSocketError) throw new VmError(`${what}: ${e.message}`);
        throw e;
      }
    }
    let machine: Machine;
    try {
      machine = assembly.build({
        serial: consoleLog ? (data) => { consoleLog(data); serial.write(data); } : (data) => serial.write(data),
        agent: agent ? { output: (data) => agent.write(data), onOpen: (open) => this.opts.log.info({ port: GUEST_AGENT_PORT, open }, open ? 'guest agent port opened by the guest' : 'guest agent port closed by the guest') } : undefined,
      });
    } catch (e) {
      agent?.close();
      serial.close();
      assembly.close();
      if (e instanceof ConfigError) throw new VmError(`${what}: ${e.message}`);
      throw e;
    }
    try {
      prepare(machine);
    } catch (e) {
      agent?.close();
      serial.close();
      machine.close();
      assembly.close();
      if (e instanceof SnapshotFileError || e instanceof SnapshotStateError) throw new VmError(`${what}: ${e.message}`);
      throw e;
    }
    this.machine = machine;
    this.assembly = assembly;
    this.instretBase = machine.harts.map((h) => machine.hartInstret(h.id));
    this.serial = serial;
    this.agentServer = agent;
    this.diskIds = drives.map((d) => d.drive_id);
    this.netIds = nets.map((n) => n.iface_id);
    this.startedAtMs = performance.now();
    this.pausedSinceMs = this.startedAtMs;
    this.stateValue = paused ? 'Paused' : 'Running';
    // From the next event-loop turn, so that the request's reply goes out before the first slice.
    setImmediate(() => machine.run().then(
      (reason) => this.finished(reason),
      (e: unknown) => this.finished({ kind: 'error', message: `internal error: ${e instanceof Error ? e.stack : String(e)}` }),
    ));
  }

  /**
   * PUT /snapshot/create: writes the paused VM's state and memory (see snapshot.ts). The VM
   * stays paused; files that cannot be written are reported and the VM is unchanged.
   */
  createSnapshot(p: SnapshotCreateParams, vesselVersion: string): void {
    if (p.snapshot_type === 'Diff') throw new VmError('PUT /snapshot/create: Vessel writes full snapshots only ("snapshot_type": "Full")');
    if (this.stateValue !== 'Paused' || !this.machine || !this.bootSource) {
      throw new VmError(`PUT /snapshot/create: the VM must be paused first (PATCH /vm {"state": "Paused"}); it is ${this.stateValue === 'Not started' ? 'not started' : this.stateValue}`);
    }
    const machine = this.machine;
    const t0 = performance.now();
    const state = machine.saveState();
    try {
      const memory = writeMemoryFile(p.mem_file_path, machine.memory);
      const t1 = performance.now();
      writeStateFile(p.snapshot_path, {
        vessel_version: vesselVersion,
        // Paths are stored absolute, so that a VMM in another working directory can load the snapshot.
        config: {
          'boot-source': absoluteBootSource(this.bootSource),
          'machine-config': this.machineConfiguration,
          drives: this.orderedDrives().map((d) => ({ ...d, path_on_host: resolvePath(d.path_on_host) })),
          'network-interfaces': [...this.nets.values()].map((n) => ({ ...n })),
          entropy: this.entropy,
          balloon: this.balloon.config(),
          ...(this.guestAgent ? { 'guest-agent': { ...this.guestAgent } } : {}),
        },
        memory: memory.description,
        machine: state,
      });
      this.opts.log.info({ snapshot_path: p.snapshot_path, mem_file_path: p.mem_file_path, memory_ms: Math.round(t1 - t0), state_ms: Math.round(performance.now() - t1), memory_bytes_written: memory.stats.bytes, memory_chunks: memory.stats.chunks }, 'snapshot created');
    } catch (e) {
      if (e instanceof SnapshotFileError) throw new VmError(`PUT /snapshot/create: ${e.message}`);
      throw e;
    }
  }

  /**
   * PUT /snapshot/load: only in a fresh VMM, before any boot configuration (as in Firecracker).
   * Rebuilds the snapshot's board from its saved configuration (the same disk images and TAP
   * devices must exist), fills RAM from the memory file and restores every part's state; the
   * VM is then Paused, or Running with resume_vm.
   */
  async loadSnapshot(p: SnapshotLoadParams): Promise<void> {
    const what = 'PUT /snapshot/load';
    if (this.stateValue !== 'Not started' || this.starting) throw new VmError(`${what}: a snapshot can only be loaded into a fresh VMM; the VM is ${this.starting ? 'starting' : this.stateValue === 'Stopped' ? 'stopped' : 'already started'}`);
    const defaultMachine = this.machineConfig.max_vcpus === undefined && Object.entries(DEFAULT_MACHINE).every(([k, v]) => this.machineConfig[k as keyof MachineConfig] === v);
    if (this.bootSource || this.drives.size > 0 || this.nets.size > 0 || this.entropy || this.balloon.configured || this.guestAgent || !defaultMachine) {
      throw new VmError(`${what}: loading a snapshot is not allowed after boot configuration (boot source, machine config, drives, network interfaces, entropy or balloon); the snapshot brings its own: start a fresh VMM`);
    }
    if (p.mem_file_path !== undefined && p.mem_backend !== undefined) throw new VmError(`${what}: give mem_backend or mem_file_path, not both`);
    if (p.mem_backend !== undefined && p.mem_backend.backend_type !== 'File') throw new VmError(`${what}: mem_backend of type "${p.mem_backend.backend_type}" is not supported; Vessel reads memory files ("backend_type": "File")`);
    const memPath = p.mem_backend?.backend_path ?? p.mem_file_path;
    if (memPath === undefined) throw new VmError(`${what}: no memory file: give mem_backend {"backend_type": "File", "backend_path": ...}`);
    let body: SnapshotBody;
    try {
      body = readStateFile(p.snapshot_path);
    } catch (e) {
      if (e instanceof SnapshotFileError) throw new VmError(`${what}: ${e.message}`);
      throw e;
    }
    try {
      this.applySnapshotConfig(body, what);
      this.starting = true;
      if (body.memory?.size !== this.machineConfig.mem_size_mib * 1024 * 1024) {
        throw new VmError(`${what}: snapshot file "${p.snapshot_path}": its memory description does not match its machine configuration`);
      }
      const resume = p.resume_vm ?? false;
      const t0 = performance.now();
      let memory: MemoryFileStats | undefined;
      await this.launch({ kind: 'snapshot' }, what, (machine) => {
        if (!resume) machine.pause();
        memory = readMemoryFile(memPath, machine.memory, body.memory);
        machine.restoreState(body.machine);
      }, !resume);
      this.opts.log.info({ snapshot_path: p.snapshot_path, mem_file_path: memPath, resumed: resume, restore_ms: Math.round(performance.now() - t0), memory_ms: Math.round(memory?.ms ?? 0), memory_bytes_read: memory?.bytes }, 'snapshot loaded');
    } catch (e) {
      this.bootSource = null;
      this.machineConfig = { ...DEFAULT_MACHINE };
      this.drives.clear();
      this.nets.clear();
      this.entropy = false;
      this.guestAgent = null;
      this.balloon.clear();
      throw e;
    } finally {
      this.starting = false;
    }
  }

  /** Takes the snapshot's configuration through the same checks as the API's PUTs (disks and TAP names must still exist). */
  private applySnapshotConfig(body: SnapshotBody, what: string): void {
    const cfg = body.config;
    if (typeof cfg !== 'object' || cfg === null || !cfg['boot-source'] || !cfg['machine-config'] || !Array.isArray(cfg.drives) || !Array.isArray(cfg['network-interfaces'])) {
      throw new VmError(`${what}: the snapshot's configuration is incomplete`);
    }
    try {
      this.machineConfig = this.checkedMachineConfig({ ...DEFAULT_MACHINE, ...cfg['machine-config'] });
      // The kernel is not read again (RAM holds it), so its file need not exist any more.
      this.bootSource = { ...cfg['boot-source'] };
      for (const d of cfg.drives) this.putDrive(d.drive_id, d);
      for (const n of cfg['network-interfaces']) this.putNetworkInterface(n.iface_id, n);
      if (cfg.entropy === true) this.setEntropy();
      if (cfg.balloon) this.balloon.put(cfg.balloon);
      if (cfg['guest-agent']) this.setGuestAgent(cfg['guest-agent']);
    } catch (e) {
      if (e instanceof VmError) throw new VmError(`${what}: the snapshot's configuration cannot be applied here: ${e.message}`);
      throw e;
    }
  }

  private finished(reason: StopReason): void {
    const machine = this.machine as Machine;
    if (this.stateValue === 'Paused') this.pausedTotalMs += performance.now() - this.pausedSinceMs;
    this.stateValue = 'Stopped';
    this.serial?.close();
    this.agentServer?.close();
    machine.close();
    this.assembly?.close();
    this.opts.log.info({ reason }, 'VM stopped');
    this.opts.onStopped(reason, report(reason, machine, 0));
  }

  /** PATCH /vm Paused: every hart stops at an instruction boundary; the guest clock freezes. */
  pause(): void {
    if (this.stateValue === 'Paused') return;
    this.postBoot('Pausing');
    this.machine?.pause();
    this.pausedSinceMs = performance.now();
    this.stateValue = 'Paused';
    this.opts.log.info('VM paused');
  }

  /** PATCH /vm Resumed: continues exactly where pause() stopped. */
  resume(advanceClock = false): void {
    if (this.stateValue === 'Running') return;
    this.postBoot('Resuming');
    this.machine?.resume({ advanceClock });
    this.pausedTotalMs += performance.now() - this.pausedSinceMs;
    this.stateValue = 'Running';
    this.opts.log.info({ advanceClock }, 'VM resumed');
  }

  metrics(): VmMetrics {
    const m = this.machine;
    const now = performance.now();
    const block: VmMetrics['block'] = {};
    this.diskIds.forEach((id, i) => {
      const s = (m as Machine).disks[i].stats;
      block[id] = { read_bytes: s.readBytes, write_bytes: s.writeBytes, read_ops: s.readOps, write_ops: s.writeOps, flush_ops: s.flushOps };
    });
    return {
      utc_timestamp_ms: Date.now(),
      state: this.stateValue,
      uptime_ms: m ? Math.round(now - this.startedAtMs) : 0,
      paused_ms: Math.round(this.pausedTotalMs + (this.stateValue === 'Paused' ? now - this.pausedSinceMs : 0)),
      vcpu: m ? m.harts.map((h, i) => ({ hart: h.id, instructions_retired: m.hartInstret(h.id) - (this.instretBase[i] ?? 0) })) : [],
      vcpus: this.vcpuCounts(),
      mmio_exits: m ? m.bus.mmioAccesses : 0,
      block,
      net: Object.fromEntries(this.netIds.map((id, i) => {
        const c = (m as Machine).nets[i].stats;
        return [id, { rx_bytes: c.rxBytes, tx_bytes: c.txBytes, rx_packets: c.rxPackets, tx_packets: c.txPackets }];
      })),
      balloon: this.balloon.metrics(),
    };
  }

  /** The VM's part of GET /vm/config. */
  config(): FullVmConfiguration {
    const cfg: FullVmConfiguration = {
      'machine-config': this.machineConfiguration,
      drives: [...this.drives.values()].map((d) => ({ ...d })),
      'network-interfaces': [...this.nets.values()].map((n) => ({ ...n })),
    };
    if (this.bootSource) cfg['boot-source'] = { ...this.bootSource };
    if (this.serialConfig) cfg.serial = { ...this.serialConfig };
    else if (this.serialSpec.kind !== 'stdio') cfg.serial = { vessel_console: formatSerialSpec(this.serialSpec) };
    if (this.entropy) cfg.entropy = {};
    const balloon = this.balloon.config();
    if (balloon) cfg.balloon = balloon;
    if (this.guestAgent) cfg['guest-agent'] = { ...this.guestAgent };
    return cfg;
  }
}

async function asVmErrorAsync<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof ConfigError || e instanceof SerialSpecError) throw new VmError(e.message);
    throw e;
  }
}

function absoluteBootSource(b: BootSource): BootSource {
  const out: BootSource = { ...b, kernel_image_path: resolvePath(b.kernel_image_path) };
  if (b.initrd_path !== undefined) out.initrd_path = resolvePath(b.initrd_path);
  return out;
}

/**
 * The `vessel run --net` option an interface amounts to; its parser checks the TAP name and the
 * user network's host forwards (throws VmError).
 */
function netOption(n: NetworkInterface): NetOption {
  const spec = n.host_dev_name !== undefined ? `tap=${n.host_dev_name}`
    : ['user', ...(n.vessel_user_network?.host_forwards ?? []).map((f) => `hostfwd=${f}`)].join(',');
  let option: NetOption;
  try {
    option = parseNetOption(spec);
    if (option.kind === 'user') parseUserNetOptions(option.settings);
  } catch (e) {
    if (e instanceof NetOptionError || e instanceof UserNetOptionsError) {
      throw new VmError(`network interface "${n.iface_id}": ${e.message.replace(/^--net (user: |"[^"]*": )/, '')}`);
    }
    throw e;
  }
  return { ...option, mac: n.guest_mac };
}
