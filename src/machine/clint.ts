/**
 * SiFive CLINT (the ACLINT MSWI + MTIMER pair at the same addresses), as on QEMU virt:
 * per-hart machine software interrupt bits and machine timer comparators over the
 * shared `mtime` counter, which is the board's VirtualClock.
 *
 * All registers are 32 bits wide; the bus splits 64-bit accesses into two 32-bit ones,
 * low word first. Narrower accesses and unmapped offsets are ignored (reads return 0).
 */
import type { AccessWidth, MmioDevice } from '../devices/mmio.js';
import type { VirtualClock } from './clock.js';
import { restoreArray, savedObject } from '../hw/snapshot-state.js';

export enum ClintReg {
  /** msip[hart]: 4 bytes per hart, only bit 0 is writable. */
  Msip = 0x0000,
  /** mtimecmp[hart]: 8 bytes per hart. */
  Mtimecmp = 0x4000,
  /** mtime: 8 bytes, shared by all harts. */
  Mtime = 0xbff8,
}

export const CLINT_SIZE = 0x10000;

const TWO_32 = 0x1_0000_0000;

/** What Clint.save() returns. */
export interface ClintState { msip: number[]; cmpLo: number[]; cmpHi: number[]; mtip: number[] }

export class Clint implements MmioDevice {
  readonly name = 'clint';
  readonly size = CLINT_SIZE;

  private readonly msip: Uint8Array;
  /** mtimecmp halves; kept exact as two words because guests write them one at a time. */
  private readonly cmpLo: Uint32Array;
  private readonly cmpHi: Uint32Array;
  /** mtimecmp as a number for comparisons (inexact above 2^53, which is never reached). */
  private readonly cmp: Float64Array;
  /** Last MTIP level reported per hart. */
  private readonly mtip: Uint8Array;
  /**
   * High word of mtime captured when the low word was read, returned by an immediately
   * following high-word read so a split 64-bit load cannot see a carry between halves.
   */
  private latchedMtimeHi: number | null = null;

  constructor(
    private readonly harts: number,
    private readonly clock: VirtualClock,
    private readonly onSoftware: (hart: number, level: boolean) => void,
    private readonly onTimer: (hart: number, level: boolean) => void,
  ) {
    this.msip = new Uint8Array(harts);
    // Comparators start at the maximum so no timer fires before the guest programs one.
    this.cmpLo = new Uint32Array(harts).fill(0xffff_ffff);
    this.cmpHi = new Uint32Array(harts).fill(0xffff_ffff);
    this.cmp = new Float64Array(harts).fill(0xffff_ffff * TWO_32 + 0xffff_ffff);
    this.mtip = new Uint8Array(harts);
  }

  /** The levels this CLINT drives on hart `hart`'s software and timer interrupt wires. */
  levels(hart: number): { msip: boolean; mtip: boolean } {
    return { msip: this.msip[hart] === 1, mtip: this.mtip[hart] === 1 };
  }

  /** MSIP bits, comparators and the reported MTIP levels, for a snapshot (mtime is the board's clock). */
  save(): ClintState {
    return { msip: [...this.msip], cmpLo: [...this.cmpLo], cmpHi: [...this.cmpHi], mtip: [...this.mtip] };
  }

  restore(saved: unknown): void {
    const s = savedObject('clint', saved);
    restoreArray('clint.msip', s.msip, this.msip);
    restoreArray('clint.cmpLo', s.cmpLo, this.cmpLo);
    restoreArray('clint.cmpHi', s.cmpHi, this.cmpHi);
    restoreArray('clint.mtip', s.mtip, this.mtip);
    for (let hart = 0; hart < this.harts; hart++) this.cmp[hart] = this.cmpHi[hart] * TWO_32 + this.cmpLo[hart];
    this.latchedMtimeHi = null;
  }

  /** Re-evaluates every hart's MTIP against the clock; call it periodically. */
  update(): void {
    const now = this.clock.now();
    for (let hart = 0; hart < this.harts; hart++) this.evaluate(hart, now);
  }

  /** The earliest mtimecmp over all harts, in clock ticks (may already be past). */
  nextDeadline(): number {
    let earliest = Infinity;
    for (let hart = 0; hart < this.harts; hart++) earliest = Math.min(earliest, this.cmp[hart]);
    return earliest;
  }

  read(offset: number, width: AccessWidth): number {
    const latched = this.latchedMtimeHi;
    this.latchedMtimeHi = null;
    if (width !== 4 || (offset & 3) !== 0) return 0;

    if (offset === ClintReg.Mtime) {
      const now = this.clock.now();
      this.latchedMtimeHi = Math.floor(now / TWO_32) >>> 0;
      return now >>> 0;
    }
    if (offset === ClintReg.Mtime + 4) {
      return latched ?? Math.floor(this.clock.now() / TWO_32) >>> 0;
    }
    const msipHart = this.msipHart(offset);
    if (msipHart >= 0) return this.msip[msipHart];
    const cmpHart = this.mtimecmpHart(offset);
    if (cmpHart >= 0) return offset & 4 ? this.cmpHi[cmpHart] : this.cmpLo[cmpHart];
    return 0;
  }

  write(offset: number, width: AccessWidth, value: number): void {
    this.latchedMtimeHi = null;
    if (width !== 4 || (offset & 3) !== 0) return;
    value >>>= 0;

    if (offset === ClintReg.Mtime || offset === ClintReg.Mtime + 4) {
      const now = this.clock.now();
      const lo = offset === ClintReg.Mtime ? value : now >>> 0;
      const hi = offset === ClintReg.Mtime ? Math.floor(now / TWO_32) : value;
      this.clock.set(hi * TWO_32 + lo);
      this.update();
      return;
    }
    const msipHart = this.msipHart(offset);
    if (msipHart >= 0) {
      const level = value & 1;
      if (level !== this.msip[msipHart]) {
        this.msip[msipHart] = level;
        this.onSoftware(msipHart, level === 1);
      }
      return;
    }
    const cmpHart = this.mtimecmpHart(offset);
    if (cmpHart >= 0) {
      if (offset & 4) this.cmpHi[cmpHart] = value;
      else this.cmpLo[cmpHart] = value;
      this.cmp[cmpHart] = this.cmpHi[cmpHart] * TWO_32 + this.cmpLo[cmpHart];
      this.evaluate(cmpHart, this.clock.now());
    }
  }

  private evaluate(hart: number, now: number): void {
    const level = now >= this.cmp[hart] ? 1 : 0;
    if (level !== this.mtip[hart]) {
      this.mtip[hart] = level;
      this.onTimer(hart, level === 1);
    }
  }

  /** Hart whose msip word is at `offset`, or -1. */
  private msipHart(offset: number): number {
    const hart = (offset - ClintReg.Msip) >> 2;
    return offset >= ClintReg.Msip && hart < this.harts ? hart : -1;
  }

  /** Hart whose mtimecmp (either word) is at `offset`, or -1. */
  private mtimecmpHart(offset: number): number {
    const hart = (offset - ClintReg.Mtimecmp) >> 3;
    return offset >= ClintReg.Mtimecmp && hart < this.harts ? hart : -1;
  }
}
