/**
 * virtio-net (virtio 1.2 §5.1), one queue pair: queue 0 is the receiveq (host → guest), queue 1
 * the transmitq (guest → host). The frames go to and come from a `NetBackend` (a TAP device,
 * passt or the user-mode stack); the device does not know which.
 *
 * Offered always: VIRTIO_NET_F_MAC, F_STATUS (the link is always up) and F_MTU (1500). With a
 * backend that handles offloads (the user-mode stack) also the checksum offloads both ways
 * (F_CSUM, F_GUEST_CSUM), TCP/IPv4 segmentation both ways (F_HOST_TSO4, F_GUEST_TSO4) and
 * mergeable receive buffers (F_MRG_RXBUF), so a 64 KiB TCP segment crosses the device as one
 * frame, with no checksum computed on either side: the guest's kernel handles one packet where
 * it would handle 45. (Nothing crosses a wire, so there is no checksum to check.) Never offered:
 * UFO, TSO6, multiqueue and the control queue. With VERSION_1 each buffer starts with the 12-byte
 * `virtio_net_hdr` (num_buffers included).
 *
 * Receive works like a real NIC's FIFO: frames from the backend wait, at most
 * `RX_QUEUE_FRAMES` of them, until the driver posts buffers; beyond that they are dropped and
 * counted. A malformed request (a transmit chain with device-writable buffers, a frame too
 * short or too long, an offload that was not negotiated, a receive buffer too small for the
 * frame) fails that request alone: the chain is returned with nothing written, the frame
 * dropped, the drop counted and one line logged. Broken rings (loops, addresses outside RAM,
 * ...) are `VirtioError`s from the queue, which the transport turns into DEVICE_NEEDS_RESET.
 */
import type { AccessWidth } from '../mmio.js';
import { MAX_ETHERNET_FRAME, MAX_TSO_FRAME, NO_GUEST_OFFLOADS, type FrameOffload, type GuestOffloads, type NetBackend } from '../../net/backend.js';
import { finishChecksum, sumWords } from '../../net/user/checksum.js';
import { MAC_LENGTH } from '../../net/mac.js';
import { decodeBytes, encodeBytes, savedInt, savedObject, SnapshotStateError } from '../../hw/snapshot-state.js';
import type { VirtioDevice, VirtioTransport } from './mmio.js';
import type { DescriptorChain, VirtQueue } from './queue.js';

export const VIRTIO_ID_NET = 1;

export const NetFeature = { CSUM: 0, GUEST_CSUM: 1, MTU: 3, MAC: 5, GUEST_TSO4: 7, HOST_TSO4: 11, MRG_RXBUF: 15, STATUS: 16, CTRL_VQ: 17, MQ: 22 } as const;

const bit = (feature: number): bigint => 1n << BigInt(feature);
const BASE_FEATURES = bit(NetFeature.MAC) | bit(NetFeature.STATUS) | bit(NetFeature.MTU);
/** Offered with a backend that has `offloads`. */
export const OFFLOAD_FEATURES = bit(NetFeature.CSUM) | bit(NetFeature.GUEST_CSUM) | bit(NetFeature.HOST_TSO4) | bit(NetFeature.GUEST_TSO4) | bit(NetFeature.MRG_RXBUF);

export const RECEIVEQ = 0;
export const TRANSMITQ = 1;

/** struct virtio_net_hdr with num_buffers (VERSION_1 always has it): 12 bytes. */
export const NET_HDR_SIZE = 12;
export const NetHdr = { flags: 0, gsoType: 1, hdrLen: 2, gsoSize: 4, csumStart: 6, csumOffset: 8, numBuffers: 10 } as const;
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;

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

/** A frame waiting for a receive buffer. */
interface PendingFrame { frame: Uint8Array; offload?: FrameOffload }

/** What VirtioNet.save() returns (base64 bytes); rxOffloads[i] belongs to rxFrames[i] (absent in older snapshots). */
export interface NetState { mac: string; rxFrames: string[]; rxOffloads?: (FrameOffload | null)[] }

export class VirtioNet implements VirtioDevice {
  readonly name: string;
  readonly deviceId = VIRTIO_ID_NET;
  readonly features: bigint;
  readonly queueCount = 2;
  readonly queueMaxSize = QUEUE_SIZE;
  readonly mac: Uint8Array;
  private readonly backend: NetBackend;
  private readonly onActivity: () => void;
  private readonly log: (line: string) => void;
  private transport: VirtioTransport | null = null;
  private rxFifo: PendingFrame[] = [];
  private problems = 0;
  private readonly counters: NetCounters = { txPackets: 0, txBytes: 0, txDropped: 0, rxPackets: 0, rxBytes: 0, rxDropped: 0 };

