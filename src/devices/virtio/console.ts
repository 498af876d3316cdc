/**
 * virtio-console (virtio 1.2 §5.3). Port 0 is the guest's console (`/dev/hvc0`): queue 0 its
 * receiveq (host → guest), queue 1 its transmitq (guest → host).
 *
 * Named ports (`ports`, e.g. QEMU's guest agent channel `org.qemu.guest_agent.0`) make the device
 * offer VIRTIO_CONSOLE_F_MULTIPORT with max_nr_ports = 1 + their number. When the driver takes it,
 * queues 2 and 3 are the control receiveq and transmitq (c_ivq, c_ovq) and port n ≥ 1 has queues
 * 2n+2 (receive) and 2n+3 (transmit). Control messages are `struct virtio_console_control
 * {le32 id; le16 event; le16 value}`, one per buffer, and Linux's driver
 * (drivers/char/virtio_console.c) expects this conversation:
 *
 *     driver: DEVICE_READY 1            device: DEVICE_ADD id 1 for every port
 *     driver: PORT_READY id 1           device: CONSOLE_PORT 1 (port 0) or PORT_NAME + name bytes,
 *                                               then PORT_OPEN 1 (the host side is connected)
 *     driver: PORT_OPEN id 1 / 0        the guest opened / closed /dev/vportNpM (port 0: hvc0 is up)
 *
 * The host side of a named port is always "connected" for the guest (the VMM buffers what the
 * guest writes); the guest's open and close reach the host through `onOpen`. Bytes for a named
 * port wait until the guest has it open (Linux drops data that reaches a closed port), up to
 * PORT_INPUT_LIMIT. Without MULTIPORT negotiated (or without named ports) the device is the
 * single-port console it always was, and the named ports stay silent.
 *
 * Transmit: the readable buffers of each chain the driver posts go to the port's sink as they
 * arrive. Receive: host input is queued (port 0: never dropped, also across a device reset) and
 * copied into the writable buffers the driver posts, both when the driver notifies the queue and
 * when new input arrives (through the transport's `kick`). Every id, queue index and length from
 * the guest is checked; a message that does not fit is ignored.
 */
import type { AccessWidth } from '../mmio.js';
import { decodeBytes, encodeBytes, savedInt, savedObject } from '../../hw/snapshot-state.js';
import type { VirtioDevice, VirtioTransport } from './mmio.js';
import type { VirtQueue } from './queue.js';

export const VIRTIO_ID_CONSOLE = 3;

export const ConsoleFeature = { SIZE: 0, MULTIPORT: 1, EMERG_WRITE: 2 } as const;

export const RECEIVEQ = 0;
export const TRANSMITQ = 1;
/** With MULTIPORT: the control queues. */
export const CONTROL_RECEIVEQ = 2;
export const CONTROL_TRANSMITQ = 3;

/** The control events (virtio 1.2 §5.3.6.2). */
export const ConsoleControl = {
  DEVICE_READY: 0, DEVICE_ADD: 1, DEVICE_REMOVE: 2, PORT_READY: 3, CONSOLE_PORT: 4, RESIZE: 5, PORT_OPEN: 6, PORT_NAME: 7,
} as const;

/** The receiveq of port `port` (transmitq is one more). */
export function portReceiveQueue(port: number): number {
  return port === 0 ? RECEIVEQ : 2 * port + 2;
}

/** struct virtio_console_config: cols u16, rows u16, max_nr_ports u32, emerg_wr u32. */
const CONFIG_SIZE = 12;
const QUEUE_SIZE = 64;
const CONTROL_SIZE = 8;
/** Bytes for a named port kept while the guest has it closed; more is dropped. */
export const PORT_INPUT_LIMIT = 1024 * 1024;
/** Ports beyond the console: the board's use is one or two; the spec allows 2^32. */
const MAX_NAMED_PORTS = 30;

export interface ConsolePortOptions {
  /** The name the guest reads in /sys/class/virtio-ports/vportNpM/name. */
  name: string;
  /** What the guest writes to the port. */
  output: (data: Uint8Array) => void;
  /** The guest opened (true) or closed (false) its end of the port. */
  onOpen?: (open: boolean) => void;
}

