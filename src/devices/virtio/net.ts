/**
 * virtio-net (virtio 1.2 §5.1), one queue pair: queue 0 is the receiveq (host → guest), queue 1
 * the transmitq (guest → host). The frames go to and come from a `NetBackend` (a TAP device or
 * the user-mode stack); the device does not know which.
 *
 * Offered: VIRTIO_NET_F_MAC, F_STATUS (the link is always up) and F_MTU (1500). Not offered, so
 * the driver computes every checksum and segments every packet itself: the checksum and TSO/UFO
 * offloads, mergeable receive buffers, multiqueue and the control queue. With VERSION_1 each
 * buffer starts with the 12-byte `virtio_net_hdr` (num_buffers included); without offloads the
 * device writes it zeroed with num_buffers = 1 and expects the driver's to ask for nothing.
 *
 * Receive works like a real NIC's FIFO: frames from the backend wait, at most
 * `RX_QUEUE_FRAMES` of them, until the driver posts buffers; beyond that they are dropped and
 * counted. A malformed request (a transmit chain with device-writable buffers, a frame too
 * short or too long, a receive buffer too small for the frame) fails that request alone: the
 * chain is returned with nothing written, the frame dropped, the drop counted and one line
 * logged. Broken rings (loops, addresses outside RAM, ...) are `VirtioError`s from the queue,
 * which the transport turns into DEVICE_NEEDS_RESET.
 */
import type { AccessWidth } from '../mmio.js';
import { MAX_ETHERNET_FRAME, type NetBackend } from '../../net/backend.js';
import { MAC_LENGTH } from '../../net/mac.js';
import { decodeBytes, encodeBytes, savedObject, SnapshotStateError } from '../../hw/snapshot-state.js';
import type { VirtioDevice, VirtioTransport } from './mmio.js';
import type { DescriptorChain, VirtQueue } from './queue.js';

export const VIRTIO_ID_NET = 1;

export const NetFeature = { CSUM: 0, GUEST_CSUM: 1, MTU: 3, MAC: 5, MRG_RXBUF: 15, STATUS: 16, CTRL_VQ: 17, MQ: 22 } as const;

export const RECEIVEQ = 0;
export const TRANSMITQ = 1;

/** struct virtio_net_hdr with num_buffers (VERSION_1 always has it): 12 bytes. */
export const NET_HDR_SIZE = 12;
export const NetHdr = { flags: 0, gsoType: 1, hdrLen: 2, gsoSize: 4, csumStart: 6, csumOffset: 8, numBuffers: 10 } as const;
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_GSO_NONE = 0;

/** virtio_net_config: mac[6], status le16, max_virtqueue_pairs le16, mtu le16. */
export const NetConfig = { mac: 0, status: 6, maxVirtqueuePairs: 8, mtu: 10 } as const;
const CONFIG_SIZE = 12;
export const VIRTIO_NET_S_LINK_UP = 1;

export const ETHERNET_HEADER = 14;
export const MTU = MAX_ETHERNET_FRAME - ETHERNET_HEADER;
/** Frames from the backend kept while the driver has no receive buffer posted. */
export const RX_QUEUE_FRAMES = 256;
const QUEUE_SIZE = 256;
/** Malformed requests logged one line each; after that they are only counted. */
const LOGGED_PROBLEMS = 16;

export interface NetOptions {
  backend: NetBackend;
  mac: Uint8Array;
  name?: string;
  /** Called after a frame for the guest arrived, so a machine whose harts sleep in WFI wakes up. */
  onActivity?: () => void;
  log?: (line: string) => void;
}

/** Packet counters, for metrics: bytes count Ethernet frames without the virtio-net header. */
export interface NetCounters {
  txPackets: number;
  txBytes: number;
  /** Transmit requests that were malformed or that the backend refused. */
  txDropped: number;
  rxPackets: number;
  rxBytes: number;
  /** Frames for the guest dropped: receive FIFO full, a frame of an impossible size, a buffer too small. */
  rxDropped: number;
}

/** What VirtioNet.save() returns (base64 bytes). */
export interface NetState { mac: string; rxFrames: string[] }

