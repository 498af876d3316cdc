/**
 * A split virtqueue (virtio 1.2 §2.7) read and written through GuestMemory's bounds-checked
 * helpers. Everything the guest supplies — ring addresses, the avail index, descriptor indices,
 * buffer addresses and lengths, indirect tables — is validated before a device sees it; a
 * violation throws a `VirtioError` that names the queue and the offending value, and the
 * transport turns it into DEVICE_NEEDS_RESET instead of an exception in the CPU.
 */
import type { GuestMemory } from '../../hw/memory.js';
import { savedInt, savedObject } from '../../hw/snapshot-state.js';

/** Feature bits shared by all device types (virtio 1.2 §6). */
export const VIRTIO_F_RING_INDIRECT_DESC = 28;
export const VIRTIO_F_RING_EVENT_IDX = 29;
export const VIRTIO_F_VERSION_1 = 32;

export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
/** avail.flags: the driver asks for no used-buffer notifications (without EVENT_IDX). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;

const DESC_SIZE = 16;
/** Largest split queue size (§2.7: Queue Size is a power of 2, at most 32768). */
export const MAX_QUEUE_SIZE = 32768;

export class VirtioError extends Error {
  override name = 'VirtioError';
}

export interface GuestBuffer { addr: number; len: number }

/** A descriptor chain the driver made available: device-readable buffers first, then device-writable ones. */
export interface DescriptorChain {
  head: number;
  readable: GuestBuffer[];
  writable: GuestBuffer[];
}

export interface QueueLayout {
  size: number;
  /** Descriptor table, available (driver) ring and used (device) ring guest-physical addresses. */
  desc: number;
  avail: number;
  used: number;
}

export interface QueueFeatures {
  indirect: boolean;
  eventIdx: boolean;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/** vring_need_event (§2.7.10): true when `eventIdx` lies in the window (old, new]. */
export function needEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

/** What VirtQueue.save() returns. */
export interface QueueIndices { lastAvail: number; usedIdx: number; signalledUsed: number }

export class VirtQueue {
  readonly size: number;
  readonly desc: number;
  readonly avail: number;
  readonly used: number;
  /** Next avail ring slot the device will read (free-running, mod 2^16). */
  lastAvail = 0;
  /** The used index the device will publish next (mod 2^16). */
  usedIdx = 0;
  /** The used index at the last interrupt decision. */
  private signalledUsed = 0;

  constructor(private readonly mem: GuestMemory, layout: QueueLayout, readonly features: QueueFeatures, readonly label = 'virtqueue') {
    const { size, desc, avail, used } = layout;
    if (!Number.isInteger(size) || size < 1 || size > MAX_QUEUE_SIZE || (size & (size - 1)) !== 0) {
      throw new VirtioError(`${label}: queue size ${size} is not a power of 2 from 1 to ${MAX_QUEUE_SIZE}`);
    }
    const check = (what: string, addr: number, len: number, align: number): void => {
      if (addr % align !== 0) throw new VirtioError(`${label}: ${what} at ${hex(addr)} is not ${align}-byte aligned`);
      if (!mem.contains(addr, len)) throw new VirtioError(`${label}: ${what} at ${hex(addr)} (+${len} bytes) is outside RAM`);
    };
    check('descriptor table', desc, DESC_SIZE * size, 16);
    check('available ring', avail, 6 + 2 * size, 2);
    check('used ring', used, 6 + 8 * size, 4);
    this.size = size;
    this.desc = desc;
    this.avail = avail;
    this.used = used;
  }

  /** The device's side of the rings (the rest lives in guest memory), for a snapshot. */
  save(): QueueIndices {
    return { lastAvail: this.lastAvail, usedIdx: this.usedIdx, signalledUsed: this.signalledUsed };
  }

  restore(saved: unknown): void {
    const s = savedObject(this.label, saved);
    this.lastAvail = savedInt(`${this.label}.lastAvail`, s.lastAvail, 0, 0xffff);
    this.usedIdx = savedInt(`${this.label}.usedIdx`, s.usedIdx, 0, 0xffff);
    this.signalledUsed = savedInt(`${this.label}.signalledUsed`, s.signalledUsed, 0, 0xffff);
  }

  /** Number of chains the driver has made available and the device has not taken yet. */
  pending(): number {
    const n = (this.mem.readU16(this.avail + 2) - this.lastAvail) & 0xffff;
    if (n > this.size) {
      throw new VirtioError(`${this.label}: avail idx ${this.mem.readU16(this.avail + 2)} is ${n} entries ahead of the device's ${this.lastAvail}, more than the queue size ${this.size}`);
    }
    return n;
  }

  /** Takes the next available descriptor chain, or null when there is none. */
  pop(): DescriptorChain | null {
    if (this.pending() === 0) return null;
    const head = this.mem.readU16(this.avail + 4 + 2 * (this.lastAvail % this.size));
    if (head >= this.size) throw new VirtioError(`${this.label}: avail ring entry ${this.lastAvail % this.size} names descriptor ${head}, outside the queue of ${this.size}`);
    const chain = this.walk(head);
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    // With EVENT_IDX the driver notifies again only when it makes entry avail_event available.
    if (this.features.eventIdx) this.mem.writeU16(this.used + 4 + 8 * this.size, this.lastAvail);
    return chain;
  }