export interface ConsoleOptions {
  /** Guest output (bytes the guest wrote to hvc0). */
  output: (data: Uint8Array) => void;
  /** Console size offered with VIRTIO_CONSOLE_F_SIZE. */
  cols?: number;
  rows?: number;
  name?: string;
  /** Named ports 1, 2, ...: with any, the device offers MULTIPORT. */
  ports?: ConsolePortOptions[];
}

/** What VirtioConsole.save() returns (`ports` only with named ports). */
export interface ConsoleState { cols: number; rows: number; input: string; ports?: { open: boolean; input: string }[]; control?: string[] }

/** Host bytes for one port not yet in the guest's buffers; `offset` bytes of the first chunk are sent. */
class PendingInput {
  chunks: Uint8Array[] = [];
  offset = 0;
  bytes = 0;

  push(bytes: Uint8Array): void {
    this.chunks.push(Uint8Array.from(bytes));
    this.bytes += bytes.length;
  }

  take(): Uint8Array {
    const all = Buffer.concat(this.chunks).subarray(this.offset);
    return new Uint8Array(all.buffer, all.byteOffset, all.length);
  }

  set(bytes: Uint8Array): void {
    this.chunks = bytes.length > 0 ? [bytes] : [];
    this.offset = 0;
    this.bytes = bytes.length;
  }

  /** Fills the receive chains the driver posted on `queue` while input lasts. */
  deliver(queue: VirtQueue): void {
    while (this.bytes > 0 && queue.pending() > 0) {
      const chain = queue.pop();
      if (!chain) break;
      let written = 0;
      while (this.chunks.length > 0) {
        const chunk = this.chunks[0].subarray(this.offset);
        const n = queue.writeAt(chain, written, chunk);
        written += n;
        this.bytes -= n;
        if (n < chunk.length) {
          this.offset += n;
          break; // the chain is full
        }
        this.chunks.shift();
        this.offset = 0;
      }
      queue.push(chain.head, written);
    }
  }
}

interface NamedPort {
  readonly opts: ConsolePortOptions;
  readonly input: PendingInput;
  /** The guest has /dev/vportNpM open. */
  open: boolean;
}

export class VirtioConsole implements VirtioDevice {
  readonly name: string;
  readonly deviceId = VIRTIO_ID_CONSOLE;
  readonly features: bigint;
  readonly queueCount: number;
  readonly queueMaxSize = QUEUE_SIZE;
  private cols: number;
  private rows: number;
  private readonly output: (data: Uint8Array) => void;
  private transport: VirtioTransport | null = null;
  /** Port 0's host input (never dropped). */
  private readonly input = new PendingInput();
  /** Ports 1..n. */
  private readonly ports: NamedPort[];
  /** Control messages for the driver, one per buffer, in order. */
  private control: Uint8Array[] = [];
  /** The driver said DEVICE_READY (multiport is in use) since the last reset. */
  private multiportUp = false;
  /** Port 0 is the guest's console (CONSOLE_PORT sent), so RESIZE goes as a control message. */
  private consoleUp = false;
  /** With MULTIPORT, the guest's hvc0 is connected (its PORT_OPEN for port 0): Linux drops port 0 data before. */
  private consoleOpen = false;

  constructor(opts: ConsoleOptions) {
    this.output = opts.output;
    this.cols = opts.cols ?? 80;
    this.rows = opts.rows ?? 24;
    this.name = opts.name ?? 'virtio-console';
    const ports = opts.ports ?? [];
    if (ports.length > MAX_NAMED_PORTS) throw new RangeError(`${this.name}: at most ${MAX_NAMED_PORTS} named ports, got ${ports.length}`);
    for (const p of ports) {
      if (p.name === '' || Buffer.byteLength(p.name) > 255 || p.name.includes('\0') || p.name.includes('/')) throw new RangeError(`${this.name}: port name "${p.name}" must be 1-255 bytes without "/" or NUL`);
    }
    this.ports = ports.map((p) => ({ opts: p, input: new PendingInput(), open: false }));
    const multiport = this.ports.length > 0;
    this.features = (1n << BigInt(ConsoleFeature.SIZE)) | (multiport ? 1n << BigInt(ConsoleFeature.MULTIPORT) : 0n);
    this.queueCount = multiport ? 2 * (this.ports.length + 2) : 2;
  }

  attach(transport: VirtioTransport): void { this.transport = transport; }

