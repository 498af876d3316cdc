/**
 * Major opcodes (instruction bits 6:2). Every 32-bit instruction ends in 0b11, so bits 6:2
 * identify the major opcode on their own and give the interpreter a dense switch.
 */
export const enum Opcode {
  Load = 0x00, LoadFp = 0x01, MiscMem = 0x03, OpImm = 0x04, Auipc = 0x05, OpImm32 = 0x06,
  Store = 0x08, StoreFp = 0x09, Amo = 0x0b, Op = 0x0c, Lui = 0x0d, Op32 = 0x0e,
  Madd = 0x10, Msub = 0x11, Nmsub = 0x12, Nmadd = 0x13, OpFp = 0x14,
  Branch = 0x18, Jalr = 0x19, Jal = 0x1b, System = 0x1c,
}

/** The byte offset a JAL jumps by (its J-type immediate, sign-extended). */
export function jalOffset(insn: number): number {
  return ((insn >> 31) << 20) | (((insn >>> 12) & 0xff) << 12) | (((insn >>> 20) & 1) << 11) | (((insn >>> 21) & 0x3ff) << 1);
}

/** The byte offset a conditional branch jumps by (its B-type immediate, sign-extended). */
export function branchOffset(insn: number): number {
  return ((insn >> 31) << 12) | (((insn >>> 7) & 1) << 11) | (((insn >>> 25) & 0x3f) << 5) | (((insn >>> 8) & 0xf) << 1);
}

/**
 * Whether FENCE `insn` orders earlier stores before later loads (predecessor set has W,
 * successor set has R, and it is not FENCE.TSO): the one order an x86-64 host does not keep by
 * itself, so only such a fence needs a host barrier.
 */
export function fenceOrdersStoreLoad(insn: number): boolean {
  return (insn >>> 28) !== 0x8 && ((insn >>> 24) & 1) !== 0 && ((insn >>> 21) & 1) !== 0;
}

/** Zihintpause's PAUSE: a FENCE with predecessor W and no successor, a hint that the hart spins. */
export const PAUSE = 0x0100000f;
