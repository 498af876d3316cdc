import { expandCached } from '../compressed.js';
import { Opcode } from '../opcode.js';

/** Longest block the JIT translates, in instructions. */
export const MAX_BLOCK_INSNS = 64;

/** One guest instruction of a block: the 32-bit form (compressed ones expanded) and its length. */
export interface BlockInsn {
  insn: number;
  /** 2 or 4 bytes. */
  length: number;
  /** Byte offset of the instruction from the block's start. */
  offset: number;
}

/** How a block ends. */
export const enum BlockEnd {
  /** With a JAL or JALR (the last instruction). */
  Jump,
  /** Before an instruction the JIT does not translate: the interpreter runs that one. */
  Interpret,
  /** At the block length limit or the end of the page: execution continues after the last instruction. */
  FallThrough,
}

/**
 * A straight-line run of guest code starting at virtual pc (pcLo, pcHi), RAM offset `ramOff`,
 * within one 4 KiB page. Conditional branches inside leave the block when taken; it ends at an
 * unconditional jump, an instruction the JIT leaves to the interpreter, or the page/size limit.
 */
export interface BlockPlan {
  ramOff: number;
  pcLo: number;
  pcHi: number;
  insns: BlockInsn[];
  end: BlockEnd;
}

/** Whether the JIT translates this (32-bit) instruction; anything else is left to the interpreter. */
export function translatable(insn: number): boolean {
  const f3 = (insn >>> 12) & 7, f7 = insn >>> 25;
  switch ((insn >>> 2) & 31) {
    case Opcode.Load: return f3 !== 7;
    case Opcode.Store: return f3 <= 3;
    case Opcode.OpImm:
      if (f3 === 1) return (insn >>> 26) === 0;
      if (f3 === 5) return (insn >>> 26) === 0 || (insn >>> 26) === 0x10;
      return true;
    case Opcode.OpImm32:
      if (f3 === 0) return true;
      if (f3 === 1) return f7 === 0;
      if (f3 === 5) return f7 === 0 || f7 === 0x20;
      return false;
    case Opcode.Op:
      if (f7 === 0 || f7 === 1) return true;
      return f7 === 0x20 && (f3 === 0 || f3 === 5);
    case Opcode.Op32:
      if (f7 === 0) return f3 === 0 || f3 === 1 || f3 === 5;
      if (f7 === 0x20) return f3 === 0 || f3 === 5;
      return f7 === 1 && (f3 === 0 || f3 >= 4);
    case Opcode.Lui: case Opcode.Auipc: case Opcode.Jal: return true;
    case Opcode.Jalr: return f3 === 0;
    case Opcode.Branch: return f3 !== 2 && f3 !== 3;
    case Opcode.MiscMem: return f3 === 0 && ((insn >>> 7) & 31) === 0 && ((insn >>> 15) & 31) === 0; // FENCE: a no-op here
    default: return false;
  }
}

/**
 * Reads the block at RAM offset `ramOff` (virtual pc (pcLo, pcHi)). Returns null when its first
 * instruction is not translated.
 */
export function scanBlock(ram: DataView, ramOff: number, pcLo: number, pcHi: number): BlockPlan | null {
  const pageEnd = (ramOff | 0xfff) + 1;
  const insns: BlockInsn[] = [];
  let off = ramOff, end = BlockEnd.FallThrough;
  while (insns.length < MAX_BLOCK_INSNS && off + 2 <= pageEnd) {
    const half = ram.getUint16(off, true);
    let insn: number, length: number;
    if ((half & 3) !== 3) {
      insn = expandCached(half);
      length = 2;
    } else {
      if (off + 4 > pageEnd) { end = BlockEnd.Interpret; break; } // crosses the page: the interpreter fetches it
      insn = ram.getInt32(off, true);
      length = 4;
    }
    if (insn === 0 || !translatable(insn)) { end = BlockEnd.Interpret; break; }
    insns.push({ insn, length, offset: off - ramOff });
    off += length;
    const major = (insn >>> 2) & 31;
    if (major === Opcode.Jal || major === Opcode.Jalr) { end = BlockEnd.Jump; break; }
  }
  if (insns.length === 0) return null;
  return { ramOff, pcLo, pcHi, insns, end };
}
