import type { GuestMemory } from '../hw/memory.js';
import { Priv } from './csr.js';

/** What an access wants from a page: the three TLBs are kept apart by this. */
export const enum Access { Read = 0, Write = 1, Execute = 2 }

/** satp.MODE values this hart implements. */
export const enum SatpMode { Bare = 0, Sv39 = 8, Sv48 = 9 }

// 4,096 entries: with 1,024, pages evicted each other often enough that a boot walked the page
// tables 18% more often (docs/PERFORMANCE.md).
const TLB_BITS = 12;
export const TLB_SIZE = 1 << TLB_BITS;
export const TLB_MASK = TLB_SIZE - 1;

/**
 * A Tlb in a hart slot: TLB_SIZE entries of four int32s (TlbField; one cache line holds what a
 * lookup reads), then the physical page addresses (float64, for the interpreter's slow path).
 */
const TLB_ENTRY_BYTES = 16;
export const TLB_BYTES = TLB_SIZE * (TLB_ENTRY_BYTES + 8);
/** Byte offsets of the fields within an entry (compiled code reads them). */
export const enum TlbField { TagLo = 0, TagHi = 4, RamOffset = 8 }
/** Mask that turns `address >>> 8` into the byte offset of its entry from the Tlb's start. */
export const TLB_INDEX_MASK = TLB_MASK << 4;

/**
 * A direct-mapped translation cache for one (privilege, access kind) pair. An entry is only
 * filled after the page walk granted that access, so a hit needs no permission check.
 * Tags are the page's virtual address as (lo & ~0xfff, hi), so compiled code compares them as
 * one i64; -1 never matches a tag.
 * The arrays are views into the hart's slot of the wasm memory, so compiled code can do the
 * lookup inline.
 */
export class Tlb {
  /**
   * Entry i at [4i, 4i + 3]: tag lo, tag hi, and the page's offset into guest RAM (only RAM
   * pages are cached; int32 so the interpreter's fast path stays in small-integer arithmetic,
   * as physical addresses are >= 2^31).
   */
  readonly entries: Int32Array;
  /** Physical address of the 4 KiB page. */
  readonly page: Float64Array;
  /**
   * A second direct-mapped set for the translations the arrays above must not hold: pages that
   * are not RAM (devices) and, in write TLBs, pages of translated code. Only the full path
   * (Hart.translate) looks here, so device accesses need no page walk each time.
   */
  private readonly otherTagLo = new Int32Array(TLB_SIZE).fill(-1);
  private readonly otherTagHi = new Int32Array(TLB_SIZE);
  private readonly otherPage = new Float64Array(TLB_SIZE);
  /**
   * The superpages whose 4 KiB pieces are cached here, as keys of superpageKey: SFENCE.VMA with
   * any address inside a superpage must drop all of it (privileged spec 4.2.1), not just the
   * piece holding that address. [superMin, superMax] bounds their virtual page numbers, so
   * the many fences of 4 KiB pages elsewhere (user pages, the fixmap) need no key lookups.
   */
  private readonly superpages = new Set<number>();
  private superMin = Infinity;
  private superMax = -Infinity;
  /**
   * False while nothing was filled since the last flush, so flush and forget skip their scans
   * (the TLBs of the modes that are not running stay empty).
   */
  private used = true;

  /** `byteOffset` is where the TLB lives in `buffer`; it must be 8-byte aligned. */
  constructor(buffer: ArrayBufferLike, readonly byteOffset: number) {
    this.entries = new Int32Array(buffer, byteOffset, TLB_SIZE * 4);
    this.page = new Float64Array(buffer, byteOffset + TLB_SIZE * TLB_ENTRY_BYTES, TLB_SIZE);
    this.flush();
  }

