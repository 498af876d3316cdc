import { RAM_OFFSET } from '../../hw/memory.js';
import { Mstatus } from '../csr.js';
import { HartState } from '../hart-state.js';
import { TLB_INDEX_MASK, TlbField } from '../mmu.js';
import { branchOffset, fenceOrdersStoreLoad, jalOffset, Opcode } from '../opcode.js';
import { BlockEnd, blockKey, InsnKind, type BlockInsn, type BlockPlan } from './block.js';
import { JUMP_CACHE_MASK, JumpCacheField } from './dispatcher.js';
import { AtomicOp, FunctionBody, ModuleWriter, Op, ValType } from './wasm.js';

/**
 * Translates blocks of RISC-V code to one WebAssembly module.
 *
 * Each block becomes a function `(base, n, budget) -> i32` (exported as "b<index>"), run on the
 * hart whose state slot starts at byte `base` of the shared memory, with `n` instructions
 * retired so far in this call from JavaScript. Control passes from block to block by tail
 * calls, so the wasm stack stays flat and registers live in a few locals of one small function
 * (which V8 optimizes well). A constant target (a branch or JAL) on the same virtual page is
 * the block at the same physical page; on another page, the one at the RAM offset the fetch
 * TLB mapped it to when translating, checked again before jumping. Such a target in the same
 * module is called directly (on another page, as long as that page's version shows its blocks
 * were not dropped: see JitLayout.pageVersions), a branch back to the block's own start is a
 * loop, and a target compiled before this module is imported and called directly, as long as
 * its slot's generation shows that the slot still holds it (it was not invalidated since).
 * Any other goes through the target's table slot (its number an imported global: ModuleLinks),
 * which holds the target's function once it is compiled (the dispatcher's `jump` calls it: only
 * the dispatcher imports the table, as V8 makes every table.set update each instance that
 * imports the table). A computed target (JALR) first tries the hart's jump cache, which
 * remembers where jumps to a pc went; a miss, and anything else, goes through the dispatcher's
 * `chain` (dispatcher.ts), which finds the block for the pc in the lookup table. Every exit
 * first checks `budget` (that bounds interrupt latency). A block leaves compiled code by
 * returning (n << 2) | RunExit flags, with the pc in the state slot.
 *
 * Guest registers are cached in i64 locals, each loaded before the first instruction that reads
 * it (at entry in a block that loops). A write goes to the local only; the registers written so
 * far on the path (`dirty`) are stored to the state slot before anything that reads the slot:
 * leaving the block (a return, a tail call to another block or the dispatcher) and a helper
 * call. So a loop keeps its registers in locals between iterations.
 * Loads and stores look up the data TLB inline (the same arrays the interpreter fills); on a
 * miss, a page-crossing access, MMIO or a fault the block leaves compiled code before the
 * access (RunExit.Interpret, with that instruction's pc), and the interpreter runs it: it fills
 * the TLB, reaches the device or takes the trap exactly as it would anyway. (A call into the
 * hart there instead would make V8 keep every value live across it in a stack slot, stored on
 * the fast path too.) The fast paths of atomics and FP loads and stores leave the same way.
 * Helper instructions (block.ts InsnKind.Helper) are run by the hart's interpreter through
 * `interpret`, after the pc and retired count of the instruction are written to the slot, so a
 * trap there is precise; it reads and writes registers in the state slot, so the block reloads
 * its rd afterwards, and it says when the block must stop (the pc, privilege, translation or
 * interrupt enables changed).
 */

/**
 * With VESSEL_JIT_NAMES=1 in the environment, each block's function is named after its virtual
 * pc and length (pc_<hi>_<lo>_<instructions>), so a CPU profile (node --cpu-prof) shows which
 * guest code the time went to.
 */
const NAME_BLOCKS = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env.VESSEL_JIT_NAMES === '1';

/** Flags in the low bits of a block's result. */
export const enum RunExit {
  /** The instruction at pc is not translated: the interpreter must run it. */
  Interpret = 1,
  /** A slow path asked for a stop (a device wants attention, translated code was overwritten). */
  Stop = 2,
}

/** The parameters of every block function (the dispatcher calls them through the table): base, n, budget. */
export const BLOCK_PARAMS = [ValType.I32, ValType.I32, ValType.I32];

/** What the translator asks the JIT about blocks outside the module being translated. */
export interface BlockLinker {
  /** The RAM offset the fetch TLB maps virtual pc (lo, hi) to now, or -1. */
  fetchRamOffset(pcLo: number, pcHi: number): number;
  /** Whether the block at (ramOff, pc) is compiled now (then the module calls it directly). */
  compiled(ramOff: number, pcLo: number, pcHi: number): boolean;
}

/** A block start outside the module's own blocks, which the instantiating thread resolves. */
export interface BlockRef { readonly ramOff: number; readonly pcLo: number; readonly pcHi: number }

/**
 * What a module's imports stand for. A module bakes in nothing of one thread's JIT (each
 * numbers its table slots and keeps its slot generations and page versions in a region of its
 * own), so every thread of a VM can instantiate the one compiled module, with its own values:
 * - global s<i>: the table slot of `slots[i]`;
 * - function t<i>: `targets[i]`, compiled before the module and called directly while the
 *   int32 at address ga<i> (its slot's generation) is gv<i>, which a thread where the target is
 *   not compiled makes a value the generation never has;
 * - for calls within the module to its blocks on page `pages[i]`: the int32 at address pa<i>
 *   (the page's version) must be pv<i>.
 */
export interface ModuleLinks {
  readonly slots: BlockRef[];
  readonly targets: BlockRef[];
  readonly pages: number[];
}

/** Where a jump to a constant pc goes. */
interface ExitTarget {
  /** RAM offset of the target (-1: unknown, go through chain). */
  ramOff: number;
  samePage: boolean;
  /** Index of the target in this module, or -1. */
  inModule: number;
  /** Function index of the target's import, or -1 (not compiled before this module). */
  imported: number;
  /**
   * The global holding the target's table slot, or -1 for a target in this module on the
   * caller's page (always called directly).
   */
  slot: number;
  /**
   * For a direct call that may go stale (an import, or a block of this module on another page):
   * the int32 in the wasm memory at the address in global `guardAddress` must still be the
   * value of global `guardValue` (a slot's generation, a page's version); otherwise the call
   * goes through the slot.
   */
  guardAddress: number;
  guardValue: number;
}

// Function indexes: imports first (the fixed ones, then the directly called targets), then the
// blocks.
const IMPORT_INTERPRET = 0, IMPORT_CHAIN = 1, IMPORT_JUMP = 2, IMPORT_CHAIN_CACHED = 3;
const FIXED_IMPORTS = 4;

// Locals of a block function: the parameters, scratch, then the registers it uses and the
// scratch of the inline high multiplies (allocated per block).
const L_BASE = 0, L_N = 1, L_BUDGET = 2, L_ADDR = 3, L_ENT = 4, L_STATUS = 5, L_RTLB = 6, L_WTLB = 7, L_T0 = 8;
const FIXED_LOCALS: ValType[] = [ValType.I32, ValType.I32, ValType.I32, ValType.I32, ValType.I32, ValType.I64];
/** i64 scratch the high multiplies use: operands a, b, then a0 a1 b0 b1 p01 p10. */
const MUL_SCRATCH = 8;

const LOAD_OPS = [Op.I64Load8S, Op.I64Load16S, Op.I64Load32S, Op.I64Load, Op.I64Load8U, Op.I64Load16U, Op.I64Load32U];
const STORE_OPS = [Op.I64Store8, Op.I64Store16, Op.I64Store32, Op.I64Store];