  constructor(opts: NetOptions) {
    if (opts.mac.length !== MAC_LENGTH) throw new RangeError(`a MAC address has ${MAC_LENGTH} bytes, got ${opts.mac.length}`);
    this.mac = Uint8Array.from(opts.mac);
    this.name = opts.name ?? 'virtio-net';
    this.backend = opts.backend;
    this.onActivity = opts.onActivity ?? (() => {});
    this.log = opts.log ?? ((line) => console.error(line));
    this.features = this.backend.offloads ? BASE_FEATURES | OFFLOAD_FEATURES : BASE_FEATURES;
    this.backend.attach((frame, offload) => this.receiveFrame(frame, offload), () => this.guestOffloads());
  }

  /** What the driver accepted of the offloads this device offers. */
  guestOffloads(): GuestOffloads {
    if (!this.backend.offloads) return NO_GUEST_OFFLOADS;
    return { checksum: this.negotiated(NetFeature.GUEST_CSUM), tcp4Segmentation: this.negotiated(NetFeature.GUEST_TSO4) };
  }

  private negotiated(feature: number): boolean {
    return ((this.features & (this.transport?.negotiatedFeatures ?? 0n)) & bit(feature)) !== 0n;
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
    const state: NetState = { mac: encodeBytes(this.mac), rxFrames: this.rxFifo.map((p) => encodeBytes(p.frame)) };
    if (this.rxFifo.some((p) => p.offload)) state.rxOffloads = this.rxFifo.map((p) => p.offload ?? null);
    return state;
  }