  /** Bytes of host input for port 0 waiting for receive buffers. */
  get pendingInput(): number { return this.input.bytes; }

  /** The number of ports (console included) the configuration space announces. */
  get maxPorts(): number { return 1 + this.ports.length; }

  private get multiport(): boolean {
    if (this.ports.length === 0) return false;
    const f = this.transport?.negotiatedFeatures;
    return f === undefined || (f & (1n << BigInt(ConsoleFeature.MULTIPORT))) !== 0n;
  }

  /** Whether the guest has named port `index` (1-based, as its id) open. */
  portOpen(index: number): boolean { return this.ports[index - 1]?.open ?? false; }

  /** The console size and host input not yet delivered, for a snapshot. */
  save(): ConsoleState {
    const s: ConsoleState = { cols: this.cols, rows: this.rows, input: encodeBytes(this.input.take()) };
    if (this.ports.length > 0) {
      s.ports = this.ports.map((p) => ({ open: p.open, input: encodeBytes(p.input.take()) }));
      s.control = this.control.map((m) => encodeBytes(m));
    }
    return s;
  }

  restore(saved: unknown): void {
    const s = savedObject(this.name, saved);
    this.cols = savedInt(`${this.name}.cols`, s.cols, 0, 0xffff);
    this.rows = savedInt(`${this.name}.rows`, s.rows, 0, 0xffff);
    this.input.set(decodeBytes(`${this.name}.input`, s.input));
    const ports = Array.isArray(s.ports) ? s.ports : [];
    this.ports.forEach((p, i) => {
      const ps = ports[i] === undefined ? { open: false, input: '' } : savedObject(`${this.name}.ports[${i}]`, ports[i]);
      p.open = ps.open === true;
      p.input.set(ps.input === '' ? new Uint8Array(0) : decodeBytes(`${this.name}.ports[${i}].input`, ps.input));
    });
    this.control = (Array.isArray(s.control) ? s.control : []).map((m, i) => decodeBytes(`${this.name}.control[${i}]`, m));
    // A restored guest is past DEVICE_READY when it had the ports up.
    this.multiportUp = this.ports.length > 0;
    this.consoleUp = this.multiportUp;
    this.consoleOpen = this.multiportUp;
  }

  /** Queues host input for the guest's console (port 0) and delivers what fits into posted receive buffers now. */
  sendInput(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.input.push(bytes);
    this.transport?.kick?.(RECEIVEQ);
  }

  /**
   * Host bytes for named port `index` (1-based). They wait while the guest has the port closed
   * (at most PORT_INPUT_LIMIT bytes; false when some were dropped).
   */
  sendPortInput(index: number, bytes: Uint8Array): boolean {
    const p = this.ports[index - 1];
    if (!p) throw new RangeError(`${this.name}: no port ${index}`);
    if (bytes.length === 0) return true;
    const room = PORT_INPUT_LIMIT - p.input.bytes;
    if (room <= 0) return false;
    p.input.push(bytes.length > room ? bytes.subarray(0, room) : bytes);
    if (p.open) this.transport?.kick?.(portReceiveQueue(index));
    return bytes.length <= room;
  }

  /** Changes the console size and tells the driver (config interrupt, or a RESIZE message with MULTIPORT). */
  resize(cols: number, rows: number): void {
    this.cols = cols & 0xffff;
    this.rows = rows & 0xffff;
    if (this.consoleUp && this.multiport) {
      const size = new Uint8Array(4);
      const v = new DataView(size.buffer);
      v.setUint16(0, this.rows, true);
      v.setUint16(2, this.cols, true);
      this.sendControl(0, ConsoleControl.RESIZE, 0, size);
    }
    this.transport?.configChanged();
  }

  configRead(offset: number, width: AccessWidth): number {
    if (offset < 0 || offset + width > CONFIG_SIZE) return 0;
    const c = new DataView(new ArrayBuffer(CONFIG_SIZE));
    c.setUint16(0, this.cols, true);
    c.setUint16(2, this.rows, true);
    c.setUint32(4, this.maxPorts, true); // max_nr_ports (meaningful only with MULTIPORT)
    c.setUint32(8, 0, true); // emerg_wr (write-only, without EMERG_WRITE)
    return width === 1 ? c.getUint8(offset) : width === 2 ? c.getUint16(offset, true) : c.getUint32(offset, true);
  }

