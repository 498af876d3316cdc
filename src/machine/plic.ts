/**
 * SiFive PLIC as QEMU's virt board instantiates it: sources 1..sources-1 (source 0 does
 * not exist), 7 priority levels, and two contexts per hart, M-mode then S-mode, so
 * context `2*hart` is hart's M-mode external interrupt and `2*hart+1` its S-mode one.
 *
 * Inputs are level-triggered wires. A source becomes pending while its line is high; a
 * claim clears the pending bit and marks the source claimed, and a claimed source does
 * not become pending again until the claim is completed, at which point a line that is
 * still high makes it pending again. A context's output (MEIP/SEIP) is high while some
 * source that is pending, not claimed and enabled for it has a priority above its
 * threshold; that is also the source a claim returns (highest priority, then lowest id).
 *
 * Only aligned 32-bit accesses are honoured, as on QEMU; anything else is ignored and
 * reads as 0.
 */
import type { AccessWidth, IrqLine, MmioDevice } from '../devices/mmio.js';
import { restoreArray, savedObject } from '../hw/snapshot-state.js';

export enum PlicReg {
  /** 4 bytes of priority per source. */
  Priority = 0x0,
  /** Pending bits, 32 sources per word (read-only). */
  Pending = 0x1000,
  /** Enable bits of context 0; each context has `EnableStride` bytes. */
  Enable = 0x2000,
  EnableStride = 0x80,
  /** Threshold of context 0; each context has `ContextStride` bytes. */
  Context = 0x20_0000,
  ContextStride = 0x1000,
}

/** Offsets within a context's `ContextStride` block. */
export enum PlicContextReg {
  Threshold = 0x0,
  ClaimComplete = 0x4,
}

export type PlicMode = 'M' | 'S';

/** Priorities and thresholds are 3 bits wide (QEMU virt: 7 levels, 0 = never). */
const PRIORITY_MASK = 7;

/** Context index for `hart`'s M- or S-mode external interrupt. */
export function plicContext(hart: number, mode: PlicMode): number {
  return hart * 2 + (mode === 'S' ? 1 : 0);
}

/** What Plic.save() returns: each register array as a list of numbers. */
export interface PlicState {
  priority: number[]; pending: number[]; claimed: number[]; level: number[];
  enable: number[]; threshold: number[]; output: number[];
}

export class Plic implements MmioDevice {
  readonly name = 'plic';
  /** Registers up to the last context's claim/complete word. */
  readonly size: number;
  /**
   * Claims that returned a source, and claims that found none. Linux's handler claims until it
   * reads 0, so one empty claim per interrupt taken is normal; many more mean harts take
   * interrupts whose wire was already lowered (a hart that sees its wires late).
   */
  readonly claims = { served: 0, empty: 0 };

  private readonly contexts: number;
  private readonly words: number;
  private readonly priority: Uint32Array;
  private readonly pending: Uint32Array;
  private readonly claimed: Uint32Array;
  /** Current input level of each source's wire. */
  private readonly level: Uint32Array;
  /** `words` enable words per context. */
  private readonly enable: Uint32Array;
  private readonly threshold: Uint32Array;
  /** Last output level reported per context, so callbacks fire only on change. */
  private readonly output: Uint8Array;
  /** Writable bits of each enable word: sources that exist (not 0, not >= sources). */
  private readonly validBits: Uint32Array;

  constructor(
    harts: number,
    private readonly sources: number,
    private readonly onContextLevel: (hart: number, mode: PlicMode, level: boolean) => void,
  ) {
    if (sources < 2 || sources > 1024) throw new RangeError(`PLIC: unsupported source count ${sources}`);
    this.contexts = harts * 2;
    this.words = Math.ceil(sources / 32);
    this.size = PlicReg.Context + this.contexts * PlicReg.ContextStride;
    this.priority = new Uint32Array(sources);
    this.pending = new Uint32Array(this.words);
    this.claimed = new Uint32Array(this.words);
    this.level = new Uint32Array(this.words);
    this.enable = new Uint32Array(this.contexts * this.words);
    this.threshold = new Uint32Array(this.contexts);
    this.output = new Uint8Array(this.contexts);
    this.validBits = new Uint32Array(this.words);
    for (let irq = 1; irq < sources; irq++) this.validBits[irq >> 5] |= 1 << (irq & 31);
  }

  /** The wire for source `irq` (1..sources-1). */
  line(irq: number): IrqLine {
    if (!Number.isInteger(irq) || irq < 1 || irq >= this.sources) {
      throw new RangeError(`PLIC: no interrupt source ${irq}`);
    }
    return { set: (level) => this.setLevel(irq, level) };
  }

  read(offset: number, width: AccessWidth): number {
    if (width !== 4 || (offset & 3) !== 0) return 0;

    if (offset < PlicReg.Pending) {
      const irq = offset >> 2;
      return irq < this.sources ? this.priority[irq] : 0;
    }
    if (offset < PlicReg.Enable) {
      const word = (offset - PlicReg.Pending) >> 2;
      return word < this.words ? this.pending[word] : 0;
    }
    if (offset < PlicReg.Context) {
      const ctx = Math.floor((offset - PlicReg.Enable) / PlicReg.EnableStride);
      const word = ((offset - PlicReg.Enable) % PlicReg.EnableStride) >> 2;
      return ctx < this.contexts && word < this.words ? this.enable[ctx * this.words + word] : 0;
    }
    const ctx = Math.floor((offset - PlicReg.Context) / PlicReg.ContextStride);
    if (ctx >= this.contexts) return 0;
    switch ((offset - PlicReg.Context) % PlicReg.ContextStride) {
      case PlicContextReg.Threshold:
        return this.threshold[ctx];
      case PlicContextReg.ClaimComplete:
        return this.claim(ctx);
      default:
        return 0;
    }
  }