/** 64-bit add of two (lo, hi) pairs, for constants known at translation time. */
function add64(alo: number, ahi: number, blo: number, bhi: number): [number, number] {
  const lo = (alo + blo) | 0;
  return [lo, (ahi + bhi + ((lo >>> 0) < (alo >>> 0) ? 1 : 0)) | 0];
}

/**
 * Whether compiled code does this helper instruction itself when its address hits the TLB:
 * LR, SC and the AMOs that need no comparison (ADD, SWAP, XOR, OR, AND), word and doubleword;
 * FLW, FLD, FSW, FSD.
 */
function hasFastPath(insn: number): boolean {
  const major = (insn >>> 2) & 31, f3 = (insn >>> 12) & 7;
  if (major === Opcode.LoadFp || major === Opcode.StoreFp) return f3 === 2 || f3 === 3;
  if (major !== Opcode.Amo) return false;
  const f5 = insn >>> 27;
  return (f3 === 2 || f3 === 3) && (f5 <= 4 || f5 === 8 || f5 === 12) && (f5 !== 2 || ((insn >>> 20) & 31) === 0);
}

/** The integer registers (not x0) whose locals the compiled form of `ins` reads. */
function insnReads({ insn, kind }: BlockInsn): number[] {
  const major = (insn >>> 2) & 31, rs1 = (insn >>> 15) & 31, rs2 = (insn >>> 20) & 31;
  const reads: number[] = [];
  if (kind === InsnKind.Helper && !hasFastPath(insn)) return reads; // it reads the state slot
  if (major === Opcode.Amo) reads.push(rs1, rs2);
  else if (major === Opcode.LoadFp || major === Opcode.StoreFp) reads.push(rs1); // (rd, rs2: FP registers)
  else {
    if (major !== Opcode.Lui && major !== Opcode.Auipc && major !== Opcode.Jal) reads.push(rs1);
    if (major === Opcode.Op || major === Opcode.Op32 || major === Opcode.Store || major === Opcode.Branch) reads.push(rs2);
  }
  return reads.filter((r) => r !== 0);
}

/**
 * Whether the local of x[rd] holds the register's value after `ins` on every path that goes on
 * in the block: it wrote rd (an atomic's fast path too), or it is a helper call (the block
 * reloads its rd after it). The fast paths of FLW/FLD write a floating-point register; stores
 * and branches have no rd.
 */
function definesRd({ insn, kind }: BlockInsn): boolean {
  const major = (insn >>> 2) & 31;
  if (kind === InsnKind.Helper) return !hasFastPath(insn) || (major !== Opcode.LoadFp && major !== Opcode.StoreFp);
  return major !== Opcode.Store && major !== Opcode.Branch && major !== Opcode.MiscMem;
}

/**
 * Whether compiled code writes x[rd] of `ins` to its local (dirty): as definesRd, but for a
 * helper only an atomic's fast path does (a helper call's rd is reloaded, clean).
 */
function writesRd(ins: BlockInsn): boolean {
  return definesRd(ins) && (ins.kind !== InsnKind.Helper || hasFastPath(ins.insn));
}

/** The registers block `b` uses (each gets a local). */
function registersUsed(b: BlockPlan): number[] {
  const used = new Set<number>();
  for (const ins of b.insns) {
    used.add((ins.insn >>> 7) & 31); // a helper's rd is reloaded after it
    for (const r of insnReads(ins)) used.add(r);
  }
  used.delete(0);
  return [...used];
}

/**
 * The forward branches of block `b` that stay in it: for each instruction, the index of the
 * instruction its taken branch goes on with, or -1 (not a branch, or one that leaves the
 * block). A block's instructions are one path in execution order, so a branch to an
 * instruction further along that path can skip ahead to it. In wasm that is a block opened
 * before the first branch to a target and closed just before the target, so the skips kept
 * (first come, first kept) must nest.
 */
function internalBranches(b: BlockPlan): Int32Array {
  const n = b.insns.length, to = new Int32Array(n).fill(-1);
  /** Per target index, the first branch to it. */
  const first = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const ins = b.insns[i];
    if (ins.kind !== InsnKind.Native || ((ins.insn >>> 2) & 31) !== Opcode.Branch) continue;
    const offset = ins.offset + branchOffset(ins.insn);
    for (let j = i + 1; j < n; j++) {
      if (b.insns[j].offset !== offset) continue;
      to[i] = j;
      if (first[j] < 0) first[j] = i;
      break;
    }
  }
  const kept: { from: number; to: number }[] = [];
  const order = [...first.keys()].filter((j) => first[j] >= 0).sort((x, y) => first[x] - first[y]);
  for (const j of order) {
    const i = first[j];
    const crosses = kept.some((r) => (r.from < i && i < r.to && r.to < j) || (i < r.from && r.from < j && j < r.to));
    if (!crosses) kept.push({ from: i, to: j });
  }
  for (let i = 0; i < n; i++) if (to[i] >= 0 && !kept.some((r) => r.to === to[i])) to[i] = -1;
  return to;
}

/**
 * The constant pcs block `b` may continue at, as leaveTo sees them: taken branches that leave
 * it, JALs it does not follow, and where it falls through.
 */
function constantExits(b: BlockPlan, internal = internalBranches(b)): [number, number][] {
  const targets: [number, number][] = [];
  for (const [i, ins] of b.insns.entries()) {
    const m = (ins.insn >>> 2) & 31;
    if (ins.kind !== InsnKind.Native || (m !== Opcode.Branch && (m !== Opcode.Jal || ins.followed)) || internal[i] >= 0) continue;
    const [pcLo, pcHi] = add64(b.pcLo, b.pcHi, ins.offset, ins.offset >> 31);
    const imm = m === Opcode.Jal ? jalOffset(ins.insn) : branchOffset(ins.insn);
    targets.push(add64(pcLo, pcHi, imm, imm >> 31));
  }
  if (b.end !== BlockEnd.Jump && b.end !== BlockEnd.Interpret) targets.push(add64(b.pcLo, b.pcHi, b.next, b.next >> 31));
  return targets;
}

/**
 * The index of the last instruction of block `b` that may go back to the block's start (a
 * branch or a JAL to it; the number of instructions when its fall-through does), or -1: the
 * instructions up to it are the block's loop.
 */
function lastLoopBack(b: BlockPlan, internal: Int32Array): number {
  const start = (lo: number, hi: number): boolean => lo === b.pcLo && hi === b.pcHi;
  if (b.end === BlockEnd.FallThrough && start(...add64(b.pcLo, b.pcHi, b.next, b.next >> 31))) return b.insns.length;
  for (let i = b.insns.length - 1; i >= 0; i--) {
    const ins = b.insns[i], m = (ins.insn >>> 2) & 31;
    if (ins.kind !== InsnKind.Native || (m !== Opcode.Branch && (m !== Opcode.Jal || ins.followed)) || internal[i] >= 0) continue;
    const imm = m === Opcode.Jal ? jalOffset(ins.insn) : branchOffset(ins.insn);
    if (ins.offset + imm === 0) return i;
  }
  return -1;
}