export class VirtioNet implements VirtioDevice {
  readonly name: string;
  readonly deviceId = VIRTIO_ID_NET;
  readonly features = (1n << BigInt(NetFeature.MAC)) | (1n << BigInt(NetFeature.STATUS)) | (1n << BigInt(NetFeature.MTU));
  readonly queueCount = 2;
  readonly queueMaxSize = QUEUE_SIZE;
  readonly mac: Uint8Array;
  private readonly backend: NetBackend;
  private readonly onActivity: () => void;
  private readonly log: (line: string) => void;
  private transport: VirtioTransport | null = null;
  private rxFifo: Uint8Array[] = [];
  private problems = 0;
  private readonly counters: NetCounters = { txPackets: 0, txBytes: 0, txDropped: 0, rxPackets: 0, rxBytes: 0, rxDropped: 0 };

  constructor(opts: NetOptions) {
    if (opts.mac.length !== MAC_LENGTH) throw new RangeError(`a MAC address has ${MAC_LENGTH} bytes, got ${opts.mac.length}`);
    this.mac = Uint8Array.from(opts.mac);
    this.name = opts.name ?? 'virtio-net';
    this.backend = opts.backend;
    this.onActivity = opts.onActivity ?? (() => {});
    this.log = opts.log ?? ((line) => console.error(line));
    this.backend.attach((frame) => this.receiveFrame(frame));
  }

  attach(transport: VirtioTransport): void { this.transport = transport; }

  /** A snapshot of the packet counters. */
  get stats(): Readonly<NetCounters> { return { ...this.counters }; }

  /** Frames waiting for receive buffers. */
  get pendingFrames(): number { return this.rxFifo.length; }

  /**
   * The MAC and the frames waiting for receive buffers, for a snapshot. The backend is not
   * part of it: the restored VM opens its own (same TAP name, or a fresh user network).
   */
  save(): NetState {
    return { mac: encodeBytes(this.mac), rxFrames: this.rxFifo.map(encodeBytes) };
  }

  restore(saved: unknown): void {
    const s = savedObject(this.name, saved);
    const mac = decodeBytes(`${this.name}.mac`, s.mac);
    if (mac.length !== MAC_LENGTH || mac.some((b, i) => b !== this.mac[i])) throw new SnapshotStateError(`${this.name}: the snapshot's MAC ${[...mac].map((b) => b.toString(16).padStart(2, '0')).join(':')} differs from this device's`);
    if (!Array.isArray(s.rxFrames) || s.rxFrames.length > RX_QUEUE_FRAMES) throw new SnapshotStateError(`${this.name}.rxFrames: not a list of at most ${RX_QUEUE_FRAMES} frames`);
    this.rxFifo = s.rxFrames.map((f: unknown, i) => {
      const frame = decodeBytes(`${this.name}.rxFrames[${i}]`, f);
      if (frame.length > MAX_ETHERNET_FRAME) throw new SnapshotStateError(`${this.name}.rxFrames[${i}]: ${frame.length} bytes exceed an Ethernet frame`);
      return frame;
    });
  }

  /** Closes the backend; no frames arrive after this. */
  close(): void { this.backend.close(); }

  configRead(offset: number, width: AccessWidth): number {
    if (offset < 0 || offset + width > CONFIG_SIZE) return 0;
    const c = new DataView(new ArrayBuffer(CONFIG_SIZE));
    this.mac.forEach((b, i) => c.setUint8(NetConfig.mac + i, b));
    c.setUint16(NetConfig.status, VIRTIO_NET_S_LINK_UP, true);
    c.setUint16(NetConfig.maxVirtqueuePairs, 1, true);
    c.setUint16(NetConfig.mtu, MTU, true);
    return width === 1 ? c.getUint8(offset) : width === 2 ? c.getUint16(offset, true) : c.getUint32(offset, true);
  }

  /** The configuration space is read-only for a VERSION_1 driver (the MAC changes only through the control queue, not offered). */
  configWrite(): void { /* ignored */ }

  /** Like a NIC reset, frames still waiting in the receive FIFO are discarded (and counted). */
  reset(): void {
    this.counters.rxDropped += this.rxFifo.length;
    this.rxFifo = [];
  }

  notify(queueIndex: number, queue: VirtQueue, transport: VirtioTransport): void {
    this.transport = transport;
    if (queueIndex === TRANSMITQ) this.transmit(queue);
    else if (queueIndex === RECEIVEQ) this.deliver(queue);
  }