  write(offset: number, width: AccessWidth, value: number): void {
    if (width !== 4 || (offset & 3) !== 0) return;
    value >>>= 0;

    if (offset < PlicReg.Pending) {
      const irq = offset >> 2;
      if (irq === 0 || irq >= this.sources) return;
      this.priority[irq] = value & PRIORITY_MASK;
      this.update();
      return;
    }
    if (offset < PlicReg.Enable) return; // pending bits are read-only
    if (offset < PlicReg.Context) {
      const ctx = Math.floor((offset - PlicReg.Enable) / PlicReg.EnableStride);
      const word = ((offset - PlicReg.Enable) % PlicReg.EnableStride) >> 2;
      if (ctx >= this.contexts || word >= this.words) return;
      this.enable[ctx * this.words + word] = value & this.validBits[word];
      this.update();
      return;
    }
    const ctx = Math.floor((offset - PlicReg.Context) / PlicReg.ContextStride);
    if (ctx >= this.contexts) return;
    switch ((offset - PlicReg.Context) % PlicReg.ContextStride) {
      case PlicContextReg.Threshold:
        this.threshold[ctx] = value & PRIORITY_MASK;
        this.update();
        break;
      case PlicContextReg.ClaimComplete:
        this.complete(value);
        break;
    }
  }

  /** The level this PLIC drives on hart `hart`'s external interrupt wire of privilege `mode`. */
  outputLevel(hart: number, mode: 'M' | 'S'): boolean {
    return this.output[hart * 2 + (mode === 'S' ? 1 : 0)] === 1;
  }

  /** Priorities, pending/claimed/level bits, enables, thresholds and output levels, for a snapshot. */
  save(): PlicState {
    return {
      priority: [...this.priority], pending: [...this.pending], claimed: [...this.claimed], level: [...this.level],
      enable: [...this.enable], threshold: [...this.threshold], output: [...this.output],
    };
  }

  /**
   * Restores save()'s state into a PLIC of the same shape. The output levels are restored as
   * they were, without callbacks: the harts restore their own view of the wires (mip).
   */
  restore(saved: unknown): void {
    const s = savedObject('plic', saved);
    restoreArray('plic.priority', s.priority, this.priority);
    restoreArray('plic.pending', s.pending, this.pending);
    restoreArray('plic.claimed', s.claimed, this.claimed);
    restoreArray('plic.level', s.level, this.level);
    restoreArray('plic.enable', s.enable, this.enable);
    restoreArray('plic.threshold', s.threshold, this.threshold);
    restoreArray('plic.output', s.output, this.output);
  }

  private setLevel(irq: number, high: boolean): void {
    const word = irq >> 5;
    const bit = 1 << (irq & 31);
    const wasHigh = (this.level[word] & bit) !== 0;
    if (high === wasHigh) return;
    if (high) {
      this.level[word] |= bit;
      if ((this.claimed[word] & bit) === 0) this.pending[word] |= bit;
    } else {
      // Level-triggered: a request withdrawn before it was claimed is no longer pending.
      this.level[word] &= ~bit;
      this.pending[word] &= ~bit;
    }
    this.update();
  }

  private claim(ctx: number): number {
    const irq = this.best(ctx);
    if (irq === 0) {
      this.claims.empty++;
      return 0;
    }
    this.claims.served++;
    const bit = 1 << (irq & 31);
    this.pending[irq >> 5] &= ~bit;
    this.claimed[irq >> 5] |= bit;
    this.update();
    return irq;
  }

  /**
   * Completion is accepted from any context, whether or not the source is enabled there
   * (QEMU does the same; the spec would ignore it for a disabled source, which can strand
   * a claim when Linux moves an interrupt's affinity between claim and complete).
   */
  private complete(irq: number): void {
    if (irq === 0 || irq >= this.sources) return;
    const word = irq >> 5;
    const bit = 1 << (irq & 31);
    if ((this.claimed[word] & bit) === 0) return;
    this.claimed[word] &= ~bit;
    if (this.level[word] & bit) this.pending[word] |= bit;
    this.update();
  }

  /** The source a claim by `ctx` would return now, or 0. */
  private best(ctx: number): number {
    let bestIrq = 0;
    let bestPriority = this.threshold[ctx];
    const base = ctx * this.words;
    for (let word = 0; word < this.words; word++) {
      let candidates = this.pending[word] & ~this.claimed[word] & this.enable[base + word];
      while (candidates !== 0) {
        const bitIndex = 31 - Math.clz32(candidates & -candidates);
        candidates &= candidates - 1;
        const irq = (word << 5) | bitIndex;
        if (this.priority[irq] > bestPriority) {
          bestPriority = this.priority[irq];
          bestIrq = irq;
        }
      }
    }
    return bestIrq;
  }

  private update(): void {
    for (let ctx = 0; ctx < this.contexts; ctx++) {
      const level = this.best(ctx) !== 0 ? 1 : 0;
      if (level !== this.output[ctx]) {
        this.output[ctx] = level;
        this.onContextLevel(ctx >> 1, ctx & 1 ? 'S' : 'M', level === 1);
      }
    }
  }
}