export class ModuleTranslator {
  private readonly w: ModuleWriter;
  private f = new FunctionBody();
  /** The block being emitted, and its index. */
  private block!: BlockPlan;
  /** Local index of each register the block uses (0 where unused). */
  private regLocals = new Int32Array(32);
  /** First of the MUL_SCRATCH locals, or -1 when the block has no high multiply. */
  private mulScratch = -1;
  /** First of the division scratch locals (two i64 operands, two i32 ones), or -1 when the block divides nowhere. */
  private divScratch = -1;
  /** Level of the loop around the block's body: a branch back to its start continues it. */
  private selfLevel = 0;
  /**
   * Per register, nonzero when its local may be newer than the state slot on the path being
   * emitted: it must be stored before the block leaves or calls a helper (writeBack). Only a
   * register whose local holds its value is ever dirty.
   */
  private readonly dirty = new Uint8Array(32);
  /** Targets compiled before this module, by blockKey: their import's function index and guard globals. */
  private readonly imported = new Map<string, { fn: number; guardAddress: number; guardValue: number }>();
  /** Slot globals by blockKey, and page guard globals by page. */
  private readonly slotGlobals = new Map<string, number>();
  private readonly pageGuards = new Map<number, { guardAddress: number; guardValue: number }>();
  /** What the imports stand for (see ModuleLinks). */
  readonly links: ModuleLinks = { slots: [], targets: [], pages: [] };
  /** Function index of the module's first block. */
  private firstBlock = FIXED_IMPORTS;
  private linked = false;
  /** Type index of the block functions' signature. */
  private blockType = 0;

  /**
   * `concurrent`: harts on other threads share the memory, so AMOs and SC are atomic
   * read-modify-writes and FENCEs host barriers; with all harts on one thread, plain accesses do.
   */
  constructor(memoryPages: number, private readonly blocks: BlockPlan[], private readonly linker: BlockLinker, private readonly concurrent: boolean) {
    this.w = new ModuleWriter(memoryPages);
  }

  /**
   * Declares the imports, asking the linker about every block the module's blocks jump to with
   * constant targets. After this, emitting the blocks asks the linker nothing new (see
   * links.ts: that lets the answers be recorded here and the code be emitted elsewhere).
   */
  link(): void {
    if (this.linked) return;
    this.linked = true;
    const w = this.w;
    this.blockType = w.type(BLOCK_PARAMS, [ValType.I32]);
    w.importFunction('interpret', w.type([ValType.I32], [ValType.I32]));
    w.importFunction('chain', this.blockType);
    w.importFunction('jump', w.type([...BLOCK_PARAMS, ValType.I32], [ValType.I32]));
    w.importFunction('chainCached', w.type([...BLOCK_PARAMS, ValType.I32], [ValType.I32]));
    this.importTargets(this.blockType);
    this.firstBlock = FIXED_IMPORTS + this.links.targets.length;
  }

  /** The module's bytes. */
  translate(): Uint8Array<ArrayBuffer> {
    this.link();
    const w = this.w, blockType = this.blockType;
    this.blocks.forEach((b, i) => {
      this.block = b;
      this.f = new FunctionBody();
      const locals = this.allocateLocals(b);
      this.emitBlock();
      const fn = w.addFunction({ type: blockType, locals, body: this.f });
      w.export(`b${i}`, fn);
      if (NAME_BLOCKS) w.nameFunction(fn, `pc_${(b.pcHi >>> 0).toString(16)}_${(b.pcLo >>> 0).toString(16).padStart(8, '0')}_${b.insns.length}`);
    });
    return w.bytes();
  }

  /** Imports the compiled blocks outside this module that the blocks jump to with constant targets. */
  private importTargets(blockType: number): void {
    for (const b of this.blocks) {
      this.block = b;
      for (const [lo, hi] of constantExits(b)) {
        const t = this.exitTarget(lo, hi);
        if (t.ramOff < 0 || t.inModule >= 0 || t.imported >= 0) continue;
        if (!this.linker.compiled(t.ramOff, lo, hi)) continue;
        const i = this.links.targets.length;
        const fn = this.w.importFunction(`t${i}`, blockType);
        this.imported.set(blockKey(t.ramOff, lo, hi), { fn, guardAddress: this.w.importGlobal(`ga${i}`), guardValue: this.w.importGlobal(`gv${i}`) });
        this.links.targets.push({ ramOff: t.ramOff, pcLo: lo, pcHi: hi });
      }
    }
  }

  /**
   * Where the current block's jump to constant pc (lo, hi) goes. On the same virtual page, the
   * translation that led here holds for the target; elsewhere, assume the mapping the fetch TLB
   * holds now (leaveTo checks it again before jumping).
   */
  private exitTarget(lo: number, hi: number): ExitTarget {
    const b = this.block;
    const samePage = hi === b.pcHi && (lo >>> 12) === (b.pcLo >>> 12);
    const ramOff = samePage ? (b.ramOff & ~0xfff) + (lo & 0xfff) : this.linker.fetchRamOffset(lo, hi);
    const none: ExitTarget = { ramOff, samePage, inModule: -1, imported: -1, slot: -1, guardAddress: 0, guardValue: 0 };
    if (ramOff < 0) return none;
    const inModule = this.blocks.findIndex((t) => t.ramOff === ramOff && t.pcLo === lo && t.pcHi === hi);
    if (inModule >= 0) {
      // A store to the caller's page drops the caller too; one to another page drops only the blocks there.
      const page = ramOff >>> 12;
      if (page === b.ramOff >>> 12) return { ...none, inModule };
      return { ...none, inModule, slot: this.slotGlobal(ramOff, lo, hi), ...this.pageGuard(page) };
    }
    const imported = this.imported.get(blockKey(ramOff, lo, hi));
    if (imported) return { ...none, imported: imported.fn, slot: this.slotGlobal(ramOff, lo, hi), ...imported };
    return { ...none, slot: this.slotGlobal(ramOff, lo, hi) };
  }

  /** The global holding the table slot of the block at (ramOff, pc). */
  private slotGlobal(ramOff: number, lo: number, hi: number): number {
    const key = blockKey(ramOff, lo, hi);
    let global = this.slotGlobals.get(key);
    if (global === undefined) {
      global = this.w.importGlobal(`s${this.links.slots.length}`);
      this.slotGlobals.set(key, global);
      this.links.slots.push({ ramOff, pcLo: lo, pcHi: hi });
    }
    return global;
  }

  /** The globals of page `page`'s version guard. */
  private pageGuard(page: number): { guardAddress: number; guardValue: number } {
    let guard = this.pageGuards.get(page);
    if (!guard) {
      const i = this.links.pages.length;
      guard = { guardAddress: this.w.importGlobal(`pa${i}`), guardValue: this.w.importGlobal(`pv${i}`) };
      this.pageGuards.set(page, guard);
      this.links.pages.push(page);
    }
    return guard;
  }

  /**
   * Assigns locals to the registers block `b` uses; returns the types
   * of all locals after the parameters.
   */
  private allocateLocals(b: BlockPlan): ValType[] {
    const used = registersUsed(b);
    const locals = [...FIXED_LOCALS];
    // A local's index counts the parameters before it.
    const next = (): number => BLOCK_PARAMS.length + locals.length;
    this.regLocals.fill(0);
    for (const r of used) { this.regLocals[r] = next(); locals.push(ValType.I64); }
    const mulHigh = b.insns.some(({ insn, kind }) => kind === InsnKind.Native && ((insn >>> 2) & 31) === Opcode.Op &&
      (insn >>> 25) === 1 && ((insn >>> 12) & 7) >= 1 && ((insn >>> 12) & 7) <= 3);
    this.mulScratch = -1;
    if (mulHigh) {
      this.mulScratch = next();
      for (let i = 0; i < MUL_SCRATCH; i++) locals.push(ValType.I64);
    }
    const divRem = b.insns.some(({ insn, kind }) => kind === InsnKind.Native && (insn >>> 25) === 1 &&
      (((insn >>> 2) & 31) === Opcode.Op || ((insn >>> 2) & 31) === Opcode.Op32) && ((insn >>> 12) & 7) >= 4);
    this.divScratch = -1;
    if (divRem) {
      this.divScratch = next();
      locals.push(ValType.I64, ValType.I64, ValType.I32, ValType.I32);
    }
    return locals;
  }