  configWrite(): void { /* emerg_wr is not offered */ }

  /** Port 0's pending input stays queued for the next driver; the named ports' guest ends are closed. */
  reset(): void {
    this.control = [];
    this.multiportUp = false;
    this.consoleUp = false;
    this.consoleOpen = false;
    for (const p of this.ports) {
      p.input.set(new Uint8Array(0));
      this.setOpen(p, false);
    }
  }

  notify(queueIndex: number, queue: VirtQueue, transport: VirtioTransport): void {
    this.transport = transport;
    if (queueIndex === TRANSMITQ) this.transmit(queue, this.output);
    else if (queueIndex === RECEIVEQ) { if (this.consoleOpen || !this.multiport) this.input.deliver(queue); }
    else if (!this.multiport) return;
    else if (queueIndex === CONTROL_RECEIVEQ) this.deliverControl(queue);
    else if (queueIndex === CONTROL_TRANSMITQ) this.receiveControl(queue);
    else {
      const port = this.ports[(queueIndex >> 1) - 2];
      if (!port) return;
      if (queueIndex & 1) this.transmit(queue, port.opts.output);
      else if (port.open) port.input.deliver(queue);
    }
  }

  private transmit(queue: VirtQueue, sink: (data: Uint8Array) => void): void {
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      const data = queue.readAll(chain);
      queue.push(chain.head, 0);
      if (data.length > 0) sink(data);
    }
  }

  private sendControl(id: number, event: number, value: number, extra?: Uint8Array): void {
    const msg = new Uint8Array(CONTROL_SIZE + (extra?.length ?? 0));
    const v = new DataView(msg.buffer);
    v.setUint32(0, id, true);
    v.setUint16(4, event, true);
    v.setUint16(6, value, true);
    if (extra) msg.set(extra, CONTROL_SIZE);
    this.control.push(msg);
    this.transport?.kick?.(CONTROL_RECEIVEQ);
  }

  /** One control message per posted buffer chain (a chain too short gets what fits). */
  private deliverControl(queue: VirtQueue): void {
    while (this.control.length > 0 && queue.pending() > 0) {
      const chain = queue.pop();
      if (!chain) break;
      const msg = this.control.shift() as Uint8Array;
      queue.push(chain.head, queue.writeAt(chain, 0, msg));
    }
  }

  private receiveControl(queue: VirtQueue): void {
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      const msg = queue.readAll(chain, CONTROL_SIZE);
      queue.push(chain.head, 0);
      if (msg.length < CONTROL_SIZE) continue; // too short to be a message: ignored
      const v = new DataView(msg.buffer, msg.byteOffset, msg.length);
      this.handleControl(v.getUint32(0, true), v.getUint16(4, true), v.getUint16(6, true));
    }
  }

  private handleControl(id: number, event: number, value: number): void {
    switch (event) {
      case ConsoleControl.DEVICE_READY:
        if (value !== 1 || this.multiportUp) return;
        this.multiportUp = true;
        for (let port = 0; port < this.maxPorts; port++) this.sendControl(port, ConsoleControl.DEVICE_ADD, 1);
        return;
      case ConsoleControl.PORT_READY: {
        if (value !== 1 || id >= this.maxPorts) return;
        if (id === 0) {
          this.consoleUp = true;
          this.sendControl(0, ConsoleControl.CONSOLE_PORT, 1);
        } else {
          this.sendControl(id, ConsoleControl.PORT_NAME, 1, new TextEncoder().encode(this.ports[id - 1].opts.name));
        }
        this.sendControl(id, ConsoleControl.PORT_OPEN, 1);
        return;
      }
      case ConsoleControl.PORT_OPEN: {
        if (id >= this.maxPorts) return;
        if (id === 0) {
          this.consoleOpen = value !== 0;
          if (this.consoleOpen && this.input.bytes > 0) this.transport?.kick?.(RECEIVEQ);
          return;
        }
        const port = this.ports[id - 1];
        this.setOpen(port, value !== 0);
        if (port.open && port.input.bytes > 0) this.transport?.kick?.(portReceiveQueue(id));
        return;
      }
      default:
        return; // events only a device sends, or unknown ones: ignored
    }
  }

  private setOpen(port: NamedPort, open: boolean): void {
    if (port.open === open) return;
    port.open = open;
    port.opts.onOpen?.(open);
  }
}
