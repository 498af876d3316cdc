/**
 * virtio-blk (virtio 1.2 §5.2) over a raw image file, with synchronous node:fs I/O on a file
 * descriptor. Requests are served inside the driver's notify; an acknowledged FLUSH has been
 * fdatasync'ed, so it is durable on the host.
 *
 * Request layout: a 16-byte readable header {type u32, reserved u32, sector u64}, data buffers
 * (readable for OUT/DISCARD/WRITE_ZEROES, writable for IN/GET_ID), and a final 1-byte writable
 * status.
 */
import * as fs from 'node:fs';
import type { AccessWidth } from '../mmio.js';
import { savedObject, SnapshotStateError } from '../../hw/snapshot-state.js';
import type { VirtioDevice, VirtioTransport } from './mmio.js';
import type { DescriptorChain, GuestBuffer, VirtQueue } from './queue.js';
import { lockedDescriptor } from './disk-lock.js';

export const VIRTIO_ID_BLOCK = 2;

export const BlkFeature = {
  SEG_MAX: 2,
  RO: 5,
  BLK_SIZE: 6,
  FLUSH: 9,
  DISCARD: 13,
  WRITE_ZEROES: 14,
} as const;

export const BlkType = { IN: 0, OUT: 1, FLUSH: 4, GET_ID: 8, DISCARD: 11, WRITE_ZEROES: 13 } as const;
export const BlkStatus = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;

const SECTOR = 512;
const QUEUE_SIZE = 256;
const ID_BYTES = 20;
/** Limits advertised for DISCARD / WRITE_ZEROES. */
const MAX_ZERO_SECTORS = 1 << 16;
const MAX_ZERO_SEGS = 1;
const CONFIG_SIZE = 60;

/** The buffers that remain after the first `n` bytes of `bufs`. */
function skipBytes(bufs: GuestBuffer[], n: number): GuestBuffer[] {
  const out: GuestBuffer[] = [];
  for (const b of bufs) {
    if (n >= b.len) { n -= b.len; continue; }
    out.push({ addr: b.addr + n, len: b.len - n });
    n = 0;
  }
  return out;
}

/** The most buffers one preadv/pwritev takes (Linux's IOV_MAX); an indirect table may hold more. */
const IOV_MAX = 1024;

/** The views that remain after the first `n` bytes of `views`. */
function skipViews(views: Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const v of views) {
    if (n >= v.length) { n -= v.length; continue; }
    out.push(n > 0 ? v.subarray(n) : v);
    n = 0;
  }
  return out;
}

/**
 * Fills `views` from the file at `pos`, one preadv for the whole request (a 1 MiB request is
 * up to 256 guest pages); what lies past the file's end reads as zeros.
 */
function readAll(fd: number, views: Uint8Array[], pos: number): void {
  while (views.length > 0) {
    const n = fs.readvSync(fd, views.length > IOV_MAX ? views.slice(0, IOV_MAX) : views, pos);
    if (n === 0) { for (const v of views) v.fill(0); return; }
    views = skipViews(views, n);
    pos += n;
  }
}

/** Writes `views` to the file at `pos`, one pwritev for the whole request. */
function writeAll(fd: number, views: Uint8Array[], pos: number): void {
  while (views.length > 0) {
    const n = fs.writevSync(fd, views.length > IOV_MAX ? views.slice(0, IOV_MAX) : views, pos);
    if (n === 0) throw Object.assign(new Error('the image file took no bytes'), { code: 'EIO' });
    views = skipViews(views, n);
    pos += n;
  }
}

export interface BlkOptions {
  path: string;
  readonly?: boolean;
  /** The string GET_ID returns (at most 20 bytes). */
  serial?: string;
  name?: string;
}

/** What the guest has done with a disk since it was created (for the VMM's metrics). */
export interface BlkStats {
  readBytes: number;
  writeBytes: number;
  readOps: number;
  writeOps: number;
  flushOps: number;
}

/** What VirtioBlk.save() returns. */
export interface BlkState { sectors: string; readonly: boolean }

export class VirtioBlk implements VirtioDevice {
  readonly name: string;
  readonly deviceId = VIRTIO_ID_BLOCK;
  readonly features: bigint;
  readonly queueCount = 1;
  readonly queueMaxSize = QUEUE_SIZE;
  readonly readonly: boolean;
  private fd: number;
  /** The descriptor belongs to the disk lock table (disk-lock.ts), which closes it, not this device. */
  private adopted: boolean;
  private sectors: bigint;
  private readonly serial: Uint8Array;
  private transport: VirtioTransport | null = null;
  readonly stats: BlkStats = { readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0, flushOps: 0 };

