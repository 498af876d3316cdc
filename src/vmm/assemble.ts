/**
 * The one place a VM's board is put together, for `vessel run` and `vessel vmm` alike: from a
 * description (kernel, initrd and command line or a snapshot to restore, harts, memory, disks,
 * network devices, entropy, consoles) to a `Machine`.
 *
 * `VmAssembly.open` takes what lives as long as the VM, across guest reboots: the kernel and
 * initrd bytes, the disks' locks (disks.ts) and the network backends. `build` then makes a
 * board on them (again after a reboot, as QEMU does); the board borrows the backends and the
 * locked disk descriptors, and `close` releases them. Every refusal is a ConfigError with one
 * sentence naming the file or setting (boot image errors, too little memory, a disk that cannot
 * be opened or is in use, a network that cannot be set up); whatever was opened before it is
 * closed again.
 */
import { BootImageError } from '../machine/loader.js';
import { Machine, type BootSource as MachineBoot, type VirtioOptions } from '../machine/machine.js';
import type { NetBackend } from '../net/backend.js';
import { readBootFile } from './boot-files.js';
import { checkDisk, lockDisks, releaseDisks, type DiskOption, type HeldDisk } from './disks.js';
import { ConfigError } from './errors.js';
import { lendBackend, NetOptionError, openNetBackend, type NetOption } from './net-option.js';

export type VmBoot =
  /** Paths of the kernel `Image` and initramfs, read once by `open`. */
  | { kind: 'linux'; kernel: string; initrd?: string; cmdline: string }
  /** The board of a snapshot: nothing is loaded, the caller restores RAM and state. */
  | { kind: 'snapshot' };

export interface VmDescription {
  boot: VmBoot;
  /** The board's harts: the device tree lists them all (max_vcpus). */
  cpus: number;
  /** Harts the guest may start (MachineOptions.allottedHarts; vcpu_count); all of them when undefined. */
  allottedHarts?: number;
  memoryBytes: number;
  /** virtio-blk devices in slot order (vda first). */
  disks: DiskOption[];
  /** virtio-net devices in slot order (eth0 first); `mac` from the option. */
  nets: NetOption[];
  rng: boolean;
  /** false: interpret only; undefined: the Machine's default. */
  jit?: boolean;
  /** Harts on a thread each, or taking turns on one (MachineOptions.threads); undefined: the Machine's default. */
  threads?: 'per-hart' | 1;
  balloon?: VirtioOptions['balloon'];
}

/** Where the guest's consoles go. */
export interface VmConsoles {
  /** The serial console (UART ttyS0 and the SBI debug console). */
  serial: (data: Uint8Array) => void;
  /** A virtio-console (hvc0), when the VM has one. */
  hvc?: (data: Uint8Array) => void;
  /** The guest agent's named port org.qemu.guest_agent.0 (a multiport virtio-console; hvc0 output is dropped without `hvc`). */
  agent?: { output: (data: Uint8Array) => void; onOpen?: (open: boolean) => void };
}

/** The name QEMU gives the guest agent's virtio-serial port; qemu-ga opens /dev/virtio-ports/<it>. */
export const GUEST_AGENT_PORT = 'org.qemu.guest_agent.0';

export class VmAssembly {
  private closed = false;

  private constructor(
    readonly description: VmDescription,
    /** The boot files read by `open`, for the first board only (dropped then: a kernel is ~36 MB). */
    private firstBoot: MachineBoot | null,
    private readonly held: HeldDisk[],
    private readonly backends: NetBackend[],
  ) {}

  /**
   * Reads the boot files, checks and locks the disks and opens the network backends (the TAP
   * relay runs, host forwards listen); throws ConfigError, with everything closed again.
   */
  static async open(desc: VmDescription): Promise<VmAssembly> {
    let boot: MachineBoot;
    if (desc.boot.kind === 'linux') {
      const kernel = readBootFile(desc.boot.kernel, 'kernel');
      const initrd = desc.boot.initrd !== undefined ? readBootFile(desc.boot.initrd, 'initrd') : undefined;
      boot = { kind: 'linux', kernel, kernelName: desc.boot.kernel, initrd, cmdline: desc.boot.cmdline };
    } else {
      boot = { kind: 'snapshot' };
    }
    for (const d of desc.disks) checkDisk(d);
    const disks = await lockDisks(desc.disks);
    const backends: NetBackend[] = [];
    try {
      for (const n of desc.nets) backends.push(await openNetBackend(n));
    } catch (e) {
      for (const b of backends) b.close();
      releaseDisks(disks);
      throw e instanceof NetOptionError ? new ConfigError(e.message) : e;
    }
    return new VmAssembly({ ...desc, disks: desc.disks.map((d) => ({ ...d })) }, boot, disks, backends);
  }

  /** A new board on the VM's resources; ConfigError for a kernel, initrd or memory size it cannot take. */
  build(consoles: VmConsoles): Machine {
    if (this.closed) throw new Error('VmAssembly.build after close');
    const d = this.description;
    try {
      const boot = this.firstBoot ?? this.readBoot();
      this.firstBoot = null;
      return new Machine({
        cpus: d.cpus,
        allottedHarts: d.allottedHarts,
        memoryBytes: d.memoryBytes,
        boot,
        onConsoleOutput: consoles.serial,
        jit: d.jit,
        threads: d.threads,
        virtio: {
          // The disks' files are locked by this process: VirtioBlk serves them through the locked descriptors.
          disks: d.disks.map((disk) => ({ path: disk.path, readonly: disk.readonly })),
          nets: this.backends.map((b, i) => ({ backend: lendBackend(b), mac: d.nets[i].mac })),
          rng: d.rng,
          console: consoles.agent ? { output: consoles.hvc ?? (() => {}), ports: [{ name: GUEST_AGENT_PORT, ...consoles.agent }] }
            : consoles.hvc ? { output: consoles.hvc } : undefined,
          balloon: d.balloon,
        },
      });
    } catch (e) {
      if (e instanceof BootImageError || e instanceof RangeError) throw new ConfigError(e.message);
      const err = e as NodeJS.ErrnoException;
      if (typeof err.code === 'string' && err.syscall === 'open') throw new ConfigError(`disk "${err.path}" cannot be opened: ${err.message}`);
      if (e instanceof Error && e.name === 'DiskLockError') throw new ConfigError(e.message);
      throw e;
    }
  }

  /**
   * The boot files again, for the board after a guest reboot (QEMU keeps them in memory; a VM
   * process holding a 36 MB kernel for its whole life to spare a rare re-read costs more).
   */
  private readBoot(): MachineBoot {
    const b = this.description.boot;
    if (b.kind !== 'linux') return { kind: 'snapshot' };
    const initrd = b.initrd !== undefined ? readBootFile(b.initrd, 'initrd') : undefined;
    return { kind: 'linux', kernel: readBootFile(b.kernel, 'kernel'), kernelName: b.kernel, initrd, cmdline: b.cmdline };
  }

  /** The locked disk images, in slot order. */
  get disks(): readonly HeldDisk[] { return this.held; }

  /**
   * After the board's disk in `slot` was switched to `next` (a PATCH /drives): holds `next`
   * from now on and releases the image it replaced.
   */
  swapDisk(slot: number, next: HeldDisk): void {
    const old = this.held[slot];
    this.held[slot] = next;
    this.description.disks[slot] = { path: next.path, readonly: next.readonly };
    if (old) releaseDisks([old]);
  }

  /** Closes the network backends and releases the disks' locks (after the last board is closed). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const b of this.backends) b.close();
    releaseDisks(this.held);
  }
}
