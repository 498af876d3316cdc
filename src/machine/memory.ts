/**
 * Guest RAM: one SharedArrayBuffer-backed object so that harts on worker threads can later
 * share it. Every access that comes from guest-supplied values (device DMA through virtqueues)
 * goes through the bounds-checked helpers here; the CPU's fast path uses `view` directly after
 * its own range check.
 */
export class GuestMemory {
  readonly buffer: SharedArrayBuffer;
  readonly view: DataView;
  readonly bytes: Uint8Array;
  readonly end: number;

  constructor(readonly base: number, readonly size: number) {
    if (!Number.isInteger(size) || size <= 0 || size % 4096 !== 0) {
      throw new RangeError(`guest memory size must be a positive multiple of 4096, got ${size}`);
    }
    this.buffer = new SharedArrayBuffer(size);
    this.view = new DataView(this.buffer);
    this.bytes = new Uint8Array(this.buffer);
    this.end = base + size;
  }

  /** True when [addr, addr+len) lies entirely inside RAM. */
  contains(addr: number, len: number): boolean {
    return Number.isInteger(addr) && Number.isInteger(len) && len >= 0 && addr >= this.base && addr + len <= this.end;
  }

  private offset(addr: number, len: number): number {
    if (!this.contains(addr, len)) {
      throw new GuestMemoryError(`guest address range 0x${addr.toString(16)}+${len} is outside RAM ` +
        `[0x${this.base.toString(16)}, 0x${this.end.toString(16)})`);
    }
    return addr - this.base;
  }

  /** A view of guest memory (no copy). Throws GuestMemoryError when out of range. */
  slice(addr: number, len: number): Uint8Array {
    const off = this.offset(addr, len);
    return this.bytes.subarray(off, off + len);
  }
  write(addr: number, data: Uint8Array): void {
    this.bytes.set(data, this.offset(addr, data.length));
  }
  readU8(addr: number): number { return this.view.getUint8(this.offset(addr, 1)); }
  readU16(addr: number): number { return this.view.getUint16(this.offset(addr, 2), true); }
  readU32(addr: number): number { return this.view.getUint32(this.offset(addr, 4), true); }
  readU64(addr: number): bigint { return this.view.getBigUint64(this.offset(addr, 8), true); }
  writeU8(addr: number, v: number): void { this.view.setUint8(this.offset(addr, 1), v); }
  writeU16(addr: number, v: number): void { this.view.setUint16(this.offset(addr, 2), v, true); }
  writeU32(addr: number, v: number): void { this.view.setUint32(this.offset(addr, 4), v >>> 0, true); }
  writeU64(addr: number, v: bigint): void { this.view.setBigUint64(this.offset(addr, 8), v, true); }
}

export class GuestMemoryError extends Error {
  override name = 'GuestMemoryError';
}
