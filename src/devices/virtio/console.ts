/**
 * virtio-console (virtio 1.2 §5.3) with a single port and no MULTIPORT: queue 0 is port 0's
 * receiveq (host → guest), queue 1 its transmitq (guest → host). Linux makes it `/dev/hvc0`.
 *
 * Transmit: the readable buffers of each chain the driver posts on the transmitq go to the host
 * sink as they arrive. Receive: host input is queued (never dropped, also across a device reset)
 * and copied into the writable buffers the driver posts on the receiveq, both when the driver
 * notifies queue 0 and when new input arrives (through the transport's `kick`).
 */
import type { AccessWidth } from '../mmio.js';
import { decodeBytes, encodeBytes, savedInt, savedObject } from '../../hw/snapshot-state.js';
import type { VirtioDevice, VirtioTransport } from './mmio.js';
import type { VirtQueue } from './queue.js';

export const VIRTIO_ID_CONSOLE = 3;

export const ConsoleFeature = { SIZE: 0, MULTIPORT: 1, EMERG_WRITE: 2 } as const;

export const RECEIVEQ = 0;
export const TRANSMITQ = 1;

/** struct virtio_console_config: cols u16, rows u16, max_nr_ports u32, emerg_wr u32. */
const CONFIG_SIZE = 12;
const QUEUE_SIZE = 64;

export interface ConsoleOptions {
  /** Guest output (bytes the guest wrote to hvc0). */
  output: (data: Uint8Array) => void;
  /** Console size offered with VIRTIO_CONSOLE_F_SIZE. */
  cols?: number;
  rows?: number;
  name?: string;
}

/** What VirtioConsole.save() returns. */
export interface ConsoleState { cols: number; rows: number; input: string }

export class VirtioConsole implements VirtioDevice {
  readonly name: string;
  readonly deviceId = VIRTIO_ID_CONSOLE;
  readonly features = 1n << BigInt(ConsoleFeature.SIZE);
  readonly queueCount = 2;
  readonly queueMaxSize = QUEUE_SIZE;
  private cols: number;
  private rows: number;
  private readonly output: (data: Uint8Array) => void;
  private transport: VirtioTransport | null = null;
  /** Host input not yet handed to the guest; `inputOffset` bytes of the first chunk are already sent. */
  private input: Uint8Array[] = [];
  private inputOffset = 0;
  private inputBytes = 0;

  constructor(opts: ConsoleOptions) {
    this.output = opts.output;
    this.cols = opts.cols ?? 80;
    this.rows = opts.rows ?? 24;
    this.name = opts.name ?? 'virtio-console';
  }

  attach(transport: VirtioTransport): void { this.transport = transport; }

  /** Bytes of host input waiting for receive buffers. */
  get pendingInput(): number { return this.inputBytes; }

  /** The console size and host input not yet delivered, for a snapshot. */
  save(): ConsoleState {
    const pending = Buffer.concat(this.input).subarray(this.inputOffset);
    return { cols: this.cols, rows: this.rows, input: encodeBytes(pending) };
  }

  restore(saved: unknown): void {
    const s = savedObject(this.name, saved);
    this.cols = savedInt(`${this.name}.cols`, s.cols, 0, 0xffff);
    this.rows = savedInt(`${this.name}.rows`, s.rows, 0, 0xffff);
    const input = decodeBytes(`${this.name}.input`, s.input);
    this.input = input.length > 0 ? [input] : [];
    this.inputOffset = 0;
    this.inputBytes = input.length;
  }

  /** Queues host input for the guest and delivers what fits into posted receive buffers now. */
  sendInput(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.input.push(Uint8Array.from(bytes));
    this.inputBytes += bytes.length;
    this.transport?.kick?.(RECEIVEQ);
  }

  /** Changes the size reported in the configuration space and tells the driver. */
  resize(cols: number, rows: number): void {
    this.cols = cols & 0xffff;
    this.rows = rows & 0xffff;
    this.transport?.configChanged();
  }

  configRead(offset: number, width: AccessWidth): number {
    if (offset < 0 || offset + width > CONFIG_SIZE) return 0;
    const c = new DataView(new ArrayBuffer(CONFIG_SIZE));
    c.setUint16(0, this.cols, true);
    c.setUint16(2, this.rows, true);
    c.setUint32(4, 1, true); // max_nr_ports (meaningful only with MULTIPORT)
    c.setUint32(8, 0, true); // emerg_wr (write-only, without EMERG_WRITE)
    return width === 1 ? c.getUint8(offset) : width === 2 ? c.getUint16(offset, true) : c.getUint32(offset, true);
  }

  configWrite(): void { /* emerg_wr is not offered */ }

  reset(): void { /* pending input stays queued for the next driver */ }

  notify(queueIndex: number, queue: VirtQueue, transport: VirtioTransport): void {
    this.transport = transport;
    if (queueIndex === TRANSMITQ) this.transmit(queue);
    else if (queueIndex === RECEIVEQ) this.receive(queue);
  }

  private transmit(queue: VirtQueue): void {
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      const data = queue.readAll(chain);
      queue.push(chain.head, 0);
      if (data.length > 0) this.output(data);
    }
  }

  private receive(queue: VirtQueue): void {
    while (this.inputBytes > 0 && queue.pending() > 0) {
      const chain = queue.pop();
      if (!chain) break;
      let written = 0;
      while (this.input.length > 0) {
        const chunk = this.input[0].subarray(this.inputOffset);
        const n = queue.writeAt(chain, written, chunk);
        written += n;
        this.inputBytes -= n;
        if (n < chunk.length) {
          this.inputOffset += n;
          break; // the chain is full
        }
        this.input.shift();
        this.inputOffset = 0;
      }
      queue.push(chain.head, written);
    }
  }
}
