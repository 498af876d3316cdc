import type { GuestMemory } from '../../machine/memory.js';
import { scanBlock, type BlockPlan } from './block.js';
import { ModuleTranslator } from './translate.js';

/** The hart as the JIT sees it: slow paths for compiled code and TLB upkeep. */
export interface JitHart {
  compiledLoad(f3: number, lo: number, hi: number): number;
  compiledStore(f3: number, lo: number, hi: number): number;
  forgetWritablePage(ramOffset: number): void;
}

/** Runs block `entry` of a module; see translate.ts for the protocol. */
export type RunFunction = (entry: number, budget: number, stateBase: number) => number;

export interface JitOptions {
  /**
   * Times the interpreter must enter a pc before it is compiled; 0 compiles every block before
   * it first runs (for tests: then compiled code runs even for code that runs once).
   */
  threshold?: number;
  /** Hot blocks compiled together into one module (they can jump to each other directly). */
  batch?: number;
}

/** A translated block, entered through its module's `run`. */
export interface CompiledBlock {
  readonly run: RunFunction;
  readonly index: number;
  readonly ramOff: number;
  readonly pcLo: number;
  readonly pcHi: number;
  readonly module: CompiledModule;
}

interface CompiledModule {
  readonly plans: BlockPlan[];
  readonly blocks: CompiledBlock[];
  /** The FENCE.I epoch in which the module's code bytes were last known to match RAM. */
  epoch: number;
  /** Invalidated: its blocks are gone from every table. */
  dead: boolean;
}

interface PendingBlock { ramOff: number; pcLo: number; pcHi: number }

const LOOKUP_BITS = 14;
const LOOKUP_MASK = (1 << LOOKUP_BITS) - 1;
/** Interpreted block entries after which pending hot blocks are compiled even if the batch is not full. */
const PENDING_PATIENCE = 4096;
/** A page invalidated this often (code and data mixed on it) is no longer compiled. */
const MAX_PAGE_INVALIDATIONS = 32;

/**
 * The JIT of one board, shared by its harts (they run on one thread): finds hot guest code by
 * counting the interpreter's block entries per RAM offset, compiles batches of hot blocks to
 * WebAssembly, and keeps translations coherent with guest memory.
 *
 * Blocks are keyed by the RAM offset of their first instruction and also record the virtual pc
 * they were translated at (pc-relative values are compiled in); the hart translates its pc with
 * its own fetch TLB before every lookup, so satp changes and sfence.vma need nothing here.
 *
 * Coherence: a page holding translated code is marked in `codePages`, and no write TLB entry
 * maps it, so every CPU store to it takes the slow path, which invalidates the page's modules.
 * Devices writing guest RAM (DMA) bypass that; the guest must execute FENCE.I before running
 * code written that way, and FENCE.I makes every module compare its code bytes with RAM before
 * it next runs.
 */
export class Jit {
  /** Nonzero for RAM pages that hold translated code. */
  readonly codePages: Uint8Array;
  /** The hart running compiled code now (helpers called by compiled code act on it). */
  current: JitHart | null = null;
  readonly stats = { blocks: 0, modules: 0, compileMs: 0, invalidatedModules: 0, fenceI: 0 };

  private readonly threshold: number;
  private readonly batch: number;
  private readonly harts: JitHart[] = [];
  /** Direct-mapped lookup table from RAM offset to compiled block. */
  private readonly keys = new Int32Array(1 << LOOKUP_BITS).fill(-1);
  private readonly slots: (CompiledBlock | null)[] = new Array<CompiledBlock | null>(1 << LOOKUP_BITS).fill(null);
  /** Interpreter entries per lookup slot. */
  private readonly counters = new Int32Array(1 << LOOKUP_BITS);
  /** Every live compiled block by RAM offset (the lookup table may have evicted some). */
  private readonly byRamOff = new Map<number, CompiledBlock[]>();
  private readonly pageModules = new Map<number, Set<CompiledModule>>();
  private readonly pageInvalidations: Uint8Array;
  private pending: PendingBlock[] = [];
  private pendingAge = 0;
  private epoch = 0;
  private readonly imports: WebAssembly.Imports;

  constructor(private readonly memory: GuestMemory, options: JitOptions = {}) {
    this.threshold = Math.max(0, options.threshold ?? 64);
    this.batch = Math.max(1, options.batch ?? 16);
    this.codePages = new Uint8Array(memory.size >>> 12);
    this.pageInvalidations = new Uint8Array(memory.size >>> 12);
    this.imports = {
      env: {
        memory: memory.wasmMemory,
        load: (f3: number, lo: number, hi: number): number => this.current!.compiledLoad(f3, lo, hi),
        store: (f3: number, lo: number, hi: number): number => this.current!.compiledStore(f3, lo, hi),
      },
    };
  }

  attach(hart: JitHart): void { this.harts.push(hart); }

  /** The compiled block for virtual pc (pcLo, pcHi) at RAM offset `ramOff`, or null. */
  lookup(ramOff: number, pcLo: number, pcHi: number): CompiledBlock | null {
    const i = (ramOff >>> 1) & LOOKUP_MASK;
    const b = this.keys[i] === ramOff ? this.slots[i]! : null;
    if (b === null || b.pcLo !== pcLo || b.pcHi !== pcHi) return this.threshold === 0 ? this.compileNow(ramOff, pcLo, pcHi) : null;
    if (b.module.epoch !== this.epoch && !this.revalidate(b.module)) return null;
    return b;
  }