  constructor(opts: BlkOptions) {
    this.readonly = opts.readonly ?? false;
    this.name = opts.name ?? 'virtio-blk';
    ({ fd: this.fd, adopted: this.adopted } = VirtioBlk.open(opts.path, this.readonly));
    this.sectors = BigInt(Math.floor(fs.fstatSync(this.fd).size / SECTOR));
    this.serial = new Uint8Array(ID_BYTES);
    this.serial.set(new TextEncoder().encode(opts.serial ?? 'vessel').subarray(0, ID_BYTES));
    let f = (1n << BigInt(BlkFeature.SEG_MAX)) | (1n << BigInt(BlkFeature.BLK_SIZE)) | (1n << BigInt(BlkFeature.FLUSH));
    if (this.readonly) f |= 1n << BigInt(BlkFeature.RO);
    else f |= (1n << BigInt(BlkFeature.DISCARD)) | (1n << BigInt(BlkFeature.WRITE_ZEROES));
    this.features = f;
  }

  get capacitySectors(): bigint { return this.sectors; }

  /**
   * The image's descriptor: the locked one when this process holds the file's disk lock (a
   * second descriptor of a locked file, once closed, would drop the lock), else a new one.
   */
  private static open(path: string, readonly: boolean): { fd: number; adopted: boolean } {
    const locked = lockedDescriptor(path, readonly);
    if (locked !== undefined) return { fd: locked, adopted: true };
    return { fd: fs.openSync(path, readonly ? 'r' : 'r+'), adopted: false };
  }

  /** Re-reads the image size (after the host grew or shrank it) and tells the driver. */
  resize(): void {
    this.sectors = BigInt(Math.floor(fs.fstatSync(this.fd).size / SECTOR));
    this.transport?.configChanged();
  }

  /** The image file's size in bytes now (it may be ahead of the capacity until `resize()`). */
  get imageBytes(): number { return fs.fstatSync(this.fd).size; }