  // ---- a block function ----

  private emitBlock(): void {
    const b = this.block, f = this.f;
    const major = (insn: number): number => (insn >>> 2) & 31;
    // A register's local is loaded from the state slot before the first instruction that reads
    // it, and a TLB pointer before the first access that needs it: a block that leaves early
    // (most leave by a branch after a few instructions) loads only what that path uses. A block
    // that loops to its start loads what the loop's instructions (those up to the last one that
    // goes back to the start) use once, before the loop, the registers they only write too:
    // from the second time round they are dirty from the first, so they count as dirty from the
    // start. The instructions after the loop load lazily again, so the registers only they use
    // are not live in the loop (V8 spills to the stack when the live values outnumber the host's
    // registers: a 64-instruction block around a 7-instruction loop kept 8 spill slots in it).
    const internal = internalBranches(b);
    const loopEnd = lastLoopBack(b, internal);
    const loops = loopEnd >= 0;
    // loaded[r]: the local of x[r] holds its value; [READ_TLB], [WRITE_TLB]: those pointers.
    const READ_TLB = 32, WRITE_TLB = 33;
    const loaded = new Uint8Array(34);
    const prepare = (ins: BlockInsn): void => {
      const m = major(ins.insn), fast = hasFastPath(ins.insn), lr = m === Opcode.Amo && (ins.insn >>> 27) === 2;
      const native = ins.kind === InsnKind.Native;
      if (!loaded[READ_TLB] && ((native && m === Opcode.Load) || (fast && (m === Opcode.LoadFp || lr)))) {
        f.get(L_BASE); f.mem(Op.I32Load, 2, HartState.ReadTlb); f.set(L_RTLB); loaded[READ_TLB] = 1;
      }
      if (!loaded[WRITE_TLB] && ((native && m === Opcode.Store) || (fast && (m === Opcode.StoreFp || (m === Opcode.Amo && !lr))))) {
        f.get(L_BASE); f.mem(Op.I32Load, 2, HartState.WriteTlb); f.set(L_WTLB); loaded[WRITE_TLB] = 1;
      }
      for (const r of insnReads(ins)) {
        if (loaded[r]) continue;
        this.loadReg(r);
        loaded[r] = 1;
      }
    };
    this.dirty.fill(0);
    if (loops) {
      const body = b.insns.slice(0, loopEnd + 1);
      for (const ins of body) prepare(ins);
      for (const ins of body) {
        const rd = (ins.insn >>> 7) & 31;
        if (rd === 0 || !writesRd(ins)) continue;
        if (!loaded[rd]) { this.loadReg(rd); loaded[rd] = 1; }
        this.dirty[rd] = 1;
      }
    }
    this.selfLevel = f.open(loops ? Op.Loop : Op.Block);
    // Skips ahead (internalBranches): the wasm block each target closes, what is loaded on
    // every path that reaches the target (a path that skipped loads nothing of what it skipped)
    // and what is dirty on any of the skipping paths.
    /** By instruction index: the targets of the skips whose first branch it is, furthest first. */
    const opens = new Map<number, number[]>();
    for (const j of new Set(internal)) {
      if (j < 0) continue;
      const first = internal.indexOf(j);
      opens.set(first, [...(opens.get(first) ?? []), j].sort((x, y) => y - x));
    }
    const skips = new Map<number, { level: number; loaded: Uint8Array | null; dirty: Uint8Array }>();
    let k = 0;
    for (const ins of b.insns) {
      const [pcLo, pcHi] = add64(b.pcLo, b.pcHi, ins.offset, ins.offset >> 31);
      const m = major(ins.insn);
      const joined = skips.get(k);
      if (joined) {
        // A register dirty here whose local a skipping path did not load must reach the slot
        // on this path: after the join its local may not hold its value.
        for (let r = 1; r < 32; r++) {
          if (this.dirty[r] && !joined.loaded![r]) {
            this.storeReg(r);
            this.dirty[r] = 0;
          }
        }
        f.close();
        for (let r = 0; r < loaded.length; r++) loaded[r] &= joined.loaded![r];
        for (let r = 0; r < 32; r++) this.dirty[r] |= joined.dirty[r];
        skips.delete(k);
      }
      for (const j of opens.get(k) ?? []) skips.set(j, { level: f.open(Op.Block), loaded: null, dirty: new Uint8Array(32) });
      prepare(ins);
      if (internal[k] >= 0) {
        const skip = skips.get(internal[k])!;
        // A later skip to the same target stores what is dirty here but not loaded on an
        // earlier one (whose paths then meet this one's with that local not holding its value).
        const flush: number[] = [];
        if (skip.loaded) for (let r = 1; r < 32; r++) if (this.dirty[r] && !skip.loaded[r]) flush.push(r);
        this.emitSkip(ins.insn, k, internal[k], skip.level, flush);
        if (skip.loaded) for (let r = 0; r < loaded.length; r++) skip.loaded[r] &= loaded[r];
        else skip.loaded = loaded.slice();
        for (let r = 0; r < 32; r++) if (!flush.includes(r)) skip.dirty[r] |= this.dirty[r];
      } else if (m === Opcode.LoadFp || m === Opcode.StoreFp) {
        if (hasFastPath(ins.insn)) this.emitFpMemory(ins.insn, ins.length, pcLo, pcHi, k);
        else this.emitHelper(ins.insn, ins.length, pcLo, pcHi, k);
      } else if (hasFastPath(ins.insn)) this.emitAtomic(ins.insn, ins.length, pcLo, pcHi, k);
      else if (ins.kind === InsnKind.Helper) this.emitHelper(ins.insn, ins.length, pcLo, pcHi, k);
      else this.emitInsn(ins.insn, ins.length, pcLo, pcHi, k, ins.followed);
      if (definesRd(ins)) loaded[(ins.insn >>> 7) & 31] = 1;
      k++;
    }
    if (b.end !== BlockEnd.Jump) { // (a jump has left already)
      const [nextLo, nextHi] = add64(b.pcLo, b.pcHi, b.next, b.next >> 31);
      if (b.end === BlockEnd.Interpret) this.exitConst(nextLo, nextHi, k, RunExit.Interpret);
      else this.leaveTo(nextLo, nextHi, k);
    }
    f.close();
    f.op(Op.Unreachable); // every path has returned
  }

  /** Leaves compiled code with `retired` (k) more instructions and pc = (lo, hi). */
  private exitConst(lo: number, hi: number, retired: number, flags = 0): void {
    const f = this.f;
    f.get(L_BASE); f.i64(lo, hi); f.mem(Op.I64Store, 3, HartState.Pc);
    this.returnRetired(retired, flags);
  }

  private returnRetired(retired: number, flags: number): void {
    const f = this.f;
    this.writeBack();
    f.get(L_N);
    if (retired !== 0) { f.i32(retired); f.op(Op.I32Add); }
    f.i32(2); f.op(Op.I32Shl);
    if (flags !== 0) { f.i32(flags); f.op(Op.I32Or); }
    f.op(Op.Return);
  }

  /**
   * Adds `retired` to n; returns from compiled code (pc = (lo, hi)) when the budget is spent.
   * With `storePc`, the pc is written first in any case (the next hop reads it from the slot).
   */
  private countAndCheckBudget(lo: number, hi: number, retired: number, storePc: boolean): void {
    const f = this.f;
    if (storePc) { f.get(L_BASE); f.i64(lo, hi); f.mem(Op.I64Store, 3, HartState.Pc); }
    f.get(L_N); f.i32(retired); f.op(Op.I32Add); f.tee(L_N);
    f.get(L_BUDGET); f.op(Op.I32GeU);
    f.open(Op.If);
    if (storePc) this.returnRetired(0, 0); else this.exitConst(lo, hi, 0);
    f.close();
  }