  /** Threshold 0: compiles the block at once (null when its first instruction is not translated). */
  private compileNow(ramOff: number, pcLo: number, pcHi: number): CompiledBlock | null {
    this.request(ramOff, pcLo, pcHi);
    this.compilePending();
    const i = (ramOff >>> 1) & LOOKUP_MASK;
    const b = this.keys[i] === ramOff ? this.slots[i]! : null;
    return b !== null && b.pcLo === pcLo && b.pcHi === pcHi ? b : null;
  }

  /** The interpreter ran a block starting at (ramOff, pc): count it, compile when hot. */
  interpreted(ramOff: number, pcLo: number, pcHi: number): void {
    const i = (ramOff >>> 1) & LOOKUP_MASK;
    if (++this.counters[i] === this.threshold) this.request(ramOff, pcLo, pcHi);
    if (this.pending.length > 0 && ++this.pendingAge >= PENDING_PATIENCE) this.compilePending();
  }

  private request(ramOff: number, pcLo: number, pcHi: number): void {
    const existing = this.byRamOff.get(ramOff)?.find((b) => b.pcLo === pcLo && b.pcHi === pcHi);
    if (existing) { this.install(existing); return; } // compiled earlier, evicted from the table
    if (this.pageInvalidations[ramOff >>> 12] >= MAX_PAGE_INVALIDATIONS) return;
    if (this.pending.some((p) => p.ramOff === ramOff && p.pcLo === pcLo && p.pcHi === pcHi)) return;
    this.pending.push({ ramOff, pcLo, pcHi });
    if (this.pending.length >= this.batch) this.compilePending();
  }

  /** Compiles the pending hot blocks into one module. */
  compilePending(): void {
    const pending = this.pending;
    this.pending = [];
    this.pendingAge = 0;
    const plans: BlockPlan[] = [];
    for (const p of pending) {
      const plan = scanBlock(this.memory.view, p.ramOff, p.pcLo, p.pcHi);
      if (plan) plans.push(plan);
    }
    if (plans.length === 0) return;
    const started = performance.now();
    const bytes = new ModuleTranslator(this.memory.wasmMemory.buffer.byteLength >>> 16, plans).translate();
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), this.imports);
    const run = instance.exports.run as RunFunction;
    const module: CompiledModule = { plans, blocks: [], epoch: this.epoch, dead: false };
    plans.forEach((plan, index) => {
      const block: CompiledBlock = { run, index, ramOff: plan.ramOff, pcLo: plan.pcLo, pcHi: plan.pcHi, module };
      module.blocks.push(block);
      let list = this.byRamOff.get(plan.ramOff);
      if (!list) { list = []; this.byRamOff.set(plan.ramOff, list); }
      list.push(block);
      this.install(block);
      this.markCode(plan.ramOff >>> 12, module);
    });
    this.stats.blocks += plans.length;
    this.stats.modules++;
    this.stats.compileMs += performance.now() - started;
  }

  private install(block: CompiledBlock): void {
    const i = (block.ramOff >>> 1) & LOOKUP_MASK;
    this.keys[i] = block.ramOff;
    this.slots[i] = block;
    this.counters[i] = 0;
  }

  private markCode(page: number, module: CompiledModule): void {
    let set = this.pageModules.get(page);
    if (!set) { set = new Set(); this.pageModules.set(page, set); }
    set.add(module);
    if (this.codePages[page] === 0) {
      this.codePages[page] = 1;
      for (const h of this.harts) h.forgetWritablePage(page << 12);
    }
  }

  /** A CPU store reached RAM page `page`, which holds translated code: drop its translations. */
  invalidatePage(page: number): void {
    const set = this.pageModules.get(page);
    if (set) for (const m of [...set]) this.invalidate(m);
    this.codePages[page] = 0;
    if (this.pageInvalidations[page] < 255) this.pageInvalidations[page]++;
  }

  private invalidate(module: CompiledModule): void {
    if (module.dead) return;
    module.dead = true;
    for (const b of module.blocks) {
      const i = (b.ramOff >>> 1) & LOOKUP_MASK;
      if (this.slots[i] === b) { this.keys[i] = -1; this.slots[i] = null; this.counters[i] = 0; }
      const list = this.byRamOff.get(b.ramOff);
      if (list) {
        const rest = list.filter((x) => x !== b);
        if (rest.length > 0) this.byRamOff.set(b.ramOff, rest); else this.byRamOff.delete(b.ramOff);
      }
      const page = b.ramOff >>> 12;
      const set = this.pageModules.get(page);
      if (set) {
        set.delete(module);
        if (set.size === 0) { this.pageModules.delete(page); this.codePages[page] = 0; }
      }
    }
    this.stats.invalidatedModules++;
  }

  /** FENCE.I on any hart: translations are checked against RAM before they run again. */
  fenceI(): void {
    this.epoch++;
    this.stats.fenceI++;
  }

  private revalidate(module: CompiledModule): boolean {
    const bytes = this.memory.bytes;
    for (const p of module.plans) {
      const code = p.code;
      for (let i = 0; i < code.length; i++) {
        if (bytes[p.ramOff + i] !== code[i]) { this.invalidate(module); return false; }
      }
    }
    module.epoch = this.epoch;
    return true;
  }
}