  /**
   * Extends the image to `bytes` through the disk's own descriptor (ftruncate: the new part is a
   * hole that reads as zeros) and tells the driver the new capacity. A read-only disk, a size
   * that is not whole sectors and a size below the image's are refused with a RangeError and
   * change nothing: shrinking would cut off what the guest stored there.
   */
  grow(bytes: number): void {
    if (this.readonly) throw new RangeError(`${this.name} is read-only`);
    if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes % SECTOR !== 0) throw new RangeError(`${this.name}: ${bytes} is not a whole number of ${SECTOR}-byte sectors`);
    const current = this.imageBytes;
    if (bytes < current) throw new RangeError(`${this.name}: the image has ${current} bytes; shrinking it to ${bytes} is refused`);
    if (bytes > current) fs.ftruncateSync(this.fd, bytes);
    this.resize();
  }

  /**
   * Serves the disk from another image file from now on (same read-only mode) and tells the
   * driver its capacity. Safe between requests: they are served synchronously inside the
   * driver's notify, so none is in flight. The new file is opened first, so a failure (thrown
   * as the fs error) leaves the old one in place. A file this process holds the disk lock of is
   * served through the locked descriptor; the old image's lock is its owner's to release.
   */
  replaceImage(path: string): void {
    const { fd, adopted } = VirtioBlk.open(path, this.readonly);
    if (this.fd >= 0 && !this.adopted && this.fd !== fd) fs.closeSync(this.fd);
    this.fd = fd;
    this.adopted = adopted;
    this.resize();
  }

  /**
   * The disk's snapshot state: its size and mode. The image file itself is the user's, as in
   * Firecracker: the restored VM opens the same path, which must still hold the same disk.
   */
  save(): BlkState {
    return { sectors: this.sectors.toString(), readonly: this.readonly };
  }

  restore(saved: unknown): void {
    const s = savedObject(this.name, saved);
    if (s.readonly !== this.readonly) throw new SnapshotStateError(`${this.name}: the snapshot's disk was ${s.readonly ? 'read-only' : 'writable'}, this one is ${this.readonly ? 'read-only' : 'writable'}`);
    if (s.sectors !== this.sectors.toString()) throw new SnapshotStateError(`${this.name}: the image now has ${this.sectors} sectors, the snapshot's disk had ${String(s.sectors)}`);
  }

  /** Binds the transport, so `resize()` can notify the driver before any request arrives. */
  attach(transport: VirtioTransport): void { this.transport = transport; }

  close(): void {
    if (this.fd >= 0 && !this.adopted) fs.closeSync(this.fd);
    this.fd = -1;
  }

  private config(): Uint8Array {
    const c = new Uint8Array(CONFIG_SIZE);
    const v = new DataView(c.buffer);
    v.setBigUint64(0, this.sectors, true); // capacity
    v.setUint32(12, QUEUE_SIZE - 2, true); // seg_max
    v.setUint32(20, SECTOR, true); // blk_size
    v.setUint32(36, MAX_ZERO_SECTORS, true); // max_discard_sectors
    v.setUint32(40, MAX_ZERO_SEGS, true); // max_discard_seg
    v.setUint32(44, 1, true); // discard_sector_alignment
    v.setUint32(48, MAX_ZERO_SECTORS, true); // max_write_zeroes_sectors
    v.setUint32(52, MAX_ZERO_SEGS, true); // max_write_zeroes_seg
    return c;
  }

  configRead(offset: number, width: AccessWidth): number {
    const c = this.config();
    if (offset < 0 || offset + width > c.length) return 0;
    const v = new DataView(c.buffer);
    return width === 1 ? v.getUint8(offset) : width === 2 ? v.getUint16(offset, true) : v.getUint32(offset, true);
  }

  configWrite(): void { /* no writable fields without CONFIG_WCE */ }

  reset(): void { /* requests complete synchronously: nothing in flight */ }

  notify(_queueIndex: number, queue: VirtQueue, transport: VirtioTransport): void {
    this.transport = transport;
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      const written = this.request(queue, chain);
      queue.push(chain.head, written);
    }
  }

  /** Serves one request; returns the bytes written into the chain's writable buffers. */
  private request(queue: VirtQueue, chain: DescriptorChain): number {
    const writable = chain.writable;
    const statusBuf = writable[writable.length - 1];
    if (!statusBuf || statusBuf.len < 1) {
      // No place for a status byte: nothing sensible to answer.
      return 0;
    }
    const statusAddr = statusBuf.addr + statusBuf.len - 1;
    const data = { ...chain, writable: [...writable.slice(0, -1), ...(statusBuf.len > 1 ? [{ addr: statusBuf.addr, len: statusBuf.len - 1 }] : [])] };
    const header = queue.readAll(chain, 16);
    let status: number = BlkStatus.IOERR;
    let written = 0;
    if (header.length === 16) {
      const hv = new DataView(header.buffer, header.byteOffset, 16);
      const type = hv.getUint32(0, true);
      const sector = hv.getBigUint64(8, true);
      try {
        ({ status, written } = this.serve(queue, data, type, sector));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (typeof code !== 'string') throw e;
        status = BlkStatus.IOERR; // host I/O error (EIO, ENOSPC, ...)
      }
    }
    queue.writeAt({ head: chain.head, readable: [], writable: [{ addr: statusAddr, len: 1 }] }, 0, Uint8Array.of(status));
    return written + 1;
  }

  private inRange(sector: bigint, bytes: number): boolean {
    if (bytes % SECTOR !== 0) return false;
    return sector + BigInt(bytes / SECTOR) <= this.sectors;
  }

  private serve(queue: VirtQueue, chain: DescriptorChain, type: number, sector: bigint): { status: number; written: number } {
    const ok = (written = 0) => ({ status: BlkStatus.OK, written });
    const fail = (status: number = BlkStatus.IOERR) => ({ status, written: 0 });
    switch (type) {
      case BlkType.IN: {
        let total = 0;
        for (const b of chain.writable) total += b.len;
        if (!this.inRange(sector, total)) return fail();
        readAll(this.fd, chain.writable.map((b) => queue.slice(b)), Number(sector) * SECTOR);
        this.stats.readOps++;
        this.stats.readBytes += total;
        return ok(total);
      }
      case BlkType.OUT: {
        if (this.readonly) return fail();
        // The data follows the 16-byte header, which may share a descriptor with it.
        const bufs = skipBytes(chain.readable, 16);
        let total = 0;
        for (const b of bufs) total += b.len;
        if (!this.inRange(sector, total)) return fail();
        writeAll(this.fd, bufs.map((b) => queue.slice(b)), Number(sector) * SECTOR);
        this.stats.writeOps++;
        this.stats.writeBytes += total;
        return ok();
      }
      case BlkType.FLUSH:
        if (!this.readonly) fs.fdatasyncSync(this.fd);
        this.stats.flushOps++;
        return ok();
      case BlkType.GET_ID: {
        const n = queue.writeAt(chain, 0, this.serial);
        return ok(n);
      }
      case BlkType.DISCARD:
      case BlkType.WRITE_ZEROES: {
        if (this.readonly) return fail();
        const segs = queue.readAll(chain, 16 + 16 * MAX_ZERO_SEGS + 1).subarray(16);
        if (segs.length === 0 || segs.length % 16 !== 0 || segs.length / 16 > MAX_ZERO_SEGS) return fail(BlkStatus.UNSUPP);
        const sv = new DataView(segs.buffer, segs.byteOffset, segs.length);
        for (let at = 0; at < segs.length; at += 16) {
          const start = sv.getBigUint64(at, true);
          const count = sv.getUint32(at + 8, true);
          const flags = sv.getUint32(at + 12, true);
          if (count > MAX_ZERO_SECTORS) return fail();
          if (flags & ~1) return fail(BlkStatus.UNSUPP);
          if (start + BigInt(count) > this.sectors) return fail();
          // Discarded sectors may read back as anything; zeroing them is simplest and safe.
          const zeros = new Uint8Array(Math.min(count * SECTOR, 1 << 20));
          let pos = Number(start) * SECTOR;
          let left = count * SECTOR;
          while (left > 0) {
            const n = fs.writeSync(this.fd, zeros, 0, Math.min(left, zeros.length), pos);
            pos += n;
            left -= n;
          }
        }
        return ok();
      }
      default:
        return fail(BlkStatus.UNSUPP);
    }
  }
}