  /** Continues at constant pc (lo, hi) after `retired` more instructions: chains when it can. */
  private leaveTo(lo: number, hi: number, retired: number): void {
    const f = this.f, b = this.block;
    if (hi === b.pcHi && lo === b.pcLo) { // back to this block's start: a loop
      this.countAndCheckBudget(lo, hi, retired, false);
      f.br(this.selfLevel);
      return;
    }
    this.leaving(() => this.leaveToBlock(lo, hi, retired));
  }

  /** leaveTo another block, the registers written back already. */
  private leaveToBlock(lo: number, hi: number, retired: number): void {
    const f = this.f;
    const { ramOff, samePage, inModule, imported, slot, guardAddress, guardValue } = this.exitTarget(lo, hi);
    if (ramOff < 0) { this.chainTo(lo, hi, retired); return; }
    if (!samePage) { // check the mapping
      // A fetch TLB hit for the target's page, mapping it to the same RAM page.
      const ok = f.open(Op.Block);
      const fail = f.open(Op.Block);
      f.get(L_BASE); f.mem(Op.I32Load, 2, HartState.ExecTlb); f.i32((lo >>> 8) & TLB_INDEX_MASK); f.op(Op.I32Add); f.tee(L_ENT);
      f.mem(Op.I32Load, 2, TlbField.TagLo); f.i32(lo & ~0xfff); f.op(Op.I32Ne); f.brIf(fail);
      f.get(L_ENT); f.mem(Op.I32Load, 2, TlbField.TagHi); f.i32(hi); f.op(Op.I32Ne); f.brIf(fail);
      f.get(L_ENT); f.mem(Op.I32Load, 2, TlbField.RamOffset); f.i32(ramOff & ~0xfff); f.op(Op.I32Ne); f.brIf(fail);
      f.br(ok);
      f.close();
      this.chainTo(lo, hi, retired);
      f.close();
    }
    this.countAndCheckBudget(lo, hi, retired, false);
    const direct = inModule >= 0 ? this.firstBlock + inModule : imported;
    if (direct >= 0 && slot < 0) { // in this module, on the same page
      this.tailCall(direct);
      return;
    }
    if (direct >= 0) { // directly, while the guard shows the target is still there
      const stale = f.open(Op.Block);
      f.global(guardAddress); f.mem(Op.I32Load, 2, 0); f.global(guardValue); f.op(Op.I32Ne); f.brIf(stale);
      this.tailCall(direct);
      f.close();
    }
    // Through the target's slot; the pc is stored for chain (in case the target is not compiled).
    f.get(L_BASE); f.i64(lo, hi); f.mem(Op.I64Store, 3, HartState.Pc);
    f.get(L_BASE); f.get(L_N); f.get(L_BUDGET); f.global(slot);
    f.byte(Op.ReturnCall); f.u32(IMPORT_JUMP);
  }

  /** Goes on at constant pc (lo, hi) through the dispatcher's lookup. */
  private chainTo(lo: number, hi: number, retired: number): void {
    this.countAndCheckBudget(lo, hi, retired, true);
    this.tailCall(IMPORT_CHAIN);
  }

  /** return_call fn(base, n, budget), the registers written back already. */
  private tailCall(fn: number): void {
    const f = this.f;
    f.get(L_BASE); f.get(L_N); f.get(L_BUDGET);
    f.byte(Op.ReturnCall); f.u32(fn);
  }

  // ---- registers ----

  private reg(r: number): void {
    if (r === 0) this.f.i64(0, 0); else this.f.get(this.regLocals[r]);
  }
  /** Writes the value `value` pushes to x[rd] (its local; the state slot at the next writeBack); for x0 only evaluates it. */
  private setReg(rd: number, value: () => void): void {
    const f = this.f;
    value();
    if (rd === 0) { f.op(Op.Drop); return; }
    f.set(this.regLocals[rd]);
    this.dirty[rd] = 1;
  }

  /** Stores the dirty registers to the state slot (they stay marked: the caller knows whether the path goes on). */
  private writeBack(): void {
    for (let r = 1; r < 32; r++) if (this.dirty[r]) this.storeReg(r);
  }

  /** Loads x[r] from the state slot into its local. */
  private loadReg(r: number): void {
    const f = this.f;
    f.get(L_BASE); f.mem(Op.I64Load, 3, HartState.Regs + 8 * r); f.set(this.regLocals[r]);
  }

  /** Stores the local of x[r] to the state slot. */
  private storeReg(r: number): void {
    const f = this.f;
    f.get(L_BASE); f.get(this.regLocals[r]); f.mem(Op.I64Store, 3, HartState.Regs + 8 * r);
  }

  /**
   * Emits `exit`, code on which the path ends, after storing the dirty registers; the registers
   * stay dirty for the code after it (another path).
   */
  private leaving(exit: () => void): void {
    this.writeBack();
    const dirty = this.dirty.slice();
    this.dirty.fill(0);
    exit();
    this.dirty.set(dirty);
  }

  /**
   * The slow path of a memory access, emitted after its fast path: leaves the block before the
   * access (the interpreter runs it), writing back the registers dirty before the fast path
   * (`dirtyBefore`), not the rd the fast path wrote.
   */
  private slowExit(dirtyBefore: Uint8Array, pcLo: number, pcHi: number, k: number): void {
    const after = this.dirty.slice();
    this.dirty.set(dirtyBefore);
    this.exitConst(pcLo, pcHi, k, RunExit.Interpret);
    this.dirty.set(after);
  }

  /**
   * Records the pc and retired count of instruction k, and the registers, before a helper that
   * may trap (it runs on the state slot).
   */
  private syncForHelper(pcLo: number, pcHi: number, k: number): void {
    const f = this.f;
    this.writeBack();
    this.dirty.fill(0);
    f.get(L_BASE); f.i64(pcLo, pcHi); f.mem(Op.I64Store, 3, HartState.Pc);
    f.get(L_BASE); f.get(L_N);
    if (k !== 0) { f.i32(k); f.op(Op.I32Add); }
    f.mem(Op.I32Store, 2, HartState.Retired);
  }

  // ---- instructions ----

  /** An instruction the hart's interpreter runs (see the class comment). */
  private emitHelper(insn: number, length: number, pcLo: number, pcHi: number, k: number): void {
    const f = this.f, rd = (insn >>> 7) & 31;
    this.syncForHelper(pcLo, pcHi, k);
    f.i32(length); f.call(IMPORT_INTERPRET);
    f.open(Op.If);
    this.returnRetired(k + 1, RunExit.Stop); // the helper wrote the pc
    f.close();
    // The state slot is current (written back before the call), so reloading rd is right
    // whatever the instruction wrote (an integer rd, or a floating-point register and x[rd] unchanged).
    if (rd !== 0) this.loadReg(rd);
  }

