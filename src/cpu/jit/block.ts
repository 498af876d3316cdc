import { expandCached } from '../compressed.js';
import { jalOffset, Opcode, PAUSE } from '../opcode.js';

/** Longest block the JIT translates, in instructions. */
export const MAX_BLOCK_INSNS = 64;

/** How compiled code runs an instruction. */
export const enum InsnKind {
  /** Translated to WebAssembly. */
  Native,
  /**
   * Run by the interpreter through a call from compiled code (CSRs, atomics, floating point,
   * privileged instructions): rare or complex enough that a call costs less than their code.
   */
  Helper,
  /** Not in a block: compiled code stops before it and the interpreter takes over (illegal encodings). */
  None,
}

/** One guest instruction of a block: the 32-bit form (compressed ones expanded) and its length. */
export interface BlockInsn {
  insn: number;
  kind: InsnKind.Native | InsnKind.Helper;
  /** 2 or 4 bytes. */
  length: number;
  /** Byte offset of the instruction from the block's start (negative after a jump backwards). */
  offset: number;
  /** A JAL the block follows: its target, on the same page, is translated next in the block. */
  followed: boolean;
}

/** A block's identity as a string: the RAM offset and virtual pc it was translated at. */
export const blockKey = (ramOff: number, pcLo: number, pcHi: number): string => `${ramOff}:${pcLo}:${pcHi}`;

/** How a block ends. */
export const enum BlockEnd {
  /** With a JAL or JALR (the last instruction). */
  Jump,
  /** Before an instruction the JIT does not translate: the interpreter runs that one. */
  Interpret,
  /**
   * At the block length limit, the end of the page, or after a privileged SYSTEM instruction
   * (ECALL, xRET, WFI, SFENCE.VMA usually change the pc or the translation, so code after them
   * is not worth compiling with them): execution continues after the last instruction.
   */
  FallThrough,
}

/**
 * A run of guest code starting at virtual pc (pcLo, pcHi), RAM offset `ramOff`, within one
 * 4 KiB page. Conditional branches inside leave the block when taken; a JAL to the same page
 * (a jump or a call) is followed, once per target; it ends at any other jump, a privileged SYSTEM
 * instruction, an instruction the JIT leaves to the interpreter, or the page/size limit.
 */
export interface BlockPlan {
  ramOff: number;
  pcLo: number;
  pcHi: number;
  insns: BlockInsn[];
  end: BlockEnd;
  /** Unless the block ends with a jump: the offset from its start where execution continues after it. */
  next: number;
}

/** How compiled code runs this (32-bit) instruction. */
export function classify(insn: number): InsnKind {
  if (translatable(insn)) return InsnKind.Native;
  switch ((insn >>> 2) & 31) {
    case Opcode.System: case Opcode.Amo: case Opcode.LoadFp: case Opcode.StoreFp: case Opcode.OpFp:
    case Opcode.Madd: case Opcode.Msub: case Opcode.Nmsub: case Opcode.Nmadd: case Opcode.MiscMem:
      return InsnKind.Helper;
    default:
      return InsnKind.None;
  }
}

/** Whether the JIT translates this (32-bit) instruction to WebAssembly. */
function translatable(insn: number): boolean {
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
    // FENCE (see translate.ts); FENCE.I and PAUSE go to the interpreter, which applies other
    // threads' stores to code and counts a spin's pauses (Hart.yielding).
    case Opcode.MiscMem: return f3 === 0 && insn !== PAUSE;
    default: return false;
  }
}

/**
 * Reads the block at RAM offset `ramOff` (virtual pc (pcLo, pcHi)). Returns null when its first
 * instruction is left to the interpreter.
 */
export function scanBlock(ram: DataView, ramOff: number, pcLo: number, pcHi: number): BlockPlan | null {
  const pageStart = ramOff & ~0xfff, pageEnd = pageStart + 0x1000;
  const insns: BlockInsn[] = [];
  const followedTargets = new Set<number>([ramOff]);
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
    const kind = insn === 0 ? InsnKind.None : classify(insn);
    if (kind === InsnKind.None) { end = BlockEnd.Interpret; break; }
    const ins: BlockInsn = { insn, kind, length, offset: off - ramOff, followed: false };
    insns.push(ins);
    const major = (insn >>> 2) & 31;
    if (major === Opcode.Jal) {
      const imm = jalOffset(insn);
      const target = off + imm;
      // A jump back to the block's start stays a jump: compiled code loops there.
      if (target < pageStart || target >= pageEnd || followedTargets.has(target)) { end = BlockEnd.Jump; break; }
      followedTargets.add(target);
      ins.followed = true;
      off = target;
      continue;
    }
    off += length;
    if (major === Opcode.Jalr) { end = BlockEnd.Jump; break; }
    if (major === Opcode.System && ((insn >>> 12) & 7) === 0) break;
  }
  if (insns.length === 0) return null;
  return { ramOff, pcLo, pcHi, insns, end, next: off - ramOff };
}