  fill(lo: number, hi: number, pageAddr: number, ramOffset: number): void {
    const i = (lo >>> 12) & TLB_MASK, e = i << 2;
    this.used = true;
    this.entries[e] = lo & ~0xfff;
    this.entries[e + 1] = hi;
    this.entries[e + 2] = ramOffset;
    this.page[i] = pageAddr;
  }
  /** The RAM offset of virtual address (lo, hi) when its page is cached here, or -1. */
  ramOffsetOf(lo: number, hi: number): number {
    const e = ((lo >>> 12) & TLB_MASK) << 2, t = this.entries;
    return t[e] === (lo & ~0xfff) && t[e + 1] === hi ? t[e + 2] + (lo & 0xfff) : -1;
  }
  /** Caches a page outside the fast path (see otherTagLo). */
  fillOther(lo: number, hi: number, pageAddr: number): void {
    const i = (lo >>> 12) & TLB_MASK;
    this.used = true;
    this.otherTagLo[i] = lo >>> 12;
    this.otherTagHi[i] = hi;
    this.otherPage[i] = pageAddr;
  }
  /** The physical page address of a page cached with fillOther, or -1. */
  other(lo: number, hi: number): number {
    const vpn = lo >>> 12, i = vpn & TLB_MASK;
    return this.otherTagLo[i] === vpn && this.otherTagHi[i] === hi ? this.otherPage[i] : -1;
  }
  /** Notes that pages of the superpage of `level` (1 or more) holding (lo, hi) are cached here. */
  holdsSuperpage(lo: number, hi: number, level: number): void {
    const span = 2 ** (9 * level), first = Math.floor(virtualPage(lo, hi) / span) * span;
    this.superpages.add(superpageKey(lo, hi, level));
    if (first < this.superMin) this.superMin = first;
    if (first + span - 1 > this.superMax) this.superMax = first + span - 1;
  }
  flush(): void {
    if (!this.used) return;
    this.used = false;
    for (let e = 0; e < TLB_SIZE * 4; e += 4) this.entries[e] = -1;
    this.otherTagLo.fill(-1);
    this.superpages.clear();
    this.superMin = Infinity;
    this.superMax = -Infinity;
  }
  /**
   * Drops the translation of the page holding virtual address (lo, hi) (SFENCE.VMA with an
   * address), and every cached piece of a superpage that holds it.
   */
  flushPage(lo: number, hi: number): void {
    const vpn = lo >>> 12, i = vpn & TLB_MASK, e = i << 2;
    if (this.entries[e] === (lo & ~0xfff) && this.entries[e + 1] === hi) this.entries[e] = -1;
    if (this.otherTagLo[i] === vpn && this.otherTagHi[i] === hi) this.otherTagLo[i] = -1;
    const page = virtualPage(lo, hi);
    if (page < this.superMin || page > this.superMax) return;
    for (let level = 1; level <= 3; level++) {
      const key = superpageKey(lo, hi, level);
      if (this.superpages.delete(key)) this.dropSuperpage(key, level);
    }
  }
  /** Drops every entry inside the superpage `key` of `level`. */
  private dropSuperpage(key: number, level: number): void {
    const t = this.entries;
    for (let i = 0; i < TLB_SIZE; i++) {
      if (t[i << 2] !== -1 && superpageKey(t[i << 2], t[(i << 2) + 1], level) === key) t[i << 2] = -1;
      if (this.otherTagLo[i] !== -1 && superpageKey(this.otherTagLo[i] << 12, this.otherTagHi[i], level) === key) this.otherTagLo[i] = -1;
    }
  }
  /** Makes every entry that maps a RAM page marked in `pages` (one element per 4 KiB page) miss. */
  forgetPages(pages: Uint32Array): void {
    if (!this.used) return;
    const t = this.entries;
    for (let e = 0; e < TLB_SIZE * 4; e += 4) if (t[e] !== -1 && pages[t[e + 2] >>> 12] !== 0) t[e] = -1;
  }
  /** Makes every entry that maps RAM page `ramOffset` miss. */
  forget(ramOffset: number): void {
    if (!this.used) return;
    const t = this.entries;
    for (let e = 0; e < TLB_SIZE * 4; e += 4) if (t[e + 2] === ramOffset) t[e] = -1;
  }
}

/**
 * A number naming the superpage of `level` that holds virtual address (lo, hi): its virtual page
 * number shifted right by 9 bits per level, plus the level in the low bits so that levels differ.
 */
function superpageKey(lo: number, hi: number, level: number): number {
  return Math.floor(virtualPage(lo, hi) / 2 ** (9 * level)) * 4 + level;
}