  /**
   * LR, SC or an AMO with a fast path (hasFastPath): done here when the aligned address hits the
   * data TLB (the read TLB for LR, the write TLB otherwise, which holds no page of translated
   * code), as the interpreter's Hart.atomic does it; anything else goes to the interpreter.
   */
  private emitAtomic(insn: number, length: number, pcLo: number, pcHi: number, k: number): void {
    const dirtyBefore = this.dirty.slice();
    const f = this.f, rd = (insn >>> 7) & 31, rs1 = (insn >>> 15) & 31, rs2 = (insn >>> 20) & 31;
    const f5 = insn >>> 27, word = ((insn >>> 12) & 7) === 2, width = word ? 4 : 8;
    const done = f.open(Op.Block);
    const slow = f.open(Op.Block);
    this.reg(rs1); f.set(L_T0);
    f.get(L_T0); f.op(Op.I32WrapI64); f.i32(width - 1); f.op(Op.I32And); f.brIf(slow); // misaligned: the interpreter faults
    this.emitLookup(f5 === 2 ? L_RTLB : L_WTLB, width, slow);
    f.set(L_ENT); // the RAM offset of the data
    const loadRaw = (): void => { f.get(L_ENT); f.mem(word ? Op.I64Load32U : Op.I64Load, word ? 2 : 3, RAM_OFFSET); };
    if (f5 === 2) { // LR: reserve the address and the value read
      loadRaw(); f.set(L_T0);
      f.get(L_BASE); f.get(L_T0); f.mem(Op.I64Store, 3, HartState.ReservedValue);
      f.get(L_BASE); f.get(L_ENT); f.mem(Op.I32Store, 2, HartState.Reservation);
      this.setReg(rd, () => { f.get(L_T0); if (word) { f.op(Op.I32WrapI64); f.op(Op.I64ExtendI32S); } });
    } else if (f5 === 3) { // SC: succeeds while the reservation holds and memory still has the value, as one compare-and-swap
      f.get(L_BASE); f.mem(Op.I32Load, 2, HartState.Reservation); f.get(L_ENT); f.op(Op.I32Eq); f.set(L_STATUS);
      f.get(L_BASE); f.i32(-1); f.mem(Op.I32Store, 2, HartState.Reservation);
      f.get(L_STATUS);
      f.open(Op.If);
      // SC.W compares the low word of what the LR read (as the interpreter does).
      const expected = (): void => { f.get(L_BASE); f.mem(word ? Op.I64Load32U : Op.I64Load, word ? 2 : 3, HartState.ReservedValue); };
      if (this.concurrent) {
        f.get(L_ENT); expected(); this.reg(rs2);
        f.atomic(word ? AtomicOp.I64Rmw32CmpxchgU : AtomicOp.I64RmwCmpxchg, word ? 2 : 3, RAM_OFFSET);
        expected(); f.op(Op.I64Eq); f.set(L_STATUS);
      } else {
        loadRaw(); expected(); f.op(Op.I64Eq); f.set(L_STATUS);
        f.get(L_STATUS);
        f.open(Op.If);
        f.get(L_ENT); this.reg(rs2); f.mem(word ? Op.I64Store32 : Op.I64Store, word ? 2 : 3, RAM_OFFSET);
        f.close();
      }
      f.close();
      this.setReg(rd, () => { f.get(L_STATUS); f.op(Op.I32Eqz); f.op(Op.I64ExtendI32U); });
    } else { // AMO: rd = old value (sign-extended for .W), memory = old op x[rs2], atomically
      const ops: Record<number, [AtomicOp, AtomicOp]> = {
        0: [AtomicOp.I64RmwAdd, AtomicOp.I64Rmw32AddU], 1: [AtomicOp.I64RmwXchg, AtomicOp.I64Rmw32XchgU],
        4: [AtomicOp.I64RmwXor, AtomicOp.I64Rmw32XorU], 8: [AtomicOp.I64RmwOr, AtomicOp.I64Rmw32OrU],
        12: [AtomicOp.I64RmwAnd, AtomicOp.I64Rmw32AndU],
      };
      if (this.concurrent) {
        f.get(L_ENT); this.reg(rs2);
        f.atomic(ops[f5][word ? 1 : 0], word ? 2 : 3, RAM_OFFSET);
        if (word) { f.op(Op.I32WrapI64); f.op(Op.I64ExtendI32S); }
        f.set(L_T0);
      } else {
        f.get(L_ENT); f.mem(word ? Op.I64Load32S : Op.I64Load, word ? 2 : 3, RAM_OFFSET); f.set(L_T0);
        f.get(L_ENT);
        if (f5 === 1) { this.reg(rs2); } else {
          f.get(L_T0); this.reg(rs2);
          f.op(f5 === 0 ? Op.I64Add : f5 === 4 ? Op.I64Xor : f5 === 8 ? Op.I64Or : Op.I64And);
        }
        f.mem(word ? Op.I64Store32 : Op.I64Store, word ? 2 : 3, RAM_OFFSET);
      }
      this.setReg(rd, () => f.get(L_T0));
    }
    f.br(done);
    f.close();
    this.slowExit(dirtyBefore, pcLo, pcHi, k);
    f.close();
  }

  /**
   * FLW/FLD/FSW/FSD with a fast path: when the FP unit is on (Dirty already, for a load, which
   * would otherwise dirty it) and the address hits the data TLB, the value moves between memory
   * and the FP register in the state slot (singles NaN-boxed); anything else goes to the
   * interpreter.
   */
  private emitFpMemory(insn: number, length: number, pcLo: number, pcHi: number, k: number): void {
    const f = this.f, load = ((insn >>> 2) & 31) === Opcode.LoadFp, word = ((insn >>> 12) & 7) === 2, width = word ? 4 : 8;
    const rs1 = (insn >>> 15) & 31;
    const done = f.open(Op.Block);
    const slow = f.open(Op.Block);
    f.get(L_BASE); f.mem(Op.I32Load, 2, HartState.Mstatus); f.i32(Mstatus.FS); f.op(Op.I32And);
    if (load) { f.i32(Mstatus.FS); f.op(Op.I32Ne); } else f.op(Op.I32Eqz);
    f.brIf(slow);
    if (load) {
      const rd = (insn >>> 7) & 31, imm = insn >> 20;
      this.effectiveAddress(rs1, imm);
      this.emitLookup(L_RTLB, width, slow);
      f.set(L_ENT);
      f.get(L_BASE);
      f.get(L_ENT); f.mem(word ? Op.I64Load32U : Op.I64Load, word ? 2 : 3, RAM_OFFSET);
      if (word) { f.i64(0, -1); f.op(Op.I64Or); }
      f.mem(Op.I64Store, 3, HartState.FRegs + 8 * rd);
    } else {
      const rs2 = (insn >>> 20) & 31, imm = ((insn >> 25) << 5) | ((insn >>> 7) & 0x1f);
      this.effectiveAddress(rs1, imm);
      this.emitLookup(L_WTLB, width, slow);
      f.get(L_BASE); f.mem(Op.I64Load, 3, HartState.FRegs + 8 * rs2);
      f.mem(word ? Op.I64Store32 : Op.I64Store, word ? 2 : 3, RAM_OFFSET);
    }
    f.br(done);
    f.close();
    this.exitConst(pcLo, pcHi, k, RunExit.Interpret);
    f.close();
  }

  /** Pushes whether branch `insn` is taken. */
  private branchTaken(insn: number): void {
    this.reg((insn >>> 15) & 31); this.reg((insn >>> 20) & 31);
    this.f.op([Op.I64Eq, Op.I64Ne, 0, 0, Op.I64LtS, Op.I64GeS, Op.I64LtU, Op.I64GeU][(insn >>> 12) & 7] as Op);
  }

  /**
   * Branch `insn`, instruction k, taken: on with instruction `to` of the block, by leaving the
   * wasm block at `level`. The code from there counts its instructions as if all `to` before it
   * had run, so n is adjusted by those the branch skipped. The registers in `flush` are stored
   * on the way.
   */
  private emitSkip(insn: number, k: number, to: number, level: number, flush: number[]): void {
    const f = this.f;
    this.branchTaken(insn);
    f.open(Op.If);
    for (const r of flush) this.storeReg(r);
    f.get(L_N); f.i32(k + 1 - to); f.op(Op.I32Add); f.set(L_N);
    f.br(level);
    f.close();
  }

