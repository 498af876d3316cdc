/**
 * Guest RAM: one shared `WebAssembly.Memory`, so that harts on worker threads can later share
 * it (its buffer is a SharedArrayBuffer) and code compiled by the JIT (src/cpu/jit) reads and
 * writes it directly.
 *
 * The wasm memory holds more than RAM: below RAM lie `MAX_HART_SLOTS` slots of per-hart state
 * that both the interpreter and compiled code touch (integer registers, TLBs; the layout is the
 * CPU's business, see src/cpu/hart-state.ts) and the JIT's lookup table. RAM starts at byte `RAM_OFFSET` of the wasm
 * memory; `view`, `bytes` and every offset in this API are relative to RAM's start.
 *
 * Every access that comes from guest-supplied values (device DMA through virtqueues) goes
 * through the bounds-checked helpers here; the CPU's fast path uses `view` directly after its
 * own range check.
 */
import { adviseHugePages, HOST_HUGE_PAGE, hugePageMisalignment, releasePages, residentBytes } from './huge-pages.js';

export const HART_SLOT_BYTES = 1024 * 1024;
export const MAX_HART_SLOTS = 64;
/** The most RAM a machine can have. */
export const MAX_RAM_BYTES = 2 * 1024 ** 3;
/**
 * Regions for the JITs' block lookup tables, slot generations and RAM page versions, which
 * compiled code reads (after the hart slots): one per host thread that runs harts, so at most
 * one per hart. Only what a JIT touches takes host memory.
 */
export const JIT_REGION_OFFSET = HART_SLOT_BYTES * MAX_HART_SLOTS;
export const JIT_REGION_BYTES = 4 * 1024 * 1024;
export const JIT_REGIONS = MAX_HART_SLOTS;
/** Byte offset of guest RAM inside the wasm memory. */
export const RAM_OFFSET = JIT_REGION_OFFSET + JIT_REGION_BYTES * JIT_REGIONS;
const WASM_PAGE = 64 * 1024;

export class GuestMemory {
  /** RAM plus the hart slots below it. */
  readonly wasmMemory: WebAssembly.Memory;
  readonly buffer: SharedArrayBuffer;
  readonly view: DataView;
  readonly bytes: Uint8Array;
  readonly end: number;
  /** Whether the host backs this memory with transparent huge pages where it can (huge-pages.ts). */
  readonly hugePages: boolean;
  /**
   * Called with (offset into RAM, length) before a device or the firmware may write RAM through
   * `slice`, `write` or `writeU*` (the CPU's own stores do not come here). The JIT uses it to
   * drop translations of code that DMA overwrites.
   */
  onDeviceWrite: ((offset: number, length: number) => void) | null = null;

  /**
   * `shared`: the wasm memory of a GuestMemory made on another thread (a hart's worker), whose
   * RAM this one shares; its owner has advised it already.
   */
  constructor(readonly base: number, readonly size: number, shared?: WebAssembly.Memory) {
    if (!Number.isInteger(size) || size <= 0 || size % 4096 !== 0) {
      throw new RangeError(`guest memory size must be a positive multiple of 4096, got ${size}`);
    }
    if (size > MAX_RAM_BYTES) throw new RangeError(`guest memory is at most 2 GiB, got ${size} bytes`);
    const pages = Math.ceil((RAM_OFFSET + size) / WASM_PAGE);
    this.wasmMemory = shared ?? new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    const buffer: unknown = this.wasmMemory.buffer; // typed as ArrayBuffer, shared at run time
    if (!(buffer instanceof SharedArrayBuffer)) throw new Error('this JavaScript engine has no shared WebAssembly memory');
    if (buffer.byteLength !== pages * WASM_PAGE) throw new RangeError(`shared guest memory of ${buffer.byteLength} bytes does not hold ${size} bytes of RAM`);
    this.buffer = buffer;
    this.hugePages = shared ? false : adviseHugePages(buffer);
    this.view = new DataView(this.buffer, RAM_OFFSET, size);
    this.bytes = new Uint8Array(this.buffer, RAM_OFFSET, size);
    this.end = base + size;
  }

