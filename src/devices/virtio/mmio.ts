/**
 * The virtio-mmio transport, version 2 ("modern", virtio 1.2 §4.2.2). It owns the register
 * window, the feature negotiation, the queues' addresses and the interrupt line; the device
 * behind it sees only `VirtioDevice` callbacks and `VirtQueue`s, so it never knows its transport.
 *
 * The guest can never make it throw into the CPU: a malformed descriptor chain, a bad queue
 * setup or a memory access outside RAM logs one line, sets DEVICE_NEEDS_RESET in Status and
 * raises a configuration-change interrupt; the device stays silent until the driver resets it.
 */
import { GuestMemoryError, type GuestMemory } from '../../hw/memory.js';
import type { AccessWidth, IrqLine, MmioDevice } from '../mmio.js';
import { savedBool, savedInt, savedObject, SnapshotStateError } from '../../hw/snapshot-state.js';
import { MAX_QUEUE_SIZE, VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_VERSION_1, VirtioError, VirtQueue, type QueueIndices } from './queue.js';

export interface VirtioDevice {
  /** Short name for logs, e.g. "virtio-blk0". */
  readonly name: string;
  /** Virtio device ID (§5): 2 block, 3 console, 4 entropy. */
  readonly deviceId: number;
  /** Device-specific feature bits; the transport adds VERSION_1, INDIRECT_DESC and EVENT_IDX. */
  readonly features: bigint;
  readonly queueCount: number;
  readonly queueMaxSize: number;
  /** Device configuration space, `offset` from its start. */
  configRead(offset: number, width: AccessWidth): number;
  configWrite(offset: number, width: AccessWidth, value: number): void;
  /** The driver notified queue `queueIndex`; the device pops chains and pushes them back. */
  notify(queueIndex: number, queue: VirtQueue, transport: VirtioTransport): void;
  /** The driver reset the device (Status written with 0). */
  reset(): void;
  /** The device's own state for a snapshot (plain JSON); absent for stateless devices. */
  save?(): unknown;
  /** Restores what save() returned; throws SnapshotStateError when it does not fit this device. */
  restore?(saved: unknown): void;
  /** Called once by the transport's constructor, for devices that signal on their own (e.g. a resize). */
  attach?(transport: VirtioTransport): void;
}

/** What a device may ask of its transport. */
export interface VirtioTransport {
  /** The device changed its configuration space: bump ConfigGeneration and interrupt. */
  configChanged(): void;
  /** The device pushed used buffers outside `notify` (asynchronous completion). */
  usedBuffers(queueIndex: number): void;
  /**
   * The device has new work for queue `queueIndex` outside a driver notify (e.g. host input
   * arrived): the transport calls `notify` as if the driver had kicked the queue, with the same
   * checks and error handling, when the queue is live. Optional, so test transports need not have it.
   */
  kick?(queueIndex: number): void;
  /** The features the driver acknowledged (a device whose queues depend on them reads it). Optional, as kick. */
  readonly negotiatedFeatures?: bigint;
  /** The device status register (a device that reports whether its driver is up reads it). Optional, as kick. */
  readonly currentStatus?: number;
}

export const VIRTIO_MMIO_MAGIC = 0x74726976; // "virt"
export const VIRTIO_MMIO_VERSION = 2;
/** Vendor ID reported to the guest: "VSSL". */
export const VESSEL_VENDOR_ID = 0x4c535356;

export const Reg = {
  MagicValue: 0x000,
  Version: 0x004,
  DeviceID: 0x008,
  VendorID: 0x00c,
  DeviceFeatures: 0x010,
  DeviceFeaturesSel: 0x014,
  DriverFeatures: 0x020,
  DriverFeaturesSel: 0x024,
  QueueSel: 0x030,
  QueueNumMax: 0x034,
  QueueNum: 0x038,
  QueueReady: 0x044,
  QueueNotify: 0x050,
  InterruptStatus: 0x060,
  InterruptACK: 0x064,
  Status: 0x070,
  QueueDescLow: 0x080,
  QueueDescHigh: 0x084,
  QueueDriverLow: 0x090,
  QueueDriverHigh: 0x094,
  QueueDeviceLow: 0x0a0,
  QueueDeviceHigh: 0x0a4,
  ConfigGeneration: 0x0fc,
  Config: 0x100,
} as const;

