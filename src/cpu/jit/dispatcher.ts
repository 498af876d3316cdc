import { JIT_REGION_OFFSET } from '../../machine/memory.js';
import { HartState } from '../hart-state.js';
import { TlbField } from '../mmu.js';
import { RUN_PARAMS } from './translate.js';
import { FunctionBody, ModuleWriter, Op, ValType } from './wasm.js';

/**
 * The lookup table compiled code consults to go from one block to the next without returning
 * to JavaScript: LOOKUP_ENTRIES entries of four int32s at JIT_REGION_OFFSET of the wasm memory,
 * direct-mapped by RAM offset of the block's first instruction.
 */
export const LOOKUP_BITS = 14;
export const LOOKUP_ENTRIES = 1 << LOOKUP_BITS;
export const LOOKUP_MASK = LOOKUP_ENTRIES - 1;
/** Fields of a lookup entry (int32 index within it). */
export const enum LookupField {
  /** RAM offset of the block's first instruction, -1 for an empty entry. */
  RamOff = 0,
  /** The virtual pc the block was translated at. */
  PcLo = 1,
  PcHi = 2,
  /** (index of the module's run in the function table << 8) | block number within the module. */
  Target = 3,
}

/**
 * Builds the dispatcher module. Its `enter(target, budget, base) -> i32` runs the block
 * `target` (a LookupField.Target value) on the hart with state slot `base`, then keeps going:
 * it translates the next pc through the hart's fetch TLB, finds its block in the lookup table
 * and calls it through the function table, until `budget` instructions have retired, a block
 * returns a RunExit flag, or the next pc has no compiled block (TLB miss, not RAM, not
 * compiled). It returns what the last block returned: (retired << 2) | RunExit flags.
 */
export function buildDispatcher(memoryPages: number): Uint8Array<ArrayBuffer> {
  const w = new ModuleWriter(memoryPages);
  w.importTable();
  const runType = w.type(RUN_PARAMS, [ValType.I32]);
  const enterType = w.type([ValType.I32, ValType.I32, ValType.I32], [ValType.I32]);
  const TARGET = 0, BUDGET = 1, BASE = 2, R = 3, LO = 4, E = 5, H = 6, PC = 7;
  const f = new FunctionBody();
  const loop = f.open(Op.Loop);
  // r = run(entry, budget, base, retired so far) of the target's module.
  f.get(TARGET); f.i32(255); f.op(Op.I32And);
  f.get(BUDGET); f.get(BASE);
  f.get(R); f.i32(2); f.op(Op.I32ShrU);
  f.get(TARGET); f.i32(8); f.op(Op.I32ShrU);
  f.byte(Op.CallIndirect); f.u32(runType); f.u32(0);
  f.tee(R);
  const leave = (): void => { f.open(Op.If); f.get(R); f.op(Op.Return); f.close(); };
  f.i32(3); f.op(Op.I32And); leave();
  f.get(R); f.i32(2); f.op(Op.I32ShrU); f.get(BUDGET); f.op(Op.I32GeU); leave();
  // The next pc through the fetch TLB: a hit means the fetch is permitted.
  f.get(BASE); f.mem(Op.I64Load, 3, HartState.Pc); f.tee(PC); f.op(Op.I32WrapI64); f.set(LO);
  f.get(BASE); f.mem(Op.I32Load, 2, HartState.ExecTlb);
  f.get(LO); f.i32(10); f.op(Op.I32ShrU); f.i32(0x3fc); f.op(Op.I32And); f.op(Op.I32Add); f.tee(E);
  f.mem(Op.I32Load, 2, TlbField.TagLo); f.get(LO); f.i32(12); f.op(Op.I32ShrU); f.op(Op.I32Ne); leave();
  f.get(E); f.mem(Op.I32Load, 2, TlbField.TagHi); f.get(PC); f.i64(32, 0); f.op(Op.I64ShrU); f.op(Op.I32WrapI64);
  f.op(Op.I32Ne); leave();
  f.get(E); f.mem(Op.I32Load, 2, TlbField.RamOffset); f.tee(H); f.i32(0); f.op(Op.I32LtS); leave();
  // E = RAM offset of the pc; H = its lookup entry's byte offset from the table start.
  f.get(H); f.get(LO); f.i32(0xfff); f.op(Op.I32And); f.op(Op.I32Add); f.tee(E);
  f.i32(1); f.op(Op.I32ShrU); f.i32(LOOKUP_MASK); f.op(Op.I32And); f.i32(4); f.op(Op.I32Shl); f.set(H);
  f.get(H); f.mem(Op.I32Load, 2, JIT_REGION_OFFSET + 4 * LookupField.RamOff); f.get(E); f.op(Op.I32Ne); leave();
  f.get(H); f.mem(Op.I32Load, 2, JIT_REGION_OFFSET + 4 * LookupField.PcLo); f.get(LO); f.op(Op.I32Ne); leave();
  f.get(H); f.mem(Op.I32Load, 2, JIT_REGION_OFFSET + 4 * LookupField.PcHi);
  f.get(PC); f.i64(32, 0); f.op(Op.I64ShrU); f.op(Op.I32WrapI64); f.op(Op.I32Ne); leave();
  f.get(H); f.mem(Op.I32Load, 2, JIT_REGION_OFFSET + 4 * LookupField.Target); f.set(TARGET);
  f.br(loop);
  f.close();
  f.op(Op.Unreachable);
  const enter = w.addFunction({ type: enterType, locals: [ValType.I32, ValType.I32, ValType.I32, ValType.I32, ValType.I64], body: f });
  w.export('enter', enter);
  return w.bytes();
}