  private walk(head: number): DescriptorChain {
    const readable: GuestBuffer[] = [];
    const writable: GuestBuffer[] = [];
    let table = this.desc;
    let tableSize = this.size;
    let indirect = false;
    let idx = head;
    let count = 0;
    // The descriptor in error messages, built only for one: a string per descriptor was a seventh of a 1 MiB request's cost.
    const where = (): string => (indirect ? `indirect table at ${hex(table)} entry ${idx}` : `descriptor ${idx}`);
    for (;;) {
      if (idx >= tableSize) {
        throw new VirtioError(`${this.label}: chain from head ${head} links to ${where()}, outside ${indirect ? `the indirect table of ${tableSize}` : `the queue of ${tableSize}`}`);
      }
      if (++count > tableSize) {
        throw new VirtioError(`${this.label}: chain from head ${head} is longer than ${tableSize} descriptors (a loop)`);
      }
      const d = table + DESC_SIZE * idx;
      const addr64 = this.mem.readU64(d);
      const len = this.mem.readU32(d + 8);
      const flags = this.mem.readU16(d + 12);
      const next = this.mem.readU16(d + 14);
      // Above 2^53 the address cannot be in RAM; Number() keeps it above RAM's end.
      const addr = Number(addr64);
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (!this.features.indirect) throw new VirtioError(`${this.label}: ${where()} is indirect but VIRTIO_F_RING_INDIRECT_DESC was not negotiated`);
        if (indirect) throw new VirtioError(`${this.label}: ${where()} is an indirect descriptor inside an indirect table (nesting is not allowed)`);
        if (flags & VIRTQ_DESC_F_NEXT) throw new VirtioError(`${this.label}: ${where()} sets both INDIRECT and NEXT`);
        if (len === 0 || len % DESC_SIZE !== 0) throw new VirtioError(`${this.label}: ${where()} has an indirect table length of ${len}, not a non-zero multiple of ${DESC_SIZE}`);
        if (!this.mem.contains(addr, len)) throw new VirtioError(`${this.label}: ${where()} points to an indirect table at 0x${addr64.toString(16)} (+${len} bytes) outside RAM`);
        table = addr;
        tableSize = len / DESC_SIZE;
        indirect = true;
        idx = 0;
        count = 0;
        continue;
      }
      if (!this.mem.contains(addr, len)) {
        throw new VirtioError(`${this.label}: ${where()} has buffer 0x${addr64.toString(16)} (+${len} bytes) outside RAM`);
      }
      if (flags & VIRTQ_DESC_F_WRITE) {
        writable.push({ addr, len });
      } else {
        if (writable.length > 0) throw new VirtioError(`${this.label}: ${where()} is device-readable but follows a device-writable descriptor in the chain from head ${head}`);
        readable.push({ addr, len });
      }
      if (!(flags & VIRTQ_DESC_F_NEXT)) break;
      idx = next;
    }
    return { head, readable, writable };
  }

  /** Returns chain `head` to the driver with `written` bytes written into its writable buffers. */
  push(head: number, written: number): void {
    if (!Number.isInteger(head) || head < 0 || head >= this.size) throw new VirtioError(`${this.label}: push of head ${head} outside the queue of ${this.size}`);
    const slot = this.used + 4 + 8 * (this.usedIdx % this.size);
    this.mem.writeU32(slot, head);
    this.mem.writeU32(slot + 4, written >>> 0);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    this.mem.writeU16(this.used + 2, this.usedIdx);
  }

  /**
   * Whether the used buffers pushed since the last call warrant an interrupt: with EVENT_IDX
   * when used_event falls in the new range, else unless the driver set NO_INTERRUPT.
   */
  needsInterrupt(): boolean {
    const old = this.signalledUsed;
    const now = this.usedIdx;
    if (old === now) return false;
    this.signalledUsed = now;
    if (this.features.eventIdx) {
      const usedEvent = this.mem.readU16(this.avail + 4 + 2 * this.size);
      return needEvent(usedEvent, now, old);
    }
    return (this.mem.readU16(this.avail) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /** A view of one validated buffer of a chain (no copy). */
  slice(b: GuestBuffer): Uint8Array {
    return this.mem.slice(b.addr, b.len);
  }

  /** Copies the chain's readable buffers into one host array (at most `limit` bytes). */
  readAll(chain: DescriptorChain, limit = Infinity): Uint8Array {
    let total = 0;
    for (const b of chain.readable) total += b.len;
    const out = new Uint8Array(Math.min(total, limit));
    let at = 0;
    for (const b of chain.readable) {
      if (at >= out.length) break;
      const n = Math.min(b.len, out.length - at);
      out.set(this.mem.slice(b.addr, n), at);
      at += n;
    }
    return out;
  }

  /** Writes `data` across the chain's writable buffers, starting `offset` bytes in; returns bytes written. */
  writeAt(chain: DescriptorChain, offset: number, data: Uint8Array): number {
    let skip = offset;
    let from = 0;
    for (const b of chain.writable) {
      if (from >= data.length) break;
      if (skip >= b.len) { skip -= b.len; continue; }
      const n = Math.min(b.len - skip, data.length - from);
      this.mem.write(b.addr + skip, data.subarray(from, from + n));
      from += n;
      skip = 0;
    }
    return from;
  }
}