  restore(saved: unknown): void {
    const s = savedObject(this.name, saved);
    const mac = decodeBytes(`${this.name}.mac`, s.mac);
    if (mac.length !== MAC_LENGTH || mac.some((b, i) => b !== this.mac[i])) throw new SnapshotStateError(`${this.name}: the snapshot's MAC ${[...mac].map((b) => b.toString(16).padStart(2, '0')).join(':')} differs from this device's`);
    if (!Array.isArray(s.rxFrames) || s.rxFrames.length > RX_QUEUE_FRAMES) throw new SnapshotStateError(`${this.name}.rxFrames: not a list of at most ${RX_QUEUE_FRAMES} frames`);
    const offloads: unknown = s.rxOffloads ?? [];
    if (!Array.isArray(offloads) || (s.rxOffloads !== undefined && offloads.length !== s.rxFrames.length)) throw new SnapshotStateError(`${this.name}.rxOffloads: not a list as long as rxFrames`);
    this.rxFifo = s.rxFrames.map((f: unknown, i) => {
      const frame = decodeBytes(`${this.name}.rxFrames[${i}]`, f);
      const offload = savedOffload(`${this.name}.rxOffloads[${i}]`, offloads[i]);
      const limit = offload?.tcp4SegmentSize ? MAX_TSO_FRAME : MAX_ETHERNET_FRAME;
      if (frame.length > limit) throw new SnapshotStateError(`${this.name}.rxFrames[${i}]: ${frame.length} bytes exceed ${limit}`);
      return offload ? { frame, offload } : { frame };
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

  /** A frame from the backend: queued, then copied into receive buffers as soon as there are some. */
  private receiveFrame(frame: Uint8Array, offload?: FrameOffload): void {
    const limit = offload?.tcp4SegmentSize ? MAX_TSO_FRAME : MAX_ETHERNET_FRAME;
    if (frame.length < ETHERNET_HEADER || frame.length > limit) {
      this.counters.rxDropped++;
      this.problem(`dropped a ${frame.length}-byte frame from ${this.backend.name}: an Ethernet frame has ${ETHERNET_HEADER} to ${limit} bytes`);
      return;
    }
    if (this.rxFifo.length >= RX_QUEUE_FRAMES) {
      this.counters.rxDropped++;
      return;
    }
    this.rxFifo.push(offload ? { frame, offload } : { frame });
    this.transport?.kick?.(RECEIVEQ);
    this.onActivity();
  }

  private deliver(queue: VirtQueue): void {
    const mergeable = this.negotiated(NetFeature.MRG_RXBUF);
    while (this.rxFifo.length > 0) {
      const { frame, offload } = this.rxFifo[0];
      const header = this.receiveHeader(frame, offload);
      if (!header) {
        this.rxFifo.shift();
        this.counters.rxDropped++;
        continue;
      }
      const delivered = mergeable ? this.deliverMerged(queue, header, frame) : this.deliverOne(queue, header, frame);
      if (delivered === 'wait') return;
      this.rxFifo.shift();
      if (delivered === 'dropped') {
        this.counters.rxDropped++;
        continue;
      }
      this.counters.rxPackets++;
      this.counters.rxBytes += frame.length;
    }
  }

  /** Without MRG_RXBUF: the frame goes into one chain. */
  private deliverOne(queue: VirtQueue, header: Uint8Array, frame: Uint8Array): 'done' | 'dropped' | 'wait' {
    for (;;) {
      const chain = queue.pop();
      if (!chain) return 'wait';
      if (chain.readable.length > 0) {
        // Not the frame's fault: it waits for the next buffer.
        queue.push(chain.head, 0);
        this.problem(`receive chain ${chain.head} has device-readable descriptors; returned unused`);
        continue;
      }
      const room = capacity(chain.writable);
      if (room < NET_HDR_SIZE + frame.length) {
        queue.push(chain.head, 0);
        this.problem(`receive chain ${chain.head} holds ${room} bytes, too small for a ${frame.length}-byte frame and the ${NET_HDR_SIZE}-byte header; frame dropped`);
        return 'dropped';
      }
      header[NetHdr.numBuffers] = 1; // le16 1: the frame is in this one chain
      queue.writeAt(chain, 0, header);
      queue.writeAt(chain, NET_HDR_SIZE, frame);
      queue.push(chain.head, NET_HDR_SIZE + frame.length);
      return 'done';
    }
  }

  /**
   * With MRG_RXBUF: the header and frame spread over as many chains as they need, num_buffers
   * saying how many. If the driver has not posted enough yet, nothing is taken: the chains
   * looked at stay available (lastAvail goes back) and the frame waits for the next kick.
   */
  private deliverMerged(queue: VirtQueue, header: Uint8Array, frame: Uint8Array): 'done' | 'dropped' | 'wait' {
    const total = NET_HDR_SIZE + frame.length;
    const mark = queue.lastAvail;
    const chains: DescriptorChain[] = [];
    let room = 0;
    while (room < total) {
      const chain = queue.pop();
      if (!chain) {
        if (chains.length >= queue.size) {
          // Every buffer of the ring together is too small: this frame can never be taken.
          for (const c of chains) queue.push(c.head, 0);
          this.problem(`the receive queue's ${chains.length} buffers hold ${room} bytes, too few for a ${frame.length}-byte frame; frame dropped`);
          return 'dropped';
        }
        queue.lastAvail = mark;
        return 'wait';
      }
      if (chain.readable.length > 0) {
        for (const c of chains) queue.push(c.head, 0);
        queue.push(chain.head, 0);
        this.problem(`receive chain ${chain.head} has device-readable descriptors; frame dropped`);
        return 'dropped';
      }
      chains.push(chain);
      room += capacity(chain.writable);
    }
    header[NetHdr.numBuffers] = chains.length & 0xff;
    header[NetHdr.numBuffers + 1] = chains.length >>> 8;
    let at = 0; // bytes of header + frame written so far
    for (const chain of chains) {
      const size = Math.min(capacity(chain.writable), total - at);
      let written = 0;
      if (at < NET_HDR_SIZE) written += queue.writeAt(chain, 0, header.subarray(at, Math.min(NET_HDR_SIZE, at + size)));
      if (written < size) {
        const from = at + written - NET_HDR_SIZE;
        written += queue.writeAt(chain, written, frame.subarray(from, from + size - written));
      }
      queue.push(chain.head, written);
      at += written;
    }
    return 'done';
  }

  /**
   * The virtio_net_hdr for a frame from the backend, or null (logged) when the frame asks for
   * what the driver did not accept. A partial checksum is completed here for a driver without
   * GUEST_CSUM (a frame queued before the driver came up, say).
   */
  private receiveHeader(frame: Uint8Array, offload: FrameOffload | undefined): Uint8Array | null {
    const header = new Uint8Array(NET_HDR_SIZE);
    if (!offload) return header;
    const { checksum, tcp4SegmentSize } = offload;
    if (checksum && (checksum.start + checksum.offset + 2 > frame.length || checksum.start < ETHERNET_HEADER)) {
      this.problem(`${this.backend.name} sent a ${frame.length}-byte frame whose partial checksum at ${checksum.start}+${checksum.offset} lies outside it; dropped`);
      return null;
    }
    if (tcp4SegmentSize) {
      if (!checksum || !this.negotiated(NetFeature.GUEST_TSO4)) {
        this.problem(`${this.backend.name} sent a ${frame.length}-byte TCP segment the driver cannot take (GUEST_TSO4 not negotiated, or no partial checksum); dropped`);
        return null;
      }
      header[NetHdr.gsoType] = VIRTIO_NET_HDR_GSO_TCPV4;
      writeLe16(header, NetHdr.gsoSize, tcp4SegmentSize);
      writeLe16(header, NetHdr.hdrLen, checksum.start + ((frame[checksum.start + 12] >>> 4) * 4));
    }
    if (!checksum) return header;
    if (this.negotiated(NetFeature.GUEST_CSUM)) {
      header[NetHdr.flags] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
      writeLe16(header, NetHdr.csumStart, checksum.start);
      writeLe16(header, NetHdr.csumOffset, checksum.offset);
    } else {
      const field = checksum.start + checksum.offset;
      const sum = finishChecksum(sumWords(frame, checksum.start, frame.length));
      frame[field] = sum >>> 8;
      frame[field + 1] = sum;
    }
    return header;
  }

  private transmit(queue: VirtQueue): void {
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      const request = this.transmittedFrame(queue, chain);
      queue.push(chain.head, 0);
      if (!request) {
        this.counters.txDropped++;
        continue;
      }
      const { frame, offload } = request;
      try {
        if (offload) this.backend.send(frame, offload);
        else this.backend.send(frame);
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

  /** The Ethernet frame of a transmit chain and its offloads, or null (logged) when the request is malformed. */
  private transmittedFrame(queue: VirtQueue, chain: DescriptorChain): { frame: Uint8Array; offload?: FrameOffload } | null {
    if (chain.writable.length > 0) {
      this.problem(`transmit chain ${chain.head} has device-writable descriptors; dropped`);
      return null;
    }
    const length = capacity(chain.readable);
    const tso = this.negotiated(NetFeature.HOST_TSO4);
    const limit = tso ? MAX_TSO_FRAME : MAX_ETHERNET_FRAME;
    if (length < NET_HDR_SIZE + ETHERNET_HEADER || length > NET_HDR_SIZE + limit) {
      this.problem(`transmit chain ${chain.head} holds ${length} bytes; a request is the ${NET_HDR_SIZE}-byte header and a frame of ${ETHERNET_HEADER} to ${limit} bytes; dropped`);
      return null;
    }
    const request = queue.readAll(chain);
    const frame = request.subarray(NET_HDR_SIZE);
    const flags = request[NetHdr.flags];
    const gsoType = request[NetHdr.gsoType];
    const needsChecksum = (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0;
    if ((needsChecksum && !this.negotiated(NetFeature.CSUM)) || (gsoType !== VIRTIO_NET_HDR_GSO_NONE && !(gsoType === VIRTIO_NET_HDR_GSO_TCPV4 && tso))) {
      this.problem(`transmit chain ${chain.head} asks for checksum or segmentation offload (flags ${flags}, gso_type ${gsoType}), which was not negotiated; dropped`);
      return null;
    }
    if (gsoType === VIRTIO_NET_HDR_GSO_NONE && frame.length > MAX_ETHERNET_FRAME) {
      this.problem(`transmit chain ${chain.head} holds a ${frame.length}-byte frame without segmentation offload; dropped`);
      return null;
    }
    if (!needsChecksum && gsoType === VIRTIO_NET_HDR_GSO_NONE) return { frame };
    const offload: FrameOffload = {};
    if (needsChecksum) {
      const start = readLe16(request, NetHdr.csumStart);
      const offset = readLe16(request, NetHdr.csumOffset);
      if (start + offset + 2 > frame.length) {
        this.problem(`transmit chain ${chain.head}: the checksum at ${start}+${offset} lies outside the ${frame.length}-byte frame; dropped`);
        return null;
      }
      offload.checksum = { start, offset };
    }
    if (gsoType === VIRTIO_NET_HDR_GSO_TCPV4) {
      const size = readLe16(request, NetHdr.gsoSize);
      if (size === 0 || !needsChecksum) {
        this.problem(`transmit chain ${chain.head}: a TCP segmentation request needs a segment size and a partial checksum (gso_size ${size}, flags ${flags}); dropped`);
        return null;
      }
      offload.tcp4SegmentSize = size;
    }
    return { frame, offload };
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

function readLe16(bytes: Uint8Array, at: number): number {
  return bytes[at] | (bytes[at + 1] << 8);
}

function writeLe16(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value;
  bytes[at + 1] = value >>> 8;
}

/** A FrameOffload from a snapshot (null or absent: none). */
function savedOffload(where: string, saved: unknown): FrameOffload | undefined {
  if (saved === null || saved === undefined) return undefined;
  const s = savedObject(where, saved);
  const offload: FrameOffload = {};
  if (s.checksum !== undefined) {
    const c = savedObject(`${where}.checksum`, s.checksum);
    offload.checksum = { start: savedInt(`${where}.checksum.start`, c.start, 0, 0xffff), offset: savedInt(`${where}.checksum.offset`, c.offset, 0, 0xffff) };
  }
  if (s.tcp4SegmentSize !== undefined) offload.tcp4SegmentSize = savedInt(`${where}.tcp4SegmentSize`, s.tcp4SegmentSize, 1, 0xffff);
  return offload;
}