export const Status = {
  Acknowledge: 1,
  Driver: 2,
  DriverOk: 4,
  FeaturesOk: 8,
  DeviceNeedsReset: 0x40,
  Failed: 0x80,
} as const;

export const INT_USED_BUFFER = 1;
export const INT_CONFIG_CHANGE = 2;

interface QueueState {
  num: number;
  ready: boolean;
  desc: number;
  driver: number;
  device: number;
  queue: VirtQueue | null;
}

/** What VirtioMmio.save() returns. */
export interface VirtioMmioState {
  deviceId: number;
  /** The features the driver acknowledged, in hex. */
  driverFeatures: string;
  deviceFeaturesSel: number; driverFeaturesSel: number; queueSel: number;
  status: number; interruptStatus: number; configGeneration: number;
  queues: { num: number; ready: boolean; desc: number; driver: number; device: number; indices: QueueIndices | null }[];
  device: unknown;
}

const TRANSPORT_FEATURES = (1n << BigInt(VIRTIO_F_VERSION_1)) | (1n << BigInt(VIRTIO_F_RING_INDIRECT_DESC)) | (1n << BigInt(VIRTIO_F_RING_EVENT_IDX));

const setLow = (v: number, low: number): number => Math.floor(v / 2 ** 32) * 2 ** 32 + (low >>> 0);
const setHigh = (v: number, high: number): number => (high >>> 0) * 2 ** 32 + (v % 2 ** 32);

export class VirtioMmio implements MmioDevice, VirtioTransport {
  readonly name: string;
  readonly size = 0x1000;
  readonly deviceFeatures: bigint;
  private driverFeatures = 0n;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private queueSel = 0;
  private status = 0;
  private interruptStatus = 0;
  private configGeneration = 0;
  private readonly queues: QueueState[] = [];

  constructor(private readonly memory: GuestMemory, readonly device: VirtioDevice, private readonly irq: IrqLine, private readonly log: (line: string) => void = (l) => console.error(l)) {
    this.name = device.name;
    this.deviceFeatures = device.features | TRANSPORT_FEATURES;
    if (device.queueMaxSize < 1 || device.queueMaxSize > MAX_QUEUE_SIZE) throw new RangeError(`${device.name}: queue size ${device.queueMaxSize}`);
    for (let i = 0; i < device.queueCount; i++) this.queues.push(this.freshQueue());
    device.attach?.(this);
  }

  private freshQueue(): QueueState {
    return { num: this.device.queueMaxSize, ready: false, desc: 0, driver: 0, device: 0, queue: null };
  }

  /**
   * Registers, negotiated features, queue setup with the device's ring indices, and the
   * device's own state, for a snapshot. Requests complete inside notify, so when the VM is
   * paused no request is in flight: everything else is in guest memory.
   */
  save(): VirtioMmioState {
    return {
      deviceId: this.device.deviceId,
      driverFeatures: this.driverFeatures.toString(16),
      deviceFeaturesSel: this.deviceFeaturesSel, driverFeaturesSel: this.driverFeaturesSel, queueSel: this.queueSel,
      status: this.status, interruptStatus: this.interruptStatus, configGeneration: this.configGeneration,
      queues: this.queues.map((q) => ({ num: q.num, ready: q.ready, desc: q.desc, driver: q.driver, device: q.device, indices: q.queue?.save() ?? null })),
      device: this.device.save?.() ?? null,
    };
  }

