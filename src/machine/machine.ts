import { randomBytes } from 'node:crypto';
import { Hart } from '../cpu/hart.js';
import { Jit, type JitOptions, type JitStats } from '../cpu/jit/jit.js';
import { Irq } from '../cpu/csr.js';
import { GoldfishRtc } from '../devices/goldfish-rtc.js';
import { SifiveTest } from '../devices/sifive-test.js';
import { Uart16550 } from '../devices/uart16550.js';
import { VirtioBalloon } from '../devices/virtio/balloon.js';
import { VirtioBlk } from '../devices/virtio/blk.js';
import { VirtioConsole, type ConsolePortOptions } from '../devices/virtio/console.js';
import { VirtioMmio, type VirtioDevice } from '../devices/virtio/mmio.js';
import { VirtioNet } from '../devices/virtio/net.js';
import { VirtioRng } from '../devices/virtio/rng.js';
import type { NetBackend } from '../net/backend.js';
import { defaultMac, parseMac } from '../net/mac.js';
import { Bus } from '../hw/bus.js';
import { CodeMap } from '../cpu/jit/code-map.js';
import { HartControl, HartWord, RunState } from './hart-control.js';
import { HartThreads } from './hart-threads.js';
import { Clint } from './clint.js';
import { TIMEBASE_FREQUENCY, VirtualClock } from './clock.js';
import { buildDeviceTree, type BoardDescription } from './device-tree.js';
import { parseElf, parseKernelImage, BootImageError } from './loader.js';
import { GuestMemory } from '../hw/memory.js';
import { Plic } from './plic.js';
import { HartState, ResetType, Sbi, SbiError, unhandledTrapMessage } from './sbi.js';
import { VIRT_MEMORY_MAP as MAP, VIRT_IRQ } from './memory-map.js';
import { saveHart, restoreHart, type HartSnapshot } from '../cpu/hart-snapshot.js';
import { savedInt, savedObject, SnapshotStateError } from '../hw/snapshot-state.js';
import type { PlicState } from './plic.js';
import type { ClintState } from './clint.js';
import type { UartState } from '../devices/uart16550.js';
import type { RtcState } from '../devices/goldfish-rtc.js';
import type { VirtioMmioState } from '../devices/virtio/mmio.js';

/** The ISA this board's harts implement and advertise. */
export const ISA_EXTENSIONS = ['i', 'm', 'a', 'f', 'd', 'c', 'zicsr', 'zifencei', 'zihintpause', 'zicntr', 'sstc'];
export const ISA_STRING = 'rv64imafdc_zicsr_zifencei_zihintpause_zicntr_sstc';

export type BootSource =
  | { kind: 'linux'; kernel: Uint8Array; kernelName: string; initrd?: Uint8Array; cmdline: string }
  /** A bare-metal ELF started in M-mode on every hart, with no SBI (ISA tests). */
  | { kind: 'elf'; image: Uint8Array; name: string }
  /** A Linux guest (host-served SBI) whose RAM and state restoreState() fills in: nothing is loaded. */
  | { kind: 'snapshot' };

export interface MachineOptions {
  cpus: number;
  memoryBytes: number;
  boot: BootSource;
  /** Console output from the UART and the SBI debug console. */
  onConsoleOutput: (data: Uint8Array) => void;
  /**
   * Instructions a hart runs before the next hart gets its turn (one thread), or before its
   * thread looks at what other threads asked of it (a thread per hart).
   */
  quantum?: number;
  /**
   * 'per-hart': every hart on a host thread of its own (hart-threads.ts), so a VM's harts run in
   * parallel; 1: all harts take turns on the calling thread, a deterministic machine. Default:
   * per-hart with more than one hart, unless the environment variable VESSEL_THREADS is 1.
   */
  threads?: 'per-hart' | 1;
  /**
   * Harts the guest may start (default: all `cpus`): the device tree lists every hart, SBI HSM
   * refuses to start the others until setAllottedHarts() raises the allotment (live vCPUs).
   */
  allottedHarts?: number;
  /**
   * Compile hot guest code to WebAssembly (src/cpu/jit); false runs the interpreter alone.
   * Default: on, unless the environment variable VESSEL_JIT is 0.
   */
  jit?: boolean | JitOptions;
  /** virtio-mmio devices, in slot order: the disks (vda, vdb, ...) first, then the network devices, then the console, then the RNG, then the balloon. */
  virtio?: VirtioOptions;
}