  /** Emits a native instruction; `followed`: a JAL whose target the block continues with. */
  private emitInsn(insn: number, length: number, pcLo: number, pcHi: number, k: number, followed: boolean): void {
    const f = this.f;
    const rd = (insn >>> 7) & 31, rs1 = (insn >>> 15) & 31, rs2 = (insn >>> 20) & 31;
    const f3 = (insn >>> 12) & 7, f7 = insn >>> 25;
    const immI = insn >> 20;
    const [nextLo, nextHi] = add64(pcLo, pcHi, length, 0);
    switch ((insn >>> 2) & 31) {
      case Opcode.Lui: {
        const lo = insn & ~0xfff;
        if (rd !== 0) this.setReg(rd, () => f.i64(lo, lo >> 31));
        return;
      }
      case Opcode.Auipc: {
        const imm = insn & ~0xfff;
        const [lo, hi] = add64(pcLo, pcHi, imm, imm >> 31);
        if (rd !== 0) this.setReg(rd, () => f.i64(lo, hi));
        return;
      }
      case Opcode.OpImm: {
        if (rd === 0) return; // no effect (NOP, HINTs)
        this.setReg(rd, () => {
          this.reg(rs1);
          switch (f3) {
            case 0: f.i64(immI, immI >> 31); f.op(Op.I64Add); break;
            case 1: f.i64(immI & 63, 0); f.op(Op.I64Shl); break;
            case 2: f.i64(immI, immI >> 31); f.op(Op.I64LtS); f.op(Op.I64ExtendI32U); break;
            case 3: f.i64(immI, immI >> 31); f.op(Op.I64LtU); f.op(Op.I64ExtendI32U); break;
            case 4: f.i64(immI, immI >> 31); f.op(Op.I64Xor); break;
            case 5: f.i64(immI & 63, 0); f.op((insn >>> 30) & 1 ? Op.I64ShrS : Op.I64ShrU); break;
            case 6: f.i64(immI, immI >> 31); f.op(Op.I64Or); break;
            default: f.i64(immI, immI >> 31); f.op(Op.I64And); break;
          }
        });
        return;
      }
      case Opcode.OpImm32: {
        if (rd === 0) return;
        this.setReg(rd, () => {
          this.reg(rs1); f.op(Op.I32WrapI64);
          switch (f3) {
            case 0: f.i32(immI); f.op(Op.I32Add); break;
            case 1: f.i32(immI & 31); f.op(Op.I32Shl); break;
            default: f.i32(immI & 31); f.op(f7 === 0x20 ? Op.I32ShrS : Op.I32ShrU); break;
          }
          f.op(Op.I64ExtendI32S);
        });
        return;
      }
      case Opcode.Op: {
        if (rd === 0) return; // no side effects, even for DIV by zero
        this.setReg(rd, () => {
          this.reg(rs1); this.reg(rs2);
          if (f7 === 1) {
            if (f3 === 0) f.op(Op.I64Mul);
            else if (f3 <= 3) this.emitMulHigh(f3);
            else this.emitDivRem(f3, true);
            return;
          }
          switch (f3) {
            case 0: f.op(f7 === 0x20 ? Op.I64Sub : Op.I64Add); break;
            case 1: f.op(Op.I64Shl); break;
            case 2: f.op(Op.I64LtS); f.op(Op.I64ExtendI32U); break;
            case 3: f.op(Op.I64LtU); f.op(Op.I64ExtendI32U); break;
            case 4: f.op(Op.I64Xor); break;
            case 5: f.op(f7 === 0x20 ? Op.I64ShrS : Op.I64ShrU); break;
            case 6: f.op(Op.I64Or); break;
            default: f.op(Op.I64And); break;
          }
        });
        return;
      }
      case Opcode.Op32: {
        if (rd === 0) return;
        this.setReg(rd, () => {
          this.reg(rs1); f.op(Op.I32WrapI64); this.reg(rs2); f.op(Op.I32WrapI64);
          if (f7 === 1) {
            if (f3 === 0) f.op(Op.I32Mul); else this.emitDivRem(f3, false);
          } else if (f3 === 0) {
            f.op(f7 === 0x20 ? Op.I32Sub : Op.I32Add);
          } else if (f3 === 1) {
            f.op(Op.I32Shl);
          } else {
            f.op(f7 === 0x20 ? Op.I32ShrS : Op.I32ShrU);
          }
          f.op(Op.I64ExtendI32S);
        });
        return;
      }
      // FENCE: the host (x86-64, TSO) keeps every order but a store before a later load; a fence
      // that orders those (predecessor W, successor R, not FENCE.TSO) becomes a host fence when
      // harts run on other threads.
      case Opcode.MiscMem:
        if (this.concurrent && fenceOrdersStoreLoad(insn)) f.atomicFence();
        return;
      case Opcode.Load: this.emitLoad(rd, rs1, immI, f3, pcLo, pcHi, k); return;
      case Opcode.Store: {
        const imm = ((insn >> 25) << 5) | ((insn >>> 7) & 0x1f);
        this.emitStore(rs1, rs2, imm, f3, pcLo, pcHi, k);
        return;
      }
      case Opcode.Branch: {
        const imm = branchOffset(insn);
        const [tLo, tHi] = add64(pcLo, pcHi, imm, imm >> 31);
        this.branchTaken(insn);
        f.open(Op.If);
        this.leaveTo(tLo, tHi, k + 1);
        f.close();
        return;
      }
      case Opcode.Jal: {
        const imm = jalOffset(insn);
        const [tLo, tHi] = add64(pcLo, pcHi, imm, imm >> 31);
        if (rd !== 0) this.setReg(rd, () => f.i64(nextLo, nextHi));
        if (!followed) this.leaveTo(tLo, tHi, k + 1);
        return;
      }
      case Opcode.Jalr: {
        // The target first: rd may be rs1.
        this.reg(rs1); f.i64(immI, immI >> 31); f.op(Op.I64Add); f.i64(-2, -1); f.op(Op.I64And); f.set(L_T0);
        if (rd !== 0) this.setReg(rd, () => f.i64(nextLo, nextHi));
        this.writeBack(); // once for every way out below (the block ends here)
        this.dirty.fill(0);
        f.get(L_BASE); f.get(L_T0); f.mem(Op.I64Store, 3, HartState.Pc);
        f.get(L_N); f.i32(k + 1); f.op(Op.I32Add); f.tee(L_N);
        f.get(L_BUDGET); f.op(Op.I32GeU);
        f.open(Op.If);
        this.returnRetired(0, 0);
        f.close();
        // Where a jump to this pc went last time, if the fetch translation is the same (the
        // hart's jump cache entry for the pc; L_ENT: its address).
        f.get(L_T0); f.op(Op.I32WrapI64); f.i32(1); f.op(Op.I32ShrU); f.i32(JUMP_CACHE_MASK); f.op(Op.I32And);
        f.i32(4); f.op(Op.I32Shl); f.get(L_BASE); f.op(Op.I32Add); f.set(L_ENT);
        const miss = f.open(Op.Block);
        f.get(L_ENT); f.mem(Op.I64Load, 3, HartState.JumpCache + JumpCacheField.Pc); f.get(L_T0); f.op(Op.I64Ne); f.brIf(miss);
        f.get(L_ENT); f.mem(Op.I32Load, 2, HartState.JumpCache + JumpCacheField.Epoch);
        f.get(L_BASE); f.mem(Op.I32Load, 2, HartState.FetchEpoch); f.op(Op.I32Ne); f.brIf(miss);
        f.get(L_BASE); f.get(L_N); f.get(L_BUDGET); f.get(L_ENT); f.mem(Op.I32Load, 2, HartState.JumpCache + JumpCacheField.Slot);
        f.byte(Op.ReturnCall); f.u32(IMPORT_JUMP);
        f.close();
        f.get(L_BASE); f.get(L_N); f.get(L_BUDGET); f.get(L_ENT); f.i32(HartState.JumpCache); f.op(Op.I32Add);
        f.byte(Op.ReturnCall); f.u32(IMPORT_CHAIN_CACHED);
        return;
      }
      default:
        throw new Error(`JIT: instruction 0x${(insn >>> 0).toString(16)} reached the translator but is not translatable`);
    }
  }