  /** Restores save()'s state; the ring addresses go through VirtQueue's checks again. */
  restore(saved: unknown): void {
    const s = savedObject(this.name, saved);
    const u32 = (k: string): number => savedInt(`${this.name}.${k}`, s[k], 0, 0xffff_ffff);
    if (s.deviceId !== this.device.deviceId) throw new SnapshotStateError(`${this.name}: the snapshot has virtio device type ${String(s.deviceId)} in this slot, the VM has ${this.device.deviceId}`);
    if (typeof s.driverFeatures !== 'string' || !/^[0-9a-f]{1,16}$/.test(s.driverFeatures)) throw new SnapshotStateError(`${this.name}.driverFeatures: ${String(s.driverFeatures)} is not a hex feature mask`);
    const queues = s.queues;
    if (!Array.isArray(queues) || queues.length !== this.queues.length) throw new SnapshotStateError(`${this.name}: expected ${this.queues.length} queues`);
    this.driverFeatures = BigInt(`0x${s.driverFeatures}`);
    this.deviceFeaturesSel = u32('deviceFeaturesSel');
    this.driverFeaturesSel = u32('driverFeaturesSel');
    this.queueSel = u32('queueSel');
    this.status = savedInt(`${this.name}.status`, s.status, 0, 0xff);
    this.interruptStatus = savedInt(`${this.name}.interruptStatus`, s.interruptStatus, 0, INT_USED_BUFFER | INT_CONFIG_CHANGE);
    this.configGeneration = u32('configGeneration');
    queues.forEach((saved: unknown, i) => {
      const what = `${this.name} queue ${i}`;
      const qs = savedObject(what, saved);
      const addr = (k: string): number => savedInt(`${what}.${k}`, qs[k], 0, Number.MAX_SAFE_INTEGER);
      const q: QueueState = { num: savedInt(`${what}.num`, qs.num, 0, 0xffff_ffff), ready: false, desc: addr('desc'), driver: addr('driver'), device: addr('device'), queue: null };
      this.queues[i] = q;
      if (!savedBool(`${what}.ready`, qs.ready)) return;
      try {
        q.queue = new VirtQueue(this.memory, { size: q.num, desc: q.desc, avail: q.driver, used: q.device }, {
          indirect: this.hasFeature(VIRTIO_F_RING_INDIRECT_DESC),
          eventIdx: this.hasFeature(VIRTIO_F_RING_EVENT_IDX),
        }, `queue ${i}`);
      } catch (e) {
        if (e instanceof VirtioError) throw new SnapshotStateError(`${this.name}: ${e.message}`);
        throw e;
      }
      q.queue.restore(qs.indices);
      q.ready = true;
    });
    if (this.device.restore) this.device.restore(s.device);
    this.updateIrq();
  }

  get currentStatus(): number { return this.status; }
  get negotiatedFeatures(): bigint { return this.driverFeatures; }

  private get selected(): QueueState | undefined { return this.queues[this.queueSel]; }

  read(offset: number, width: AccessWidth): number {
    if (offset >= Reg.Config) return this.device.configRead(offset - Reg.Config, width) >>> 0;
    if (width !== 4 || offset % 4 !== 0) return 0; // registers are 32-bit only (§4.2.2.2)
    const q = this.selected;
    switch (offset) {
      case Reg.MagicValue: return VIRTIO_MMIO_MAGIC;
      case Reg.Version: return VIRTIO_MMIO_VERSION;
      case Reg.DeviceID: return this.device.deviceId;
      case Reg.VendorID: return VESSEL_VENDOR_ID;
      case Reg.DeviceFeatures:
        return this.deviceFeaturesSel > 1 ? 0 : Number((this.deviceFeatures >> BigInt(32 * this.deviceFeaturesSel)) & 0xffff_ffffn);
      case Reg.QueueNumMax: return q ? this.device.queueMaxSize : 0;
      case Reg.QueueReady: return q?.ready ? 1 : 0;
      case Reg.InterruptStatus: return this.interruptStatus;
      case Reg.Status: return this.status;
      case Reg.ConfigGeneration: return this.configGeneration;
      default: return 0;
    }
  }

  write(offset: number, width: AccessWidth, value: number): void {
    if (offset >= Reg.Config) {
      this.device.configWrite(offset - Reg.Config, width, value);
      return;
    }
    if (width !== 4 || offset % 4 !== 0) return;
    value >>>= 0;
    const q = this.selected;
    switch (offset) {
      case Reg.DeviceFeaturesSel: this.deviceFeaturesSel = value; break;
      case Reg.DriverFeaturesSel: this.driverFeaturesSel = value; break;
      case Reg.DriverFeatures:
        if (this.driverFeaturesSel <= 1 && !(this.status & Status.FeaturesOk)) {
          const shift = BigInt(32 * this.driverFeaturesSel);
          this.driverFeatures = (this.driverFeatures & ~(0xffff_ffffn << shift)) | (BigInt(value) << shift);
        }
        break;
      case Reg.QueueSel: this.queueSel = value; break;
      case Reg.QueueNum: if (q && !q.ready) q.num = value; break;
      case Reg.QueueDescLow: if (q && !q.ready) q.desc = setLow(q.desc, value); break;
      case Reg.QueueDescHigh: if (q && !q.ready) q.desc = setHigh(q.desc, value); break;
      case Reg.QueueDriverLow: if (q && !q.ready) q.driver = setLow(q.driver, value); break;
      case Reg.QueueDriverHigh: if (q && !q.ready) q.driver = setHigh(q.driver, value); break;
      case Reg.QueueDeviceLow: if (q && !q.ready) q.device = setLow(q.device, value); break;
      case Reg.QueueDeviceHigh: if (q && !q.ready) q.device = setHigh(q.device, value); break;
      case Reg.QueueReady: if (q) this.setQueueReady(this.queueSel, q, value & 1); break;
      case Reg.QueueNotify: this.queueNotify(value & 0xffff); break;
      case Reg.InterruptACK:
        this.interruptStatus &= ~value;
        this.updateIrq();
        break;
      case Reg.Status: this.writeStatus(value & 0xff); break;
      default: break;
    }
  }