export interface VirtioOptions {
  /** Raw disk images; `readonly` offers VIRTIO_BLK_F_RO and opens the file read-only. */
  disks?: { path: string; readonly?: boolean }[];
  /**
   * virtio-net devices (eth0, eth1, ...) on these backends, which the machine closes in `close()`
   * (if the constructor throws, they stay the caller's to close).
   * `mac` like "52:54:00:12:34:56"; the default is 52:54:00:12:34:56 counting up per device.
   */
  nets?: { backend: NetBackend; mac?: string }[];
  /** A virtio-rng entropy device. */
  rng?: boolean;
  /** A virtio-console (the guest's /dev/hvc0); `output` receives what the guest writes to it. */
  console?: { output: (data: Uint8Array) => void; ports?: ConsolePortOptions[] };
  /**
   * A virtio-balloon (src/devices/virtio/balloon.ts). `targetPages` is the initial target in 4 KiB
   * pages; statistics are requested every `statsIntervalS` seconds (STATS_VQ is offered when
   * `stats`, default true); `freePageReporting` offers PAGE_REPORTING (default true).
   */
  balloon?: { targetPages?: number; deflateOnOom?: boolean; stats?: boolean; statsIntervalS?: number; freePageReporting?: boolean };
}

/** What Machine.saveState() returns: plain JSON. */
export interface MachineState {
  /** The guest clock (timebase ticks) when the machine was paused. */
  clockTicks: number;
  harts: HartSnapshot[];
  hartStates: HartState[];
  /** The vCPU allotment (absent in snapshots from before live vCPUs: all harts). */
  allottedHarts?: number;
  plic: PlicState;
  clint: ClintState;
  uart: UartState;
  rtc: RtcState;
  virtio: { base: number; irq: number; transport: VirtioMmioState }[];
  consoleTail: string;
}

export type StopReason =
  | { kind: 'poweroff'; code: number }
  | { kind: 'reboot' }
  | { kind: 'panic'; message: string }
  | { kind: 'error'; message: string };

/** Physical addresses exceed 2^31, so no 32-bit bitwise operators on them. */
const alignDown = (addr: number, align: number): number => Math.floor(addr / align) * align;

const PANIC_MARKER = 'Kernel panic - not syncing';
/** Keep this much recent console text for panic detection and error reports. */
const CONSOLE_TAIL = 8192;
/**
 * Host milliseconds the harts run before run() yields to the event loop (API requests, timers,
 * device I/O). It bounds the latency of pause() (the VMM promises 10 ms); a yield costs a few
 * microseconds, so 5 ms slices cost well under 1% of throughput.
 */
const RUN_SLICE_MS = 5;
/**
 * Instructions a hart thread runs between looks at what other threads asked of it (interrupt
 * wires, IPIs, fences): 0.1-0.4 ms of compiled code, 1-2 ms interpreted. At 20,000, a tight
 * compiled loop looked every 5 us, and two harts' threads ran at half speed each.
 */
const THREAD_SLICE = 100_000;
/** The longest the run loop sleeps without a timer deadline or an event (see sleepUntilEvent). */
const MAX_IDLE_SLEEP_MS = 1000;

/**
 * The board: QEMU virt's memory map with RAM, CLINT, PLIC, a 16550 UART, a goldfish RTC and
 * the sifive_test power device, harts served by Vessel's own SBI. Harts run round-robin on
 * the calling thread (one host thread for all vCPUs, for now); guest RAM is a
 * SharedArrayBuffer so the harts can move to worker threads without changing the bus.
 */
export class Machine {
  readonly clock = new VirtualClock();
  readonly memory: GuestMemory;
  readonly bus: Bus;
  readonly harts: Hart[] = [];
  /** The JIT the harts share, or null when they only interpret. */
  readonly jit: Jit | null;
  readonly plic: Plic;
  readonly clint: Clint;
  readonly uart: Uart16550;
  private readonly rtc: GoldfishRtc;
  /** The virtio-mmio slots in use, in order. */
  readonly virtio: { base: number; irq: number; transport: VirtioMmio }[] = [];
  /** The virtio-blk devices (vda, vdb, ...), in slot order. */
  readonly disks: VirtioBlk[] = [];
  /** The virtio-net devices, in slot order (the guest's eth0, eth1, ...). */
  readonly nets: VirtioNet[] = [];
  private hvcDevice: VirtioConsole | null = null;
  /** The virtio-balloon, when the board has one. */
  balloon: VirtioBalloon | null = null;
  /** Per-hart words shared with hart threads (HSM states, interrupt wires, mailboxes); used for the HSM states with one thread too. */
  private readonly control: HartControl;
  /** The hart threads, or null when the harts take turns on this thread. */
  readonly hartThreads: HartThreads | null;
  /** Ends runThreaded()'s wait (set while it waits). */
  private threadsDone: (() => void) | null = null;
  private threadsStarted = false;
  private clintTimer: NodeJS.Timeout | null = null;
  private flushScheduled = false;
  private clintDeadline = Infinity;
  private readonly sbi: Sbi;
  private readonly quantum: number;
  private stopReason: StopReason | null = null;
  private consoleChunks: number[] = [];
  private consoleTail = '';
  private wake: (() => void) | null = null;
  /** Set by pause(): run() runs no instruction until resume(). */
  private pauseRequested = false;
  private pausedAtMs = 0;
  private unpause: (() => void) | null = null;