  /** A frame from the backend: queued, then copied into a receive buffer as soon as there is one. */
  private receiveFrame(frame: Uint8Array): void {
    if (frame.length < ETHERNET_HEADER || frame.length > MAX_ETHERNET_FRAME) {
      this.counters.rxDropped++;
      this.problem(`dropped a ${frame.length}-byte frame from ${this.backend.name}: an Ethernet frame has ${ETHERNET_HEADER} to ${MAX_ETHERNET_FRAME} bytes`);
      return;
    }
    if (this.rxFifo.length >= RX_QUEUE_FRAMES) {
      this.counters.rxDropped++;
      return;
    }
    this.rxFifo.push(frame);
    this.transport?.kick?.(RECEIVEQ);
    this.onActivity();
  }

  private deliver(queue: VirtQueue): void {
    while (this.rxFifo.length > 0) {
      const chain = queue.pop();
      if (!chain) return;
      if (chain.readable.length > 0) {
        // Not the frame's fault: it waits for the next buffer.
        queue.push(chain.head, 0);
        this.problem(`receive chain ${chain.head} has device-readable descriptors; returned unused`);
        continue;
      }
      const frame = this.rxFifo.shift() as Uint8Array;
      const room = capacity(chain.writable);
      if (room < NET_HDR_SIZE + frame.length) {
        queue.push(chain.head, 0);
        this.counters.rxDropped++;
        this.problem(`receive chain ${chain.head} holds ${room} bytes, too small for a ${frame.length}-byte frame and the ${NET_HDR_SIZE}-byte header; frame dropped`);
        continue;
      }
      const header = new Uint8Array(NET_HDR_SIZE);
      header[NetHdr.numBuffers] = 1; // le16 1: the frame is in this one chain (no MRG_RXBUF)
      queue.writeAt(chain, 0, header);
      queue.writeAt(chain, NET_HDR_SIZE, frame);
      queue.push(chain.head, NET_HDR_SIZE + frame.length);
      this.counters.rxPackets++;
      this.counters.rxBytes += frame.length;
    }
  }

  private transmit(queue: VirtQueue): void {
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      const frame = this.transmittedFrame(queue, chain);
      queue.push(chain.head, 0);
      if (!frame) {
        this.counters.txDropped++;
        continue;
      }
      try {
        this.backend.send(frame);
      } catch (e) {
        // A failing host side must not stop the guest's transmit path (or reach the CPU).
        this.counters.txDropped++;
        this.problem(`${this.backend.name} refused a ${frame.length}-byte frame: ${(e as Error).message}`);
        continue;
      }
      this.counters.txPackets++;
      this.counters.txBytes += frame.length;
    }
  }

  /** The Ethernet frame of a transmit chain, or null (logged) when the request is malformed. */
  private transmittedFrame(queue: VirtQueue, chain: DescriptorChain): Uint8Array | null {
    if (chain.writable.length > 0) {
      this.problem(`transmit chain ${chain.head} has device-writable descriptors; dropped`);
      return null;
    }
    const length = capacity(chain.readable);
    if (length < NET_HDR_SIZE + ETHERNET_HEADER || length > NET_HDR_SIZE + MAX_ETHERNET_FRAME) {
      this.problem(`transmit chain ${chain.head} holds ${length} bytes; a request is the ${NET_HDR_SIZE}-byte header and a frame of ${ETHERNET_HEADER} to ${MAX_ETHERNET_FRAME} bytes; dropped`);
      return null;
    }
    const request = queue.readAll(chain);
    const flags = request[NetHdr.flags];
    const gsoType = request[NetHdr.gsoType];
    if (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM || gsoType !== VIRTIO_NET_HDR_GSO_NONE) {
      this.problem(`transmit chain ${chain.head} asks for checksum or segmentation offload (flags ${flags}, gso_type ${gsoType}), which was not negotiated; dropped`);
      return null;
    }
    return request.subarray(NET_HDR_SIZE);
  }

  private problem(message: string): void {
    this.problems++;
    if (this.problems <= LOGGED_PROBLEMS) this.log(`${this.name}: ${message}`);
    if (this.problems === LOGGED_PROBLEMS) this.log(`${this.name}: further malformed requests are only counted`);
  }
}

function capacity(buffers: { len: number }[]): number {
  let total = 0;
  for (const b of buffers) total += b.len;
  return total;
}