  private writeStatus(value: number): void {
    if (value === 0) {
      this.reset();
      return;
    }
    // FEATURES_OK sticks only for a subset of the offered features that includes VERSION_1.
    if ((value & Status.FeaturesOk) && !(this.status & Status.FeaturesOk)) {
      const extra = this.driverFeatures & ~this.deviceFeatures;
      const modern = (this.driverFeatures >> BigInt(VIRTIO_F_VERSION_1)) & 1n;
      if (extra !== 0n || !modern) value &= ~Status.FeaturesOk;
    }
    this.status = (value & ~Status.DeviceNeedsReset) | (this.status & Status.DeviceNeedsReset);
  }

  private reset(): void {
    this.status = 0;
    this.driverFeatures = 0n;
    this.deviceFeaturesSel = 0;
    this.driverFeaturesSel = 0;
    this.queueSel = 0;
    this.interruptStatus = 0;
    for (let i = 0; i < this.queues.length; i++) this.queues[i] = this.freshQueue();
    this.device.reset();
    this.updateIrq();
  }

  private hasFeature(bit: number): boolean {
    return ((this.driverFeatures >> BigInt(bit)) & 1n) === 1n;
  }

  private setQueueReady(index: number, q: QueueState, ready: number): void {
    if (!ready) {
      q.ready = false;
      q.queue = null;
      return;
    }
    if (q.ready) return;
    if (q.num > this.device.queueMaxSize) {
      this.fail(`queue ${index}: QueueNum ${q.num} exceeds QueueNumMax ${this.device.queueMaxSize}`);
      return;
    }
    try {
      q.queue = new VirtQueue(this.memory, { size: q.num, desc: q.desc, avail: q.driver, used: q.device }, {
        indirect: this.hasFeature(VIRTIO_F_RING_INDIRECT_DESC),
        eventIdx: this.hasFeature(VIRTIO_F_RING_EVENT_IDX),
      }, `queue ${index}`);
      q.ready = true;
    } catch (e) {
      if (e instanceof VirtioError) this.fail(e.message);
      else throw e;
    }
  }

  kick(queueIndex: number): void {
    this.queueNotify(queueIndex);
  }

  private queueNotify(index: number): void {
    if (this.status & Status.DeviceNeedsReset) return;
    if (!(this.status & Status.DriverOk)) return;
    const q = this.queues[index];
    if (!q?.queue) return;
    try {
      this.device.notify(index, q.queue, this);
      this.usedBuffers(index);
    } catch (e) {
      if (e instanceof VirtioError || e instanceof GuestMemoryError) this.fail(e.message);
      else throw e;
    }
  }

  /** The guest broke the virtio contract: one log line, DEVICE_NEEDS_RESET and a config interrupt. */
  fail(message: string): void {
    if (this.status & Status.DeviceNeedsReset) return;
    this.log(`${this.name}: ${message}; device needs reset`);
    this.status |= Status.DeviceNeedsReset;
    for (const q of this.queues) { q.ready = false; q.queue = null; }
    this.configChanged();
  }

  configChanged(): void {
    this.configGeneration = (this.configGeneration + 1) >>> 0;
    if (!(this.status & Status.DriverOk)) return;
    this.interruptStatus |= INT_CONFIG_CHANGE;
    this.updateIrq();
  }

  usedBuffers(queueIndex: number): void {
    const q = this.queues[queueIndex]?.queue;
    if (!q || !q.needsInterrupt()) return;
    this.interruptStatus |= INT_USED_BUFFER;
    this.updateIrq();
  }

  private updateIrq(): void {
    this.irq.set(this.interruptStatus !== 0);
  }
}
