import { HART_SLOT_BYTES, JIT_REGION_BYTES, JIT_REGION_OFFSET, JIT_REGIONS, MAX_RAM_BYTES } from '../../hw/memory.js';
import { HartState } from '../hart-state.js';
import { TLB_INDEX_MASK, TlbField } from '../mmu.js';
import { BLOCK_PARAMS } from './translate.js';
import { FunctionBody, ModuleWriter, Op, ValType } from './wasm.js';

/**
 * The lookup table compiled code consults to go from one block to the next without returning
 * to JavaScript: LOOKUP_ENTRIES entries of four int32s at the start of the JIT's region (jitLayout),
 * direct-mapped by RAM offset of the block's first instruction.
 */
export const LOOKUP_BITS = 16;
export const LOOKUP_ENTRIES = 1 << LOOKUP_BITS;
export const LOOKUP_MASK = LOOKUP_ENTRIES - 1;
/** Function table slots (one per block key) the JIT hands out before it starts afresh. */
export const MAX_SLOTS = 1 << 18;
/**
 * Where one JIT's tables lie in the wasm memory. Each JIT (one per host thread that runs harts)
 * has a region of its own, JIT_REGION_BYTES at JIT_REGION_OFFSET + index * JIT_REGION_BYTES:
 * - `lookup`: the lookup table;
 * - `generations`: the slot generations, one int32 per table slot: a slot's generation changes
 *   whenever the function in it does, so code that calls a block's function directly (an
 *   import) can check that the slot still holds it;
 * - `pageVersions`: the RAM page versions, one uint32 per 4 KiB page of RAM: a page's version
 *   changes whenever its translations are dropped, so code that calls a block of its own module
 *   on another page directly can check that the block is still there (a page's blocks go
 *   without the rest of their module).
 */
export interface JitLayout {
  readonly lookup: number;
  readonly generations: number;
  readonly pageVersions: number;
}

export function jitLayout(region: number): JitLayout {
  if (!Number.isInteger(region) || region < 0 || region >= JIT_REGIONS) throw new RangeError(`JIT region must be 0..${JIT_REGIONS - 1}, got ${region}`);
  const lookup = JIT_REGION_OFFSET + region * JIT_REGION_BYTES;
  const generations = lookup + LOOKUP_ENTRIES * 16;
  return { lookup, generations, pageVersions: generations + MAX_SLOTS * 4 };
}
/**
 * Entries of each hart's jump cache (at HartState.JumpCache in its slot), direct-mapped by the
 * target pc: where computed jumps (JALR) to that pc went. A hit (same pc, same fetch epoch of
 * the hart) skips chain's TLB and lookup-table probes; the target's slot always holds its
 * function or chain, so an invalidated target needs nothing here. Keyed by target rather than
 * by jump, it also serves a return from a function called from many places.
 */
export const JUMP_CACHE_BITS = 11;
export const JUMP_CACHE_MASK = (1 << JUMP_CACHE_BITS) - 1;
/** Fields of a jump cache entry (byte offsets within its 16 bytes). */
export const enum JumpCacheField {
  /** The target pc (i64). */
  Pc = 0,
  /** The hart's HartState.FetchEpoch when the entry was filled; 0: empty. */
  Epoch = 8,
  /** The table slot of the target's block. */
  Slot = 12,
}
if (HartState.JumpCache + (16 << JUMP_CACHE_BITS) > HART_SLOT_BYTES) throw new Error('the jump cache does not fit in a hart slot');
if (LOOKUP_ENTRIES * 16 + MAX_SLOTS * 4 + (MAX_RAM_BYTES >>> 12) * 4 > JIT_REGION_BYTES) throw new Error('the slot generations and page versions do not fit in the JIT region');
/** Fields of a lookup entry (int32 index within it). */
export const enum LookupField {
  /** RAM offset of the block's first instruction, -1 for an empty entry. */
  RamOff = 0,
  /** The virtual pc the block was translated at. */
  PcLo = 1,
  PcHi = 2,
  /** The index of the block's function in the function table. */
  Target = 3,
}

/**
 * Builds the dispatcher module, which exports
 * - `enter(target, budget, base) -> i32`: runs the block `target` (a LookupField.Target value: its
 *   function's index in the table) on the hart with state slot `base`, with no instruction
 *   retired yet; blocks go on by tail calls until one returns (retired << 2) | RunExit flags;
 * - `jump(base, n, budget, slot) -> i32`: tail-calls the function in table slot `slot`;
 * - `chain(base, n, budget) -> i32`, which blocks tail-call to go on at the pc in the state
 *   slot: it translates the pc through the hart's fetch TLB, finds its block in the lookup
 *   table and tail-calls it through the function table; when the pc has no compiled block (TLB
 *   miss, not RAM, not compiled) it returns n << 2 to JavaScript;
 * - `chainCached(base, n, budget, entry) -> i32`: chain that also fills the jump cache entry
 *   at byte `entry` of the memory with where it went.
 */