  /** Not the whole options: they hold the kernel and initrd, which must not outlive loading them. */
  private readonly onConsoleOutput: (data: Uint8Array) => void;

  constructor(options: MachineOptions) {
    const { cpus, memoryBytes } = options;
    this.onConsoleOutput = options.onConsoleOutput;
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64) throw new RangeError(`cpus must be 1..64, got ${cpus}`);
    // The CPU keeps RAM offsets in int32 (see Hart.ramOffset), so RAM is at most 2 GiB for now.
    if (memoryBytes < 16 << 20 || memoryBytes > 2 * 1024 ** 3) throw new RangeError(`memory must be 16 MiB..2 GiB, got ${memoryBytes} bytes`);
    this.memory = new GuestMemory(MAP.ram, memoryBytes);
    this.bus = new Bus(this.memory);
    const threaded = (options.threads ?? (process.env.VESSEL_THREADS === '1' ? 1 : 'per-hart')) === 'per-hart' && cpus > 1;
    this.quantum = options.quantum ?? (cpus === 1 ? 50_000 : threaded ? THREAD_SLICE : 4_000);
    this.control = HartControl.create(cpus);
    this.control.allotted = this.checkedAllotment(options.allottedHarts ?? cpus, cpus);
    const hostFirmware = options.boot.kind !== 'elf';
    this.sbi = new Sbi({
      hartCount: cpus,
      hartState: (id) => this.hsm(id),
      startHart: (id, addr, opaque) => {
        if (id >= this.control.allotted) return SbiError.Failed;
        this.harts[id].enterSupervisor(addr, BigInt(id), opaque);
        this.setHsm(id, HartState.Started);
        return SbiError.Success;
      },
      stopHart: (id) => { this.setHsm(id, HartState.Stopped); this.harts[id].waiting = true; },
      sendIpi: (id) => this.harts[id].raiseSoftwareInterrupt(Irq.SSI),
      // The harts share this thread: the others are between instructions, and the JIT keeps
      // translated code coherent with every store of this thread.
      remoteFence: (ids) => ids.forEach((id) => this.harts[id].flushTlb()),
      systemReset: (type, reason) => this.stop(type === ResetType.Shutdown
        ? { kind: 'poweroff', code: reason === 0 ? 0 : 1 } : { kind: 'reboot' }),
      consoleWrite: (bytes) => this.consoleOutput(bytes),
      consoleRead: () => new Uint8Array(0),
      readPhys: (addr, len) => this.memory.slice(addr, len),
      writePhys: (addr, data) => this.memory.write(addr, data),
    });
    const env = {
      now: () => this.clock.now(),
      timebaseHz: TIMEBASE_FREQUENCY,
      supervisorEcall: hostFirmware ? (h: Hart) => this.sbi.handle(h) : undefined,
      machineTrap: hostFirmware ? (h: Hart, cause: number, interrupt: boolean) => this.stop({ kind: 'error', message: unhandledTrapMessage(h.id, cause, interrupt, h.pc) }) : undefined,
    };
    const jitOption = options.jit ?? process.env.VESSEL_JIT !== '0';
    const jitOptions = jitOption === false ? false : jitOption === true ? {} : jitOption;
    // With a thread per hart, each thread has a JIT of its own; the harts here only hold state
    // (boot, snapshots) and DMA reaches the threads' translations through the CodeMap.
    this.jit = jitOptions === false || threaded ? null : new Jit(this.memory, jitOptions);
    for (let id = 0; id < cpus; id++) {
      const hart = new Hart(id, this.bus, env, this.jit ?? undefined);
      if (hostFirmware) hart.configureHostFirmware();
      this.harts.push(hart);
      this.setHsm(id, HartState.Stopped);
    }
    if (threaded) {
      const code = CodeMap.create(this.memory.size >>> 12, cpus);
      this.memory.onDeviceWrite = (offset, length) => {
        for (let page = offset >>> 12; page <= (offset + length - 1) >>> 12; page++) code.written(page, -1);
      };
      this.hartThreads = new HartThreads({
        harts: this.harts, control: this.control, memory: this.memory, bus: this.bus, clock: this.clock, code,
        jit: jitOptions, hostFirmware, quantum: this.quantum,
        onDeviceAccess: () => this.afterDeviceAccess(),
        consoleWrite: (bytes) => { this.consoleOutput(bytes); this.afterDeviceAccess(); },
        systemReset: (type, reason) => this.stop(type === ResetType.Shutdown ? { kind: 'poweroff', code: reason === 0 ? 0 : 1 } : { kind: 'reboot' }),
        fail: (message) => this.stop({ kind: 'error', message }),
      });
    } else this.hartThreads = null;

