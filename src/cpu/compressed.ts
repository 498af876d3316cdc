/**
 * RVC: expands a 16-bit compressed instruction into the equivalent 32-bit instruction, so the
 * interpreter has a single execution path. Returns 0 (an illegal encoding) for reserved forms.
 * Results are cached per 16-bit pattern by `expandCached`.
 */
const bits = (v: number, hi: number, lo: number): number => (v >>> lo) & ((1 << (hi - lo + 1)) - 1);
const sext = (v: number, width: number): number => (v << (32 - width)) >> (32 - width);

const iType = (imm: number, rs1: number, f3: number, rd: number, op: number): number =>
  (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const sType = (imm: number, rs2: number, rs1: number, f3: number, op: number): number =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | op) >>> 0;
const bType = (imm: number, rs2: number, rs1: number, f3: number): number =>
  ((((imm >> 12) & 1) << 31) | (((imm >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) |
    (((imm >> 1) & 0xf) << 8) | (((imm >> 11) & 1) << 7) | 0x63) >>> 0;
const jType = (imm: number, rd: number): number =>
  ((((imm >> 20) & 1) << 31) | (((imm >> 1) & 0x3ff) << 21) | (((imm >> 11) & 1) << 20) |
    (((imm >> 12) & 0xff) << 12) | (rd << 7) | 0x6f) >>> 0;
const rType = (f7: number, rs2: number, rs1: number, f3: number, rd: number, op: number): number =>
  ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;

const OP_IMM = 0x13, OP_IMM32 = 0x1b, OP = 0x33, OP32 = 0x3b, LOAD = 0x03, STORE = 0x23, LOAD_FP = 0x07,
  STORE_FP = 0x27, LUI = 0x37, JALR = 0x67;

export function expandCompressed(c: number): number {
  const op = c & 3, f3 = bits(c, 15, 13);
  const rdFull = bits(c, 11, 7), rs2Full = bits(c, 6, 2);
  const rdP = 8 + bits(c, 4, 2), rs1P = 8 + bits(c, 9, 7);
  if (op === 0) {
    const uimmW = (bits(c, 12, 10) << 3) | (bits(c, 6, 6) << 2) | (bits(c, 5, 5) << 6);
    const uimmD = (bits(c, 12, 10) << 3) | (bits(c, 6, 5) << 6);
    switch (f3) {
      case 0: { // C.ADDI4SPN
        const imm = (bits(c, 12, 11) << 4) | (bits(c, 10, 7) << 6) | (bits(c, 6, 6) << 2) | (bits(c, 5, 5) << 3);
        return imm === 0 ? 0 : iType(imm, 2, 0, rdP, OP_IMM);
      }
      case 1: return iType(uimmD, rs1P, 3, rdP, LOAD_FP);   // C.FLD
      case 2: return iType(uimmW, rs1P, 2, rdP, LOAD);      // C.LW
      case 3: return iType(uimmD, rs1P, 3, rdP, LOAD);      // C.LD
      case 5: return sType(uimmD, rdP, rs1P, 3, STORE_FP);  // C.FSD
      case 6: return sType(uimmW, rdP, rs1P, 2, STORE);     // C.SW
      case 7: return sType(uimmD, rdP, rs1P, 3, STORE);     // C.SD
      default: return 0;
    }
  }
  if (op === 1) {
    const imm6 = sext((bits(c, 12, 12) << 5) | rs2Full, 6);
    switch (f3) {
      case 0: return iType(imm6, rdFull, 0, rdFull, OP_IMM);               // C.ADDI / C.NOP
      case 1: return rdFull === 0 ? 0 : iType(imm6, rdFull, 0, rdFull, OP_IMM32); // C.ADDIW
      case 2: return iType(imm6, 0, 0, rdFull, OP_IMM);                    // C.LI
      case 3:
        if (rdFull === 2) { // C.ADDI16SP
          const imm = sext((bits(c, 12, 12) << 9) | (bits(c, 6, 6) << 4) | (bits(c, 5, 5) << 6) |
            (bits(c, 4, 3) << 7) | (bits(c, 2, 2) << 5), 10);
          return imm === 0 ? 0 : iType(imm, 2, 0, 2, OP_IMM);
        } else { // C.LUI
          const imm = sext((bits(c, 12, 12) << 17) | (rs2Full << 12), 18);
          return imm === 0 || rdFull === 0 ? 0 : ((imm & 0xfffff000) | (rdFull << 7) | LUI) >>> 0;
        }
      case 4: {
        const shamt = (bits(c, 12, 12) << 5) | rs2Full;
        switch (bits(c, 11, 10)) {
          case 0: return iType(shamt, rs1P, 5, rs1P, OP_IMM);                 // C.SRLI
          case 1: return iType(0x400 | shamt, rs1P, 5, rs1P, OP_IMM);         // C.SRAI
          case 2: return iType(imm6, rs1P, 7, rs1P, OP_IMM);                  // C.ANDI
          default: {
            const rs2 = rdP, sel = bits(c, 6, 5);
            if (bits(c, 12, 12) === 0) {
              const f3s = [0, 4, 6, 7][sel], f7 = sel === 0 ? 0x20 : 0;       // SUB XOR OR AND
              return rType(f7, rs2, rs1P, f3s, rs1P, OP);
            }
            if (sel === 0) return rType(0x20, rs2, rs1P, 0, rs1P, OP32);      // C.SUBW
            if (sel === 1) return rType(0, rs2, rs1P, 0, rs1P, OP32);         // C.ADDW
            return 0;
          }
        }
      }
      case 5: { // C.J
        const imm = sext((bits(c, 12, 12) << 11) | (bits(c, 11, 11) << 4) | (bits(c, 10, 9) << 8) |
          (bits(c, 8, 8) << 10) | (bits(c, 7, 7) << 6) | (bits(c, 6, 6) << 7) | (bits(c, 5, 3) << 1) |
          (bits(c, 2, 2) << 5), 12);
        return jType(imm, 0);
      }
      default: { // C.BEQZ / C.BNEZ
        const imm = sext((bits(c, 12, 12) << 8) | (bits(c, 11, 10) << 3) | (bits(c, 6, 5) << 6) |
          (bits(c, 4, 3) << 1) | (bits(c, 2, 2) << 5), 9);
        return bType(imm, 0, rs1P, f3 === 6 ? 0 : 1);
      }
    }
  }
  if (op === 2) {
    switch (f3) {
      case 0: return iType((bits(c, 12, 12) << 5) | rs2Full, rdFull, 1, rdFull, OP_IMM); // C.SLLI
      case 1: return iType((bits(c, 12, 12) << 5) | (bits(c, 6, 5) << 3) | (bits(c, 4, 2) << 6), 2, 3, rdFull, LOAD_FP); // C.FLDSP
      case 2: return rdFull === 0 ? 0 :
        iType((bits(c, 12, 12) << 5) | (bits(c, 6, 4) << 2) | (bits(c, 3, 2) << 6), 2, 2, rdFull, LOAD); // C.LWSP
      case 3: return rdFull === 0 ? 0 :
        iType((bits(c, 12, 12) << 5) | (bits(c, 6, 5) << 3) | (bits(c, 4, 2) << 6), 2, 3, rdFull, LOAD); // C.LDSP
      case 4:
        if (bits(c, 12, 12) === 0) {
          if (rs2Full === 0) return rdFull === 0 ? 0 : iType(0, rdFull, 0, 0, JALR);     // C.JR
          return rType(0, rs2Full, 0, 0, rdFull, OP);                                  // C.MV
        }
        if (rs2Full === 0) {
          if (rdFull === 0) return 0x00100073;                                         // C.EBREAK
          return iType(0, rdFull, 0, 1, JALR);                                         // C.JALR
        }
        return rType(0, rs2Full, rdFull, 0, rdFull, OP);                               // C.ADD
      case 5: return sType((bits(c, 12, 10) << 3) | (bits(c, 9, 7) << 6), rs2Full, 2, 3, STORE_FP); // C.FSDSP
      case 6: return sType((bits(c, 12, 9) << 2) | (bits(c, 8, 7) << 6), rs2Full, 2, 2, STORE);     // C.SWSP
      default: return sType((bits(c, 12, 10) << 3) | (bits(c, 9, 7) << 6), rs2Full, 2, 3, STORE);   // C.SDSP
    }
  }
  return 0;
}

/** Memoized expansion: 65536 entries; 1 marks "computed and illegal". */
const cache = new Int32Array(65536);
export function expandCached(c: number): number {
  let v = cache[c];
  if (v === 0) {
    v = expandCompressed(c) | 0;
    cache[c] = v === 0 ? 1 : v;
    return v;
  }
  return v === 1 ? 0 : v;
}