  /** Byte offset (in `buffer`) of hart `id`'s state slot. */
  hartSlot(id: number): number {
    if (!Number.isInteger(id) || id < 0 || id >= MAX_HART_SLOTS) throw new RangeError(`hart id must be 0..${MAX_HART_SLOTS - 1}, got ${id}`);
    return id * HART_SLOT_BYTES;
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

  /** offset() for a range that may be written: tells onDeviceWrite first. */
  private writableOffset(addr: number, len: number): number {
    const off = this.offset(addr, len);
    this.onDeviceWrite?.(off, len);
    return off;
  }

  /**
   * A view of guest memory (no copy). Throws GuestMemoryError when out of range. The caller may
   * write through it (DMA), so it counts as a write for onDeviceWrite.
   */
  slice(addr: number, len: number): Uint8Array {
    const off = this.writableOffset(addr, len);
    return this.bytes.subarray(off, off + len);
  }
  write(addr: number, data: Uint8Array): void {
    this.bytes.set(data, this.writableOffset(addr, data.length));
  }
  /**
   * Gives the 4 KiB-aligned RAM range [addr, addr+len) back to the host (madvise DONTNEED): it
   * reads as zeros afterwards. Counts as a device write (onDeviceWrite). Returns false, changing
   * nothing, where the host cannot do it (no addon); throws GuestMemoryError outside RAM.
   */
  discard(addr: number, len: number): boolean {
    if (len % 4096 !== 0 || (addr - this.base) % 4096 !== 0) throw new RangeError(`discard of 0x${addr.toString(16)}+${len}: not whole 4 KiB pages`);
    const off = this.offset(addr, len);
    if (len === 0) return true;
    this.onDeviceWrite?.(off, len);
    return releasePages(this.buffer, RAM_OFFSET + off, len);
  }
  /**
   * The offset in RAM (0 to 2 MiB - 4 KiB) at which the host's 2 MiB huge pages start, so that a
   * release can cover whole ones; 0 where the host does not say (guest and host then agree when
   * V8 placed the memory 2 MiB-aligned, as it does in some processes and not in others).
   */
  get hugePageOffset(): number {
    if (this.hugeOffset === undefined) {
      const mis = hugePageMisalignment(this.buffer);
      this.hugeOffset = mis === null ? 0 : (HOST_HUGE_PAGE - ((mis + RAM_OFFSET) % HOST_HUGE_PAGE)) % HOST_HUGE_PAGE;
    }
    return this.hugeOffset;
  }
  private hugeOffset: number | undefined;

  /** Bytes of RAM the host holds now (its own count, see huge-pages.ts), or null where it cannot tell. */
  residentBytes(): number | null {
    return residentBytes(this.buffer, RAM_OFFSET, this.size);
  }
  readU8(addr: number): number { return this.view.getUint8(this.offset(addr, 1)); }
  readU16(addr: number): number { return this.view.getUint16(this.offset(addr, 2), true); }
  readU32(addr: number): number { return this.view.getUint32(this.offset(addr, 4), true); }
  readU64(addr: number): bigint { return this.view.getBigUint64(this.offset(addr, 8), true); }
  writeU8(addr: number, v: number): void { this.view.setUint8(this.writableOffset(addr, 1), v); }
  writeU16(addr: number, v: number): void { this.view.setUint16(this.writableOffset(addr, 2), v, true); }
  writeU32(addr: number, v: number): void { this.view.setUint32(this.writableOffset(addr, 4), v >>> 0, true); }
  writeU64(addr: number, v: bigint): void { this.view.setBigUint64(this.writableOffset(addr, 8), v, true); }
}

export class GuestMemoryError extends Error {
  override name = 'GuestMemoryError';
}