/** The virtual page number of (lo, hi): its bits 12-47 (the rest only sign-extend bit 47 or 38). */
function virtualPage(lo: number, hi: number): number {
  return (hi & 0xffff) * 0x100000 + (lo >>> 12);
}

/** Whether the leaf PTE of the last successful walk had its U bit set. */
export let lastLeafUser = false;
/** The level of that leaf: 0 for a 4 KiB page, 1 for a 2 MiB megapage, 2 for a 1 GiB gigapage, 3 (Sv48) 512 GiB. */
export let lastLeafLevel = 0;

/** Outcome of a walk that did not produce an address. */
export const enum WalkFault { Page = -1, Access = -2 }

const PTE_V = 1, PTE_R = 2, PTE_W = 4, PTE_X = 8, PTE_U = 16, PTE_A = 64, PTE_D = 128;

/** Extracts the 9-bit VPN field for `level` from a virtual address held as (lo, hi). */
function vpnField(lo: number, hi: number, level: number): number {
  const p = 12 + 9 * level;
  if (p + 9 <= 32) return (lo >>> p) & 0x1ff;
  if (p >= 32) return (hi >>> (p - 32)) & 0x1ff;
  return ((lo >>> p) | (hi << (32 - p))) & 0x1ff;
}

/**
 * Sv39/Sv48 page walk (privileged spec 4.3.2) with hardware A/D update.
 * Returns the physical address, or a WalkFault. Reserved PTE bits (Svpbmt, Svnapot, N) are
 * not implemented and fault.
 */
export function walkPageTable(mem: GuestMemory, mode: SatpMode, rootPpn: number, lo: number, hi: number,
  access: Access, priv: Priv, sum: boolean, mxr: boolean): number {
  const levels = mode === SatpMode.Sv39 ? 3 : 4;
  // The address must be sign-extended from its top implemented bit (38 or 47).
  if (levels === 3 ? (hi >> 6) !== ((hi << 25) >> 31) : (hi >> 15) !== ((hi << 16) >> 31)) return WalkFault.Page;
  let table = rootPpn * 4096;
  for (let level = levels - 1; level >= 0; level--) {
    const pteAddr = table + vpnField(lo, hi, level) * 8;
    if (!mem.contains(pteAddr, 8)) return WalkFault.Access;
    const off = pteAddr - mem.base;
    let pteLo = mem.view.getInt32(off, true);
    const pteHi = mem.view.getInt32(off + 4, true);
    if ((pteLo & PTE_V) === 0 || ((pteLo & PTE_R) === 0 && (pteLo & PTE_W) !== 0)) return WalkFault.Page;
    if ((pteHi >>> 22) !== 0) return WalkFault.Page;
    const ppn = (pteHi & 0x3fffff) * 0x400000 + (pteLo >>> 10);
    if ((pteLo & (PTE_R | PTE_X)) === 0) {
      if ((pteLo & (PTE_A | PTE_D | PTE_U)) !== 0) return WalkFault.Page;
      table = ppn * 4096;
      continue;
    }
    // Leaf: permission checks.
    if (priv === Priv.User) {
      if ((pteLo & PTE_U) === 0) return WalkFault.Page;
    } else if ((pteLo & PTE_U) !== 0 && (access === Access.Execute || !sum)) {
      return WalkFault.Page;
    }
    if (access === Access.Read) {
      if ((pteLo & PTE_R) === 0 && !(mxr && (pteLo & PTE_X) !== 0)) return WalkFault.Page;
    } else if (access === Access.Write) {
      if ((pteLo & PTE_W) === 0) return WalkFault.Page;
    } else if ((pteLo & PTE_X) === 0) {
      return WalkFault.Page;
    }
    const span = 2 ** (9 * level);
    if (ppn % span !== 0) return WalkFault.Page; // misaligned superpage
    const wantFlags = PTE_A | (access === Access.Write ? PTE_D : 0);
    if ((pteLo & wantFlags) !== wantFlags) {
      pteLo |= wantFlags;
      mem.view.setInt32(off, pteLo, true);
    }
    const vpn = virtualPage(lo, hi);
    lastLeafUser = (pteLo & PTE_U) !== 0;
    lastLeafLevel = level;
    return (ppn + (vpn % span)) * 4096 + (lo & 0xfff);
  }
  return WalkFault.Page;
}