export function buildDispatcher(memoryPages: number, layout: JitLayout): Uint8Array<ArrayBuffer> {
  const w = new ModuleWriter(memoryPages);
  w.importTable();
  const blockType = w.type(BLOCK_PARAMS, [ValType.I32]);
  const enterType = w.type([ValType.I32, ValType.I32, ValType.I32], [ValType.I32]);

  const enter = new FunctionBody();
  {
    const TARGET = 0, BUDGET = 1, BASE = 2;
    enter.get(BASE); enter.i32(0); enter.get(BUDGET); enter.get(TARGET);
    enter.byte(Op.CallIndirect); enter.u32(blockType); enter.u32(0);
  }
  w.export('enter', w.addFunction({ type: enterType, locals: [], body: enter }));

  const jump = new FunctionBody();
  jump.get(0); jump.get(1); jump.get(2); jump.get(3);
  jump.byte(Op.ReturnCallIndirect); jump.u32(blockType); jump.u32(0);
  w.export('jump', w.addFunction({ type: w.type([...BLOCK_PARAMS, ValType.I32], [ValType.I32]), locals: [], body: jump }));

  w.export('chain', w.addFunction({ type: blockType, locals: [ValType.I32, ValType.I32, ValType.I32, ValType.I64], body: chainBody(blockType, false, layout.lookup) }));
  w.export('chainCached', w.addFunction({ type: w.type([...BLOCK_PARAMS, ValType.I32], [ValType.I32]),
    locals: [ValType.I32, ValType.I32, ValType.I32, ValType.I64], body: chainBody(blockType, true, layout.lookup) }));
  return w.bytes();
}

/** The body of chain (see buildDispatcher), or with `fillCache` of chainCached. */
function chainBody(blockType: number, fillCache: boolean, lookup: number): FunctionBody {
  const f = new FunctionBody();
  const BASE = 0, N = 1, BUDGET = 2, ENTRY = 3;
  const first = fillCache ? 4 : 3, LO = first, E = first + 1, H = first + 2, PC = first + 3;
  const leave = (): void => { f.open(Op.If); f.get(N); f.i32(2); f.op(Op.I32Shl); f.op(Op.Return); f.close(); };
  // The pc through the fetch TLB: a hit means the fetch is permitted.
  f.get(BASE); f.mem(Op.I64Load, 3, HartState.Pc); f.tee(PC); f.op(Op.I32WrapI64); f.set(LO);
  f.get(BASE); f.mem(Op.I32Load, 2, HartState.ExecTlb);
  f.get(LO); f.i32(8); f.op(Op.I32ShrU); f.i32(TLB_INDEX_MASK); f.op(Op.I32And); f.op(Op.I32Add); f.tee(E);
  f.mem(Op.I32Load, 2, TlbField.TagLo); f.get(LO); f.i32(~0xfff); f.op(Op.I32And); f.op(Op.I32Ne); leave();
  f.get(E); f.mem(Op.I32Load, 2, TlbField.TagHi); f.get(PC); f.i64(32, 0); f.op(Op.I64ShrU); f.op(Op.I32WrapI64);
  f.op(Op.I32Ne); leave();
  f.get(E); f.mem(Op.I32Load, 2, TlbField.RamOffset); f.tee(H); f.i32(0); f.op(Op.I32LtS); leave();
  // E = RAM offset of the pc; H = its lookup entry's byte offset from the table start.
  f.get(H); f.get(LO); f.i32(0xfff); f.op(Op.I32And); f.op(Op.I32Add); f.tee(E);
  f.i32(1); f.op(Op.I32ShrU); f.i32(LOOKUP_MASK); f.op(Op.I32And); f.i32(4); f.op(Op.I32Shl); f.set(H);
  f.get(H); f.mem(Op.I32Load, 2, lookup + 4 * LookupField.RamOff); f.get(E); f.op(Op.I32Ne); leave();
  f.get(H); f.mem(Op.I32Load, 2, lookup + 4 * LookupField.PcLo); f.get(LO); f.op(Op.I32Ne); leave();
  f.get(H); f.mem(Op.I32Load, 2, lookup + 4 * LookupField.PcHi);
  f.get(PC); f.i64(32, 0); f.op(Op.I64ShrU); f.op(Op.I32WrapI64); f.op(Op.I32Ne); leave();
  f.get(H); f.mem(Op.I32Load, 2, lookup + 4 * LookupField.Target); f.set(H);
  if (fillCache) {
    f.get(ENTRY); f.get(PC); f.mem(Op.I64Store, 3, JumpCacheField.Pc);
    f.get(ENTRY); f.get(BASE); f.mem(Op.I32Load, 2, HartState.FetchEpoch); f.mem(Op.I32Store, 2, JumpCacheField.Epoch);
    f.get(ENTRY); f.get(H); f.mem(Op.I32Store, 2, JumpCacheField.Slot);
  }
  f.get(BASE); f.get(N); f.get(BUDGET); f.get(H);
  f.byte(Op.ReturnCallIndirect); f.u32(blockType); f.u32(0);
  return f;
}