    // A device interrupt raised from the event loop (network input, the RTC's alarm, console
    // input, the balloon's statistics timer) wakes harts sleeping in WFI at once.
    this.plic = new Plic(cpus, VIRT_IRQ.plicSources, (hart, mode, level) => this.setLine(hart, mode === 'M' ? Irq.MEI : Irq.SEI, level));
    this.clint = new Clint(cpus, this.clock,
      (hart, level) => this.setLine(hart, Irq.MSI, level),
      (hart, level) => this.setLine(hart, Irq.MTI, level));
    this.uart = new Uart16550(this.plic.line(VIRT_IRQ.uart), (byte) => this.consoleByte(byte));
    const rtc = this.rtc = new GoldfishRtc(this.plic.line(VIRT_IRQ.rtc));
    const test = new SifiveTest((code) => this.stop({ kind: 'poweroff', code }), () => this.stop({ kind: 'reboot' }));
    this.bus.map(MAP.test, test);
    this.bus.map(MAP.rtc, rtc);
    this.bus.map(MAP.clint, this.clint);
    this.bus.map(MAP.plic, this.plic);
    this.bus.map(MAP.uart, this.uart);
    this.addVirtio(options.virtio ?? {});

    if (options.boot.kind === 'linux') this.loadLinux(options.boot);
    else if (options.boot.kind === 'elf') this.loadElf(options.boot.image, options.boot.name);
  }

  /** The SBI HSM state of hart `id` (shared with hart threads). */
  private hsm(id: number): HartState { return this.control.get(id, HartWord.Hsm); }
  private setHsm(id: number, state: HartState): void { this.control.set(id, HartWord.Hsm, state); }

  /** Drives interrupt wire `irq` of hart `hart`: on its thread's shared word, or on the hart here. */
  private setLine(hart: number, irq: Irq, level: boolean): void {
    this.harts[hart].setInterruptLine(irq, level);
    if (this.hartThreads) this.control.setLine(hart, irq, level);
    else if (level) this.wake?.();
  }

  private checkedAllotment(n: number, cpus: number): number {
    if (!Number.isInteger(n) || n < 1 || n > cpus) throw new RangeError(`the vCPU allotment must be 1..${cpus} (the board's harts), got ${n}`);
    return n;
  }

  /** Harts the guest may start (SBI HSM refuses the others). */
  get allottedHarts(): number { return this.control.allotted; }

  /**
   * Changes the vCPU allotment of a running machine. Raising it lets the guest start the harts
   * (Linux: `echo 1 > /sys/devices/system/cpu/cpuN/online`, or the guest agent's
   * guest-set-vcpus); lowering it stops no hart: the guest must take them offline first (each
   * then stops itself through SBI HSM and its thread sleeps), and it cannot start them again.
   */
  setAllottedHarts(n: number): void {
    this.control.allotted = this.checkedAllotment(n, this.harts.length);
  }

  /** Harts that are started (SBI HSM Started or about to be), i.e. online in the guest. */
  get startedHarts(): number {
    return this.startedHartIds.length;
  }

  /** The ids of those harts, lowest first. */
  get startedHartIds(): number[] {
    return this.harts.filter((h) => { const s = this.hsm(h.id); return s === HartState.Started || s === HartState.StartPending; }).map((h) => h.id);
  }

  /** Whether each hart runs on a host thread of its own. */
  get threadPerHart(): boolean { return this.hartThreads !== null; }

  /** The JIT statistics of each thread that runs harts (with a thread per hart, as of the last pause or stop). */
  jitStats(): (JitStats | null)[] {
    return this.hartThreads ? [...this.hartThreads.jitStats] : [this.jit?.stats ?? null];
  }

  /** Instructions hart `id` retired. */
  hartInstret(id: number): number {
    return this.hartThreads && this.threadsStarted ? Math.max(this.control.instret(id), this.harts[id].instret) : this.harts[id].instret;
  }

  /** The device tree this board hands to its kernel. */
  describe(cmdline: string, initrd?: { start: number; end: number }): BoardDescription {
    return {
      harts: this.harts.length,
      isa: ISA_STRING,
      isaExtensions: ISA_EXTENSIONS,
      mmuType: 'riscv,sv48',
      memory: { base: this.memory.base, size: this.memory.size },
      bootargs: cmdline,
      initrd,
      timebaseFrequency: TIMEBASE_FREQUENCY,
      uart: { base: MAP.uart, size: this.uart.size, irq: VIRT_IRQ.uart, clockFrequency: 3_686_400 },
      plic: { base: MAP.plic, size: this.plic.size, sources: VIRT_IRQ.plicSources },
      clint: { base: MAP.clint, size: this.clint.size },
      virtio: this.virtio.map((v) => ({ base: v.base, size: v.transport.size, irq: v.irq })),
      test: { base: MAP.test, size: 0x1000 },
      rtc: { base: MAP.rtc, size: 0x1000, irq: VIRT_IRQ.rtc },
      rngSeed: randomBytes(64),
    };
  }

  private addVirtio(opts: VirtioOptions): void {
    const devices: VirtioDevice[] = [];
    try {
      (opts.disks ?? []).forEach((d, i) => {
        const disk = new VirtioBlk({ path: d.path, readonly: d.readonly, name: `virtio-blk${i}`, serial: `vessel-disk${i}` });
        this.disks.push(disk);
        devices.push(disk);
      });
      (opts.nets ?? []).forEach((n, i) => {
        const mac = n.mac === undefined ? defaultMac(i) : parseMac(n.mac);
        const net = new VirtioNet({ backend: n.backend, mac, name: `virtio-net${i}`, onActivity: () => this.wake?.() });
        this.nets.push(net);
        devices.push(net);
      });
    } catch (e) {
      this.close();
      throw e;
    }
    if (opts.console) {
      this.hvcDevice = new VirtioConsole({ output: opts.console.output, ports: opts.console.ports });
      devices.push(this.hvcDevice);
    }
    if (opts.rng) devices.push(new VirtioRng());
    if (opts.balloon) {
      const b = opts.balloon;
      this.balloon = new VirtioBalloon({
        memory: this.memory, targetPages: b.targetPages, deflateOnOom: b.deflateOnOom, stats: b.stats,
        statsIntervalS: b.statsIntervalS, freePageReporting: b.freePageReporting,
        onActivity: () => this.wake?.(), isRunning: () => !this.pauseRequested && !this.stopReason,
      });
      devices.push(this.balloon);
    }
    if (devices.length > VIRT_IRQ.virtioCount) {
      this.close();
      throw new RangeError(`at most ${VIRT_IRQ.virtioCount} virtio devices fit the board, got ${devices.length}`);
    }
    devices.forEach((device, n) => {
      const base = MAP.virtio + n * MAP.virtioStride;
      const irq = VIRT_IRQ.virtioFirst + n;
      const transport = new VirtioMmio(this.memory, device, this.plic.line(irq));
      this.bus.map(base, transport);
      this.virtio.push({ base, irq, transport });
    });
  }

  /** Releases host resources (disk image file descriptors, network backends, the JIT's compile worker line). */
  close(): void {
    this.jit?.close();
    this.balloon?.close();
    for (const d of this.disks) d.close();
    for (const n of this.nets) n.close();
  }

  private loadLinux(boot: Extract<BootSource, { kind: 'linux' }>): void {
    const kernel = parseKernelImage(boot.kernel, boot.kernelName);
    const kernelAddr = this.memory.base + kernel.textOffset;
    const kernelEnd = kernelAddr + kernel.imageSize;
    // The device tree sits at the top of RAM and the initrd just below it, as far from the
    // kernel as possible so early allocations do not land on them.
    const fdtAddr = this.memory.end - 0x10000;
    let initrd: { start: number; end: number } | undefined;
    if (boot.initrd) {
      const end = alignDown(fdtAddr, 4096);
      const start = alignDown(end - boot.initrd.length, 4096);
      initrd = { start, end: start + boot.initrd.length };
    }
    const lowestData = initrd ? initrd.start : fdtAddr;
    if (kernelEnd + (8 << 20) > lowestData) {
      const needMiB = Math.ceil((kernelEnd - this.memory.base + (fdtAddr - lowestData) + (24 << 20)) / (1 << 20));
      throw new BootImageError(`guest memory of ${this.memory.size >> 20} MiB is too small for this kernel and initrd: use at least ${needMiB} MiB`);
    }
    this.memory.write(kernelAddr, kernel.data);
    if (initrd && boot.initrd) this.memory.write(initrd.start, boot.initrd);
    const fdt = buildDeviceTree(this.describe(boot.cmdline, initrd));
    if (fdt.length > 0x10000) throw new Error(`device tree of ${fdt.length} bytes does not fit its 64 KiB slot`);
    this.memory.write(fdtAddr, fdt);
    this.harts[0].enterSupervisor(BigInt(kernelAddr), 0n, BigInt(fdtAddr));
    this.setHsm(0, HartState.Started);
  }

  private loadElf(image: Uint8Array, name: string): void {
    const elf = parseElf(image, name);
    for (const seg of elf.segments) {
      if (!this.memory.contains(seg.paddr, seg.memSize)) {
        throw new BootImageError(`${name}: segment at 0x${seg.paddr.toString(16)} (+${seg.memSize}) is outside RAM`);
      }
      this.memory.write(seg.paddr, seg.data);
    }
    for (const hart of this.harts) {
      hart.pc = elf.entry;
      this.setHsm(hart.id, HartState.Started);
    }
  }

  /** Host keyboard input for the UART. */
  sendInput(bytes: Uint8Array): void {
    this.uart.receive(bytes);
    this.wake?.();
  }

  /** The virtio-console, when the board has one. */
  get hvc(): VirtioConsole | null { return this.hvcDevice; }

  /** Host input for the virtio-console (hvc0); queued until the guest posts receive buffers. */
  sendConsoleInput(bytes: Uint8Array): void {
    if (!this.hvcDevice) throw new Error('this machine has no virtio-console');
    this.hvcDevice.sendInput(bytes);
    this.wake?.();
  }

  stop(reason: StopReason): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    for (const h of this.harts) h.waiting = true;
    // Hart threads stop at their next look at the run state; runThreaded() then waits for them.
    if (this.hartThreads) this.control.setRun(RunState.Stopped);
    this.threadsDone?.();
    this.wake?.();
    this.unpause?.();
  }

  /**
   * Stops every hart at an instruction boundary and freezes the guest clock. Called from the
   * event loop, so the harts are between slices already; run() starts no new slice until
   * resume(). A slice lasts at most RUN_SLICE_MS, which bounds how long a pause request waits.
   */
  pause(): void {
    if (this.pauseRequested || this.stopReason) return;
    this.pauseRequested = true;
    this.pausedAtMs = performance.now();
    // Hart threads park at an instruction boundary and hand their states here (this blocks for
    // at most one run slice of each, or a device call in progress).
    if (this.threadsStarted) this.hartThreads?.pause();
    this.clock.pause();
    this.wake?.();
  }

  /**
   * Continues after pause(). The guest clock continues from where it stopped, so the guest
   * does not see the paused time pass, unless `advanceClock` moves it forward by that time.
   */
  resume(opts: { advanceClock?: boolean } = {}): void {
    if (!this.pauseRequested) return;
    this.pauseRequested = false;
    const frozen = this.clock.now();
    this.clock.resume();
    if (opts.advanceClock) this.clock.set(frozen + Math.round((performance.now() - this.pausedAtMs) * (TIMEBASE_FREQUENCY / 1000)));
    if (this.threadsStarted) { this.hartThreads?.resume(); return; }
    // On the next event-loop turn: whatever asked for the resume (an API reply) finishes before
    // the harts take the thread for a slice. run() re-checks the flag, so a pause() in between holds.
    setImmediate(() => this.unpause?.());
  }

  get paused(): boolean { return this.pauseRequested; }

  /**
   * The board's state for a snapshot (docs/SNAPSHOT.md), RAM aside: the clock, every hart,
   * their SBI states, the interrupt controllers and every device. Call it while paused.
   */
  saveState(): MachineState {
    if (!this.pauseRequested) throw new Error('saveState() needs a paused machine');
    return {
      clockTicks: this.clock.now(),
      harts: this.harts.map(saveHart),
      hartStates: this.harts.map((h) => this.hsm(h.id)),
      allottedHarts: this.control.allotted,
      plic: this.plic.save(),
      clint: this.clint.save(),
      uart: this.uart.save(),
      rtc: this.rtc.save(),
      virtio: this.virtio.map((v) => ({ base: v.base, irq: v.irq, transport: v.transport.save() })),
      consoleTail: this.consoleTail,
    };
  }

  /**
   * Restores saveState()'s state into a machine built with the same options (boot kind
   * 'snapshot') whose RAM already holds the snapshot's memory; throws SnapshotStateError when
   * the state does not fit this board. The guest clock continues from the saved count.
   */
  restoreState(saved: unknown): void {
    const s = savedObject('machine', saved);
    const harts = s.harts, hartStates = s.hartStates, virtio = s.virtio;
    if (!Array.isArray(harts) || harts.length !== this.harts.length) throw new SnapshotStateError(`the snapshot has ${Array.isArray(harts) ? harts.length : 'no'} harts, this VM ${this.harts.length}`);
    if (!Array.isArray(hartStates) || hartStates.length !== this.harts.length || hartStates.some((h) => typeof h !== 'number' || HartState[h] === undefined)) throw new SnapshotStateError('machine.hartStates: not one SBI hart state per hart');
    if (!Array.isArray(virtio) || virtio.length !== this.virtio.length) throw new SnapshotStateError(`the snapshot has ${Array.isArray(virtio) ? virtio.length : 'no'} virtio devices, this VM ${this.virtio.length}`);
    const clockTicks = savedInt('machine.clockTicks', s.clockTicks, 0, Number.MAX_SAFE_INTEGER);
    const allotted = s.allottedHarts === undefined ? this.harts.length : savedInt('machine.allottedHarts', s.allottedHarts, 1, this.harts.length);
    if (typeof s.consoleTail !== 'string') throw new SnapshotStateError('machine.consoleTail: not text');
    harts.forEach((h: unknown, i) => restoreHart(this.harts[i], h));
    hartStates.forEach((h: HartState, i) => this.setHsm(i, h));
    this.control.allotted = allotted;
    this.clint.restore(s.clint);
    this.uart.restore(s.uart);
    this.rtc.restore(s.rtc);
    virtio.forEach((v: unknown, i) => {
      const slot = savedObject(`virtio slot ${i}`, v);
      if (slot.base !== this.virtio[i].base || slot.irq !== this.virtio[i].irq) throw new SnapshotStateError(`virtio slot ${i}: the snapshot's device sits at ${String(slot.base)} (irq ${String(slot.irq)})`);
      this.virtio[i].transport.restore(slot.transport);
    });
    // Last: the devices above may have driven their lines while restoring.
    this.plic.restore(s.plic);
    // Hart threads take their wires from the control words, not from the harts' states: drive
    // them as the restored PLIC and CLINT do (they drive a wire only when it changes, so a wire
    // left low here would stay low, and an interrupt pending at the snapshot be lost). The
    // devices, not the harts' mip: a hart thread's view of a wire lags it by up to a run slice,
    // so a saved hart may show a wire the PLIC had lowered, which it would then never lower.
    if (this.hartThreads) {
      for (const { id } of this.harts) {
        const { msip, mtip } = this.clint.levels(id);
        this.control.setLine(id, Irq.MEI, this.plic.outputLevel(id, 'M'));
        this.control.setLine(id, Irq.SEI, this.plic.outputLevel(id, 'S'));
        this.control.setLine(id, Irq.MSI, msip);
        this.control.setLine(id, Irq.MTI, mtip);
      }
    }
    this.clock.set(clockTicks);
    this.consoleTail = s.consoleTail;
  }

  get stopped(): StopReason | null { return this.stopReason; }

  /** Recent console text (for error reports). */
  get recentConsole(): string { return this.consoleTail; }

  /** Total instructions retired by all harts. */
  get instructionsRetired(): number { return this.harts.reduce((n, h) => n + this.hartInstret(h.id), 0); }

  private consoleByte(byte: number): void {
    this.consoleChunks.push(byte);
  }

  private consoleOutput(bytes: Uint8Array): void {
    for (const b of bytes) this.consoleChunks.push(b);
  }

  private flushConsole(): void {
    if (this.consoleChunks.length === 0) return;
    const data = Uint8Array.from(this.consoleChunks);
    this.consoleChunks = [];
    this.onConsoleOutput(data);
    this.consoleTail = (this.consoleTail + Buffer.from(data).toString('latin1')).slice(-CONSOLE_TAIL);
    const at = this.consoleTail.indexOf(PANIC_MARKER);
    if (at >= 0 && !this.stopReason) {
      const line = this.consoleTail.slice(at).split('\n')[0].trim();
      // Let the kernel finish printing its panic banner before stopping.
      setTimeout(() => this.stop({ kind: 'panic', message: line }), 200);
      this.consoleTail = this.consoleTail.slice(0, at) + 'Kernel panic (reported)' + this.consoleTail.slice(at + PANIC_MARKER.length);
    }
  }

  /** Runs the harts until the machine stops. Yields to the event loop regularly. */
  async run(): Promise<StopReason> {
    if (this.hartThreads) return this.runThreaded(this.hartThreads);
    while (!this.stopReason) {
      if (this.pauseRequested) {
        await new Promise<void>((resolve) => { this.unpause = resolve; });
        this.unpause = null;
        continue;
      }
      const sliceEnd = performance.now() + RUN_SLICE_MS;
      let busy = false;
      do {
        busy = false;
        for (let id = 0; id < this.harts.length; id++) {
          if (this.hsm(id) !== HartState.Started) continue;
          const hart = this.harts[id];
          hart.run(this.quantum);
          hart.reservation = -1; // another hart runs next: an LR/SC pair must not span that
          if (!hart.waiting) busy = true;
        }
        this.clint.update();
      } while (busy && !this.stopReason && performance.now() < sliceEnd);
      this.flushConsole();
      if (this.stopReason) break;
      if (busy) await new Promise<void>((resolve) => setImmediate(resolve));
      else await this.sleepUntilEvent();
    }
    this.flushConsole();
    return this.stopReason;
  }

  /**
   * All harts wait for interrupts: sleep until the next timer deadline or an event that wakes
   * them (a device interrupt, input, pause, stop). An idle Linux guest (NO_HZ) asks for its
   * next tick hundreds of milliseconds ahead; the bound only guards against an event source
   * that forgot to wake the loop. It was 50 ms: 20 wake-ups a second cost an idle VM ~1% of a core.
   */
  private async sleepUntilEvent(): Promise<void> {
    let deadline = this.clint.nextDeadline();
    for (let id = 0; id < this.harts.length; id++) {
      if (this.hsm(id) === HartState.Started) deadline = Math.min(deadline, this.harts[id].timerDeadline);
    }
    // Rounded up: a timer rounds a fraction of a millisecond down, and waking before the deadline
    // only costs another trip through the run loop to sleep again.
    const ms = Math.max(0, Math.min(MAX_IDLE_SLEEP_MS, Math.ceil((deadline - this.clock.now()) / (TIMEBASE_FREQUENCY / 1000))));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { this.wake = null; resolve(); }, ms);
      this.wake = () => { clearTimeout(timer); this.wake = null; resolve(); };
    });
  }

  /** run() with a thread per hart: this thread serves devices and timers until the machine stops. */
  private async runThreaded(threads: HartThreads): Promise<StopReason> {
    while (this.pauseRequested && !this.stopReason) {
      await new Promise<void>((resolve) => { this.unpause = resolve; });
      this.unpause = null;
    }
    if (!this.stopReason) {
      threads.start();
      this.threadsStarted = true;
      this.tickClint();
      await new Promise<void>((resolve) => { this.threadsDone = resolve; });
      this.threadsDone = null;
    }
    if (this.clintTimer) clearTimeout(this.clintTimer);
    await threads.stop();
    this.flushConsole();
    return this.stopReason as StopReason;
  }

  /** A hart thread reached a device: the CLINT's timers may have moved, console output waits. */
  private afterDeviceAccess(): void {
    if (this.clint.nextDeadline() !== this.clintDeadline) this.tickClint();
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => { this.flushScheduled = false; this.flushConsole(); });
  }

  /** With hart threads: updates the CLINT's timer wires and sleeps until its next deadline. */
  private tickClint(): void {
    if (this.clintTimer) clearTimeout(this.clintTimer);
    this.clintTimer = null;
    if (this.stopReason) return;
    this.clint.update();
    this.clintDeadline = this.clint.nextDeadline();
    const ms = Math.min(MAX_IDLE_SLEEP_MS, this.clock.msUntil(this.clintDeadline));
    this.clintTimer = setTimeout(() => this.tickClint(), Math.ceil(ms));
    this.clintTimer.unref();
  }
}