  /**
   * Inline TLB lookup for an access of `width` bytes at the address in L_T0 (also sets L_ADDR to
   * its low half). Branches to `slow` on a miss or a page-crossing access; otherwise leaves the i32 address of the data (minus RAM_OFFSET) on the stack.
   */
  private emitLookup(tlbLocal: number, width: number, slow: number): void {
    const f = this.f;
    f.get(L_T0); f.op(Op.I32WrapI64); f.tee(L_ADDR);
    f.i32(8); f.op(Op.I32ShrU); f.i32(TLB_INDEX_MASK); f.op(Op.I32And); f.get(tlbLocal); f.op(Op.I32Add); f.tee(L_ENT);
    // The tag (page address, lo and hi halves) against the page of the access's last byte: a
    // page-crossing access cannot match, as the next page has the next entry.
    f.mem(Op.I64Load, 3, TlbField.TagLo);
    f.get(L_T0); if (width > 1) { f.i64(width - 1, 0); f.op(Op.I64Add); } f.i64(-4096, -1); f.op(Op.I64And);
    f.op(Op.I64Ne); f.brIf(slow);
    // Only RAM pages are cached (Hart.fillTlb), and write TLBs hold no page of translated code.
    f.get(L_ENT); f.mem(Op.I32Load, 2, TlbField.RamOffset); f.get(L_ADDR); f.i32(0xfff); f.op(Op.I32And); f.op(Op.I32Add);
  }

  private effectiveAddress(rs1: number, imm: number): void {
    const f = this.f;
    this.reg(rs1); f.i64(imm, imm >> 31); f.op(Op.I64Add); f.set(L_T0);
  }

  private emitLoad(rd: number, rs1: number, imm: number, f3: number, pcLo: number, pcHi: number, k: number): void {
    const dirtyBefore = this.dirty.slice();
    const f = this.f, width = 1 << (f3 & 3);
    this.effectiveAddress(rs1, imm);
    const done = f.open(Op.Block);
    const slow = f.open(Op.Block);
    this.emitLookup(L_RTLB, width, slow);
    f.mem(LOAD_OPS[f3], 0, RAM_OFFSET);
    if (rd === 0) f.op(Op.Drop); else { f.set(L_T0); this.setReg(rd, () => f.get(L_T0)); }
    f.br(done);
    f.close();
    this.slowExit(dirtyBefore, pcLo, pcHi, k);
    f.close();
  }

  private emitStore(rs1: number, rs2: number, imm: number, f3: number, pcLo: number, pcHi: number, k: number): void {
    const f = this.f, width = 1 << f3;
    this.effectiveAddress(rs1, imm);
    const done = f.open(Op.Block);
    const slow = f.open(Op.Block);
    this.emitLookup(L_WTLB, width, slow);
    this.reg(rs2);
    f.mem(STORE_OPS[f3], 0, RAM_OFFSET);
    f.br(done);
    f.close();
    this.exitConst(pcLo, pcHi, k, RunExit.Interpret);
    f.close();
  }

  /**
   * MULH (1), MULHSU (2), MULHU (3) of the two values on the stack, inline (bignum loops in the
   * kernel live on MULHU): the unsigned high product from four 32x32 partial products, then
   * minus b when a is signed and negative, minus a when b is signed and negative.
   */
  private emitMulHigh(f3: number): void {
    const f = this.f;
    const L_MA = this.mulScratch, L_MB = L_MA + 1;
    const A0 = L_MA + 2, A1 = L_MA + 3, B0 = L_MA + 4, B1 = L_MA + 5, P01 = L_MA + 6, P10 = L_MA + 7;
    const lo32 = (x: number): void => { f.get(x); f.i64(-1, 0); f.op(Op.I64And); };
    const hi32 = (x: number): void => { f.get(x); f.i64(32, 0); f.op(Op.I64ShrU); };
    f.set(L_MB); f.set(L_MA);
    lo32(L_MA); f.set(A0); hi32(L_MA); f.set(A1); lo32(L_MB); f.set(B0); hi32(L_MB); f.set(B1);
    f.get(A0); f.get(B1); f.op(Op.I64Mul); f.set(P01);
    f.get(A1); f.get(B0); f.op(Op.I64Mul); f.set(P10);
    // hi = a1*b1 + p01>>32 + p10>>32 + ((a0*b0)>>32 + lo(p01) + lo(p10)) >> 32
    f.get(A1); f.get(B1); f.op(Op.I64Mul);
    hi32(P01); f.op(Op.I64Add); hi32(P10); f.op(Op.I64Add);
    f.get(A0); f.get(B0); f.op(Op.I64Mul); f.i64(32, 0); f.op(Op.I64ShrU);
    lo32(P01); f.op(Op.I64Add); lo32(P10); f.op(Op.I64Add);
    f.i64(32, 0); f.op(Op.I64ShrU); f.op(Op.I64Add);
    if (f3 === 1 || f3 === 2) { // a signed
      f.get(L_MB); f.get(L_MA); f.i64(63, 0); f.op(Op.I64ShrS); f.op(Op.I64And); f.op(Op.I64Sub);
    }
    if (f3 === 1) { // b signed
      f.get(L_MA); f.get(L_MB); f.i64(63, 0); f.op(Op.I64ShrS); f.op(Op.I64And); f.op(Op.I64Sub);
    }
  }

  /**
   * DIV/DIVU/REM/REMU (f3 4-7) of the two values on the stack (i64, or i32 for the W forms),
   * inline (a call would cost the block its registers, see the class comment): division by
   * zero gives all ones (DIV*) or the dividend (REM*); signed overflow gives the dividend (DIV)
   * or 0 (REM: wasm's rem_s already does that).
   */
  private emitDivRem(f3: number, is64: boolean): void {
    const f = this.f, A = this.divScratch + (is64 ? 0 : 2), B = A + 1;
    const type = is64 ? ValType.I64 : ValType.I32;
    const konst = (v: number): void => { if (is64) f.i64(v, v >> 31); else f.i32(v); };
    f.set(B); f.set(A);
    f.get(B); f.op(is64 ? Op.I64Eqz : Op.I32Eqz);
    f.open(Op.If, type);
    if (f3 <= 5) konst(-1); else f.get(A);
    f.else();
    if (f3 === 4) { // DIV: the most negative value / -1 overflows
      f.get(A); if (is64) f.i64(0, 0x80000000 | 0); else f.i32(0x80000000 | 0); f.op(is64 ? Op.I64Eq : Op.I32Eq);
      f.get(B); konst(-1); f.op(is64 ? Op.I64Eq : Op.I32Eq); f.op(Op.I32And);
      f.open(Op.If, type); f.get(A); f.else(); f.get(A); f.get(B); f.op(is64 ? Op.I64DivS : Op.I32DivS); f.close();
    } else {
      f.get(A); f.get(B);
      f.op(is64 ? [Op.I64DivU, Op.I64RemS, Op.I64RemU][f3 - 5] : [Op.I32DivU, Op.I32RemS, Op.I32RemU][f3 - 5]);
    }
    f.close();
  }
}
