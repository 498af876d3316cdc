/**
 * RISC-V F and D extension arithmetic (RV64): OP-FP (opcode 0x53) and the fused
 * multiply-add opcodes (0x43 FMADD, 0x47 FMSUB, 0x4b FNMSUB, 0x4f FNMADD).
 *
 * Strategy
 * --------
 * Operands are read into JS doubles (single-precision values are exact as
 * doubles). Special operands (NaN, infinities, zeros) are resolved up front.
 *
 * Double precision: JS arithmetic gives the round-to-nearest-even result r.
 * Error-free transformations (TwoSum, Veltkamp/Dekker TwoProduct) give the
 * exact error (add, mul) or its sign (div, sqrt via the remainder), from which
 * NX and the directed-rounding / ties-away results are derived by stepping r
 * one ulp. These transformations are only used where their preconditions
 * hold (no overflow, no underflow of the error term); everything else (tiny or
 * huge magnitudes, non-trivial FMA.D) goes to the exact BigInt path in
 * fpu-soft.ts.
 *
 * Single precision: the operation is done in double, which yields d = RN53(exact)
 * plus the sign of (exact - d) (again via error-free transformations; products
 * of singles are exact in double). {@link roundS} then rounds "d + eps" to
 * single in any mode; this is exact reasoning, not double rounding, because
 * every single-precision value and midpoint is a double. Results near the
 * subnormal or overflow boundaries go through the BigInt rounding.
 *
 * All NaN results are the canonical NaN. Flags follow IEEE 754-2008 with
 * tininess detected after rounding (as RISC-V specifies).
 */

import {
  sf, pow2, softAdd, softMul, softDiv, softSqrt, softFma, softFromInt, softRoundDouble,
} from './fpu-soft.js';

export interface FpuHart {
  /** Integer registers, lo/hi 32-bit pairs (register i at 2*i, 2*i+1). */
  x: Int32Array;
  /** FP registers, raw bits, lo/hi pairs. */
  f: Int32Array;
  /** Accrued exception flags (NV=16 DZ=8 OF=4 UF=2 NX=1); executeFp ORs into it. */
  fflags: number;
  /** Dynamic rounding mode from fcsr. */
  frm: number;
}

/** fflags bits. */
export enum FpFlag {
  NX = 1,
  UF = 2,
  OF = 4,
  DZ = 8,
  NV = 16,
}

/** Rounding modes (instruction rm field / fcsr.frm). */
export enum RoundingMode {
  RNE = 0,
  RTZ = 1,
  RDN = 2,
  RUP = 3,
  RMM = 4,
  /** Only valid in the instruction rm field: use fcsr.frm. */
  DYN = 7,
}

const NX = 1, DZ = 8, NV = 16; // OF/UF are raised by the exact path (fpu-soft.ts)
const RNE = 0, RTZ = 1, RDN = 2, RUP = 3, RMM = 4;

const scratch = new ArrayBuffer(8);
const F64 = new Float64Array(scratch);
const F32 = new Float32Array(scratch);
const I32 = new Int32Array(scratch);

/** Flags raised by the current instruction (fast paths; slow paths use sf.fl). */
let fl = 0;
/** NX already accrued in fflags: the RNE fast paths may skip the exactness test. */
let accNX = false;

const LO = pow2(-480);      // safe range for Dekker TwoProduct operands
const HI = pow2(480);
const TWO_1023 = pow2(1023);
const TWO_1020 = pow2(1020);
const TWO_M1021 = pow2(-1021);
const MIN_NORM_S = pow2(-126);
const MAX_S = 3.4028234663852886e38;
const SPLIT = 134217729;    // 2^27 + 1

// ---------------------------------------------------------------------------
// Register access

function rdS(f: Int32Array, r: number): number {
  if (f[2 * r + 1] !== -1) return NaN; // improperly NaN-boxed: canonical NaN
  I32[0] = f[2 * r];
  return F32[0];
}

function rdD(f: Int32Array, r: number): number {
  I32[0] = f[2 * r];
  I32[1] = f[2 * r + 1];
  return F64[0];
}

function isSNaN(f: Int32Array, r: number, dbl: boolean): boolean {
  const hi = f[2 * r + 1], lo = f[2 * r];
  if (dbl) return (hi & 0x7ff80000) === 0x7ff00000 && ((hi & 0x7ffff) | lo) !== 0;
  return hi === -1 && (lo & 0x7fc00000) === 0x7f800000 && (lo & 0x3fffff) !== 0;
}

function wrS(f: Int32Array, rd: number, v: number): void {
  if (v !== v) f[2 * rd] = 0x7fc00000;
  else { F32[0] = v; f[2 * rd] = I32[0]; }
  f[2 * rd + 1] = -1;
}

function wrD(f: Int32Array, rd: number, v: number): void {
  if (v !== v) { f[2 * rd] = 0; f[2 * rd + 1] = 0x7ff80000; }
  else { F64[0] = v; f[2 * rd] = I32[0]; f[2 * rd + 1] = I32[1]; }
}

function wrX(x: Int32Array, rd: number, lo: number, hi: number): void {
  if (rd !== 0) { x[2 * rd] = lo; x[2 * rd + 1] = hi; }
}

// ---------------------------------------------------------------------------
// Helpers

/** Error of the double product: a*b = p + e exactly (p = RN(a*b), no over/underflow). */
function twoProdErr(a: number, b: number, p: number): number {
  let t = SPLIT * a;
  const ah = t - (t - a), al = a - ah;
  t = SPLIT * b;
  const bh = t - (t - b), bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

/** Next double away from zero (x finite non-zero). */
function awayD(x: number): number {
  F64[0] = x;
  const lo = (I32[0] + 1) | 0;
  I32[0] = lo;
  if (lo === 0) I32[1] = I32[1] + 1;
  return F64[0];
}

/** Next double toward zero (x finite non-zero). */
function towardZeroD(x: number): number {
  F64[0] = x;
  const lo = I32[0];
  I32[0] = lo - 1;
  if (lo === 0) I32[1] = I32[1] - 1;
  return F64[0];
}

function awayS(x: number): number { F32[0] = x; I32[0] = I32[0] + 1; return F32[0]; }
function towardZeroS(x: number): number { F32[0] = x; I32[0] = I32[0] - 1; return F32[0]; }

/**
 * Final result from the round-to-nearest-even double r of an exact value and
 * err with the sign of (exact - r) (the exact error when ties is true).
 * r is finite, normal, far from overflow.
 */
function adjD(r: number, err: number, rm: number, ties: boolean): number {
  if (err === 0) return r;
  fl |= NX;
  switch (rm) {
    case RNE: return r;
    case RTZ: return (err > 0) === (r > 0) ? r : towardZeroD(r);
    case RDN: return err < 0 ? (r > 0 ? towardZeroD(r) : awayD(r)) : r;
    case RUP: return err > 0 ? (r > 0 ? awayD(r) : towardZeroD(r)) : r;
    default: { // RMM: differs from RNE only on an exact tie rounded toward zero
      if (ties && (err > 0) === (r > 0)) {
        const n = awayD(r);
        const gap = n > r ? n - r : r - n;
        if (gap === 2 * (err < 0 ? -err : err)) return n;
      }
      return r;
    }
  }
}

function slowS(d: number, eps: number, rm: number): number {
  return softRoundDouble(d, eps, false, rm);
}

/**
 * Rounds to single precision the exact value d + eps, where d is a double and
 * eps is infinitesimal with respect to d's ulp (only its sign matters): d is
 * a faithful double approximation of the exact value and eps the sign of
 * (exact - d). d === 0 only for an exact zero.
 */
function roundS(d: number, eps: number, rm: number): number {
  const ad = d < 0 ? -d : d;
  if (ad > MIN_NORM_S && ad < MAX_S) {
    const f = Math.fround(d);
    if (rm === RNE) {
      if (f === d) { if (eps !== 0) fl |= NX; return f; }
      fl |= NX;
      if (eps === 0) return f;
      const af = f < 0 ? -f : f;
      const g = af > ad ? towardZeroS(f) : awayS(f);
      if ((f + g) * 0.5 !== d) return f;
      return (eps > 0) === (f < g) ? g : f; // midpoint resolved by the sign of eps
    }
    if (f === d) {
      if (eps === 0) return f;
      fl |= NX;
      switch (rm) {
        case RTZ: return (eps > 0) === (f > 0) ? f : towardZeroS(f);
        case RDN: return eps < 0 ? (f > 0 ? towardZeroS(f) : awayS(f)) : f;
        case RUP: return eps > 0 ? (f > 0 ? awayS(f) : towardZeroS(f)) : f;
        default: return f; // RMM: not a tie
      }
    }
    fl |= NX;
    const af = f < 0 ? -f : f;
    const tz = af > ad ? towardZeroS(f) : f; // neighbour toward zero
    const az = af > ad ? f : awayS(f);       // neighbour away from zero
    switch (rm) {
      case RTZ: return tz;
      case RDN: return d > 0 ? tz : az;
      case RUP: return d > 0 ? az : tz;
      default: { // RMM
        if ((tz + az) * 0.5 !== d) return f;
        if (eps === 0) return az;
        return (eps > 0) === (d > 0) ? az : tz;
      }
    }
  }
  if (d === 0) return d;
  return slowS(d, eps, rm);
}

/** Result of a + b when it is exact because an operand is zero or it cancels. */
function zeroAdd(a: number, b: number, s: number, rm: number): number {
  if (s !== 0) return s;
  // Exact zero sum: RDN gives -0 unless both operands are +0; other modes give
  // +0 unless both are -0 (which is what JS computes).
  if (rm === RDN) return (Object.is(a, 0) && Object.is(b, 0)) ? 0 : -0;
  return s;
}

// ---------------------------------------------------------------------------
// Double-precision operations (operands are not NaN)

function addD(a: number, b: number, rm: number): number {
  const s = a + b;
  if (s !== s) { fl |= NV; return s; }
  if (a === 0 || b === 0 || s === 0) return zeroAdd(a, b, s, rm);
  if ((s < 0 ? -s : s) < TWO_1023) {
    if (rm === RNE && accNX) return s;
    const bb = s - a;
    const err = (a - (s - bb)) + (b - bb);
    if (err - err === 0) {
      if (rm === RNE) { if (err !== 0) fl |= NX; return s; }
      return adjD(s, err, rm, true);
    }
  }
  if (a - a !== 0 || b - b !== 0) return s; // infinite operand
  return softAdd(a, b, true, rm);
}

function mulD(a: number, b: number, rm: number): number {
  const p = a * b;
  if (p !== p) { fl |= NV; return p; }
  const aa = a < 0 ? -a : a, ab = b < 0 ? -b : b;
  if (aa >= LO && aa <= HI && ab >= LO && ab <= HI) {
    if (rm === RNE) {
      if (!accNX && twoProdErr(a, b, p) !== 0) fl |= NX;
      return p;
    }
    return adjD(p, twoProdErr(a, b, p), rm, true);
  }
  if (a === 0 || b === 0 || aa === Infinity || ab === Infinity) return p;
  return softMul(a, b, true, rm);
}

function divD(a: number, b: number, rm: number): number {
  const q = a / b;
  if (q !== q) { fl |= NV; return q; }
  const ab = b < 0 ? -b : b, aq = q < 0 ? -q : q;
  if (ab >= LO && ab <= HI && aq >= LO && aq <= HI) {
    if (rm === RNE && accNX) return q;
    const ph = q * b;
    const rem = (a - ph) - twoProdErr(q, b, ph); // exact remainder a - q*b
    if (rm === RNE || rm === RMM) { // a quotient is never an exact midpoint here
      if (rem !== 0) fl |= NX;
      return q;
    }
    return adjD(q, b > 0 ? rem : -rem, rm, false);
  }
  if (b === 0) {
    if (a - a === 0) fl |= DZ; // finite (non-zero: 0/0 is NaN above) divided by zero
    return q;
  }
  if (a === 0 || a - a !== 0 || ab === Infinity) return q;
  return softDiv(a, b, true, rm);
}

function sqrtD(a: number, rm: number): number {
  if (a < 0) { fl |= NV; return NaN; }
  const r = Math.sqrt(a);
  if (r >= LO && r <= HI) {
    if (rm === RNE && accNX) return r;
    const ph = r * r;
    const rem = (a - ph) - twoProdErr(r, r, ph);
    if (rm === RNE || rm === RMM) { // a square root is never an exact midpoint
      if (rem !== 0) fl |= NX;
      return r;
    }
    return adjD(r, rem, rm, false);
  }
  if (a === 0 || a === Infinity) return r;
  return softSqrt(a, true, rm);
}

// ---------------------------------------------------------------------------
// Single-precision operations (operands are singles held in doubles, not NaN)

function addS(a: number, b: number, rm: number): number {
  const s = a + b;
  if (s !== s) { fl |= NV; return s; }
  if (a === 0 || b === 0 || s === 0) return zeroAdd(a, b, s, rm);
  if (a - a !== 0 || b - b !== 0) return s;
  const bb = s - a;
  return roundS(s, (a - (s - bb)) + (b - bb), rm);
}

function mulS(a: number, b: number, rm: number): number {
  const p = a * b; // exact: 24x24-bit product, in double range
  if (p !== p) { fl |= NV; return p; }
  if (a === 0 || b === 0 || a - a !== 0 || b - b !== 0) return p;
  return roundS(p, 0, rm);
}

function divS(a: number, b: number, rm: number): number {
  const q = a / b;
  if (q !== q) { fl |= NV; return q; }
  if (b === 0) {
    if (a - a === 0) fl |= DZ;
    return q;
  }
  if (a === 0 || a - a !== 0 || b - b !== 0) return q;
  const ph = q * b;
  const rem = (a - ph) - twoProdErr(q, b, ph);
  return roundS(q, b > 0 ? rem : -rem, rm);
}

function sqrtS(a: number, rm: number): number {
  if (a < 0) { fl |= NV; return NaN; }
  if (a === 0 || a === Infinity) return a;
  const r = Math.sqrt(a);
  const ph = r * r;
  return roundS(r, (a - ph) - twoProdErr(r, r, ph), rm);
}

/** a*b + c with one rounding; operands are not NaN (sign changes already applied). */
function fmaOp(a: number, b: number, c: number, dbl: boolean, rm: number): number {
  if (a === 0 || b === 0 || a - a !== 0 || b - b !== 0) {
    const p = a * b; // exact: zero or infinity
    if (p !== p) { fl |= NV; return p; }
    if (p === 0) return c === 0 ? zeroAdd(p, c, p + c, rm) : c;
    if (c - c !== 0 && c !== p) { fl |= NV; return NaN; }
    return p;
  }
  if (c - c !== 0) return c;
  if (c === 0) return dbl ? mulD(a, b, rm) : roundS(a * b, 0, rm);
  if (!dbl) {
    const p = a * b; // exact
    const s = p + c;
    const bb = s - p;
    const err = (p - (s - bb)) + (c - bb);
    if (s === 0 && err === 0) return rm === RDN ? -0 : 0;
    return roundS(s, err, rm);
  }
  return fmaD(a, b, c, rm);
}

/**
 * Double FMA, a, b, c finite non-zero. The exact value a*b + c is written as
 * r + e3 + e2 with error-free transformations (r = RN(s + t), see below); the
 * rounding of the exact value is decided from r, its neighbour n toward the
 * tail and the tail's size. If the check is inconclusive (tail close to a
 * half-ulp boundary beyond what can be certified, tiny or huge results), the
 * exact BigInt path decides.
 */
function fmaD(a: number, b: number, c: number, rm: number): number {
  const aa = a < 0 ? -a : a, ab = b < 0 ? -b : b, ac = c < 0 ? -c : c;
  if (aa >= LO && aa <= HI && ab >= LO && ab <= HI && ac < TWO_1020) {
    const ph = a * b;
    const pl = twoProdErr(a, b, ph);           // a*b = ph + pl
    if (pl === 0) return addD(ph, c, rm);      // exact product: a plain add
    const s = ph + c;
    let bb = s - ph;
    const e1 = (ph - (s - bb)) + (c - bb);     // ph + c = s + e1
    const t = e1 + pl;
    bb = t - e1;
    const e2 = (e1 - (t - bb)) + (pl - bb);    // e1 + pl = t + e2
    const r = s + t;
    bb = r - s;
    const e3 = (s - (r - bb)) + (t - bb);      // s + t = r + e3; exact = r + e3 + e2
    const ar = r < 0 ? -r : r;
    if (ar > TWO_M1021 && ar < TWO_1023) {
      if (e3 === 0 && e2 === 0) return r;
      const dir = e3 !== 0 ? e3 : e2;          // side of r on which the exact value lies
      const away = (dir > 0) === (r > 0);
      const n = away ? awayD(r) : towardZeroD(r);
      const half = (n > r ? n - r : r - n) * 0.5;
      const ae3 = e3 < 0 ? -e3 : e3, ae2 = e2 < 0 ? -e2 : e2;
      let nearest = r;
      let tie = false;
      if (ae3 < half) {
        // |e3 + e2| < half and sign(e3 + e2) = sign(dir) must be certain
        if (ae2 < (half - ae3) * 0.5 && (e3 === 0 || ae2 < ae3)) {
          // nearest is r
        } else return softFma(a, b, c, true, rm);
      } else { // s + t was a midpoint (|e3| = half); e2 decides
        if (!(ae2 < half * 0.5)) return softFma(a, b, c, true, rm);
        if (e2 === 0) tie = true; // r is the even neighbour
        else if ((e2 > 0) === (e3 > 0)) nearest = n;
      }
      // The exact value lies strictly between r and n.
      fl |= NX;
      switch (rm) {
        case RNE: return nearest;
        case RMM: return tie ? (away ? n : r) : nearest;
        case RTZ: return away ? r : n;
        case RDN: return dir > 0 ? r : n;
        default: return dir > 0 ? n : r;
      }
    }
  }
  return softFma(a, b, c, true, rm);
}

// ---------------------------------------------------------------------------
// Conversions

/** Rounds a finite double to an integral double in the given mode. */
function rndInt(v: number, rm: number): number {
  switch (rm) {
    case RTZ: return Math.trunc(v);
    case RDN: return Math.floor(v);
    case RUP: return Math.ceil(v);
    default: {
      const a = v < 0 ? -v : v;
      if (!(a < 4503599627370496)) return v; // already integral
      const t = Math.floor(a);
      const d = a - t; // exact: the fraction bits of a
      let r: number;
      if (d > 0.5) r = t + 1;
      else if (d < 0.5) r = t;
      else r = rm === RMM || t % 2 !== 0 ? t + 1 : t;
      return v < 0 ? -r : r;
    }
  }
}

const TWO_31 = 2147483648;
const TWO_32 = 4294967296;
const TWO_63 = 9223372036854775808;
const TWO_64 = 18446744073709551616;

/** FCVT.{W,WU,L,LU}.{S,D}: kind = rs2 (0 W, 1 WU, 2 L, 3 LU). */
function cvtToInt(x: Int32Array, rd: number, a: number, kind: number, rm: number): void {
  let lo: number, hi: number;
  let valid = false;
  let r = 0;
  if (a === a) {
    r = rndInt(a, rm);
    switch (kind) {
      case 0: valid = r >= -TWO_31 && r < TWO_31; break;
      case 1: valid = r >= 0 && r < TWO_32; break; // -0 is valid (0)
      case 2: valid = r >= -TWO_63 && r < TWO_63; break;
      default: valid = r >= 0 && r < TWO_64; break;
    }
  }
  if (valid) {
    if (r !== a) fl |= NX;
    if (kind < 2) {
      lo = r | 0;
      hi = lo >> 31; // 32-bit results are sign-extended
    } else {
      const h = Math.floor(r / TWO_32);
      lo = (r - h * TWO_32) | 0;
      hi = h | 0;
    }
  } else {
    fl |= NV;
    const pos = a !== a || a > 0;
    switch (kind) {
      case 0: lo = pos ? 0x7fffffff : -0x80000000; hi = pos ? 0 : -1; break;
      case 1: lo = pos ? -1 : 0; hi = lo; break;
      case 2: lo = pos ? -1 : 0; hi = pos ? 0x7fffffff : -0x80000000; break;
      default: lo = pos ? -1 : 0; hi = lo; break;
    }
  }
  wrX(x, rd, lo, hi);
}

/** FCVT.{S,D}.{W,WU,L,LU}: kind = rs2. */
function cvtFromInt(x: Int32Array, rs1: number, kind: number, dbl: boolean, rm: number): number {
  const lo = x[2 * rs1], hi = x[2 * rs1 + 1];
  let v: number;
  switch (kind) {
    case 0: v = lo; break;
    case 1: v = lo >>> 0; break;
    case 2:
      if (hi >= -0x200000 && hi < 0x200000) { v = hi * TWO_32 + (lo >>> 0); break; }
      {
        const big = BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo >>> 0));
        return big < 0n ? softFromInt(true, -big, dbl, rm) : softFromInt(false, big, dbl, rm);
      }
    default:
      if ((hi >>> 0) < 0x200000) { v = (hi >>> 0) * TWO_32 + (lo >>> 0); break; }
      return softFromInt(false, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0), dbl, rm);
  }
  // |v| <= 2^53: exact as a double
  if (dbl || v === 0) return v;
  return roundS(v, 0, rm);
}

function classS(b: number): number {
  const neg = b < 0;
  const e = (b >>> 23) & 0xff;
  const m = b & 0x7fffff;
  if (e === 0xff) {
    if (m === 0) return neg ? 1 : 1 << 7;
    return (m & 0x400000) !== 0 ? 1 << 9 : 1 << 8;
  }
  if (e === 0) {
    if (m === 0) return neg ? 1 << 3 : 1 << 4;
    return neg ? 1 << 2 : 1 << 5;
  }
  return neg ? 1 << 1 : 1 << 6;
}

function classD(lo: number, hi: number): number {
  const neg = hi < 0;
  const e = (hi >>> 20) & 0x7ff;
  const mz = ((hi & 0xfffff) | lo) === 0;
  if (e === 0x7ff) {
    if (mz) return neg ? 1 : 1 << 7;
    return (hi & 0x80000) !== 0 ? 1 << 9 : 1 << 8;
  }
  if (e === 0) {
    if (mz) return neg ? 1 << 3 : 1 << 4;
    return neg ? 1 << 2 : 1 << 5;
  }
  return neg ? 1 << 1 : 1 << 6;
}

// ---------------------------------------------------------------------------
// Entry point

/**
 * Executes one OP-FP (opcode 0x53) or fused multiply-add (0x43, 0x47, 0x4b,
 * 0x4f) instruction. Returns false, without modifying anything, if the
 * encoding is illegal (reserved funct, rm=5/6, rm=7 with frm>4, bad fmt, ...).
 */
export function executeFp(h: FpuHart, insn: number): boolean {
  const opcode = insn & 0x7f;
  const fmt = (insn >>> 25) & 3;
  if (fmt > 1) return false;
  const dbl = fmt === 1;
  const rd = (insn >>> 7) & 31;
  const funct3 = (insn >>> 12) & 7;
  const rs1 = (insn >>> 15) & 31;
  const rs2 = (insn >>> 20) & 31;
  const f = h.f;
  const rm = funct3 === 7 ? h.frm : funct3; // meaningful only for rounding instructions
  fl = 0;
  sf.fl = 0;
  accNX = (h.fflags & NX) !== 0;

  if (opcode !== 0x53) {
    if (opcode !== 0x43 && opcode !== 0x47 && opcode !== 0x4b && opcode !== 0x4f) return false;
    if (rm > 4) return false;
    const rs3 = insn >>> 27;
    let a: number, b: number, c: number;
    if (dbl) { a = rdD(f, rs1); b = rdD(f, rs2); c = rdD(f, rs3); }
    else { a = rdS(f, rs1); b = rdS(f, rs2); c = rdS(f, rs3); }
    let r: number;
    if (a !== a || b !== b || c !== c) {
      if (isSNaN(f, rs1, dbl) || isSNaN(f, rs2, dbl) || isSNaN(f, rs3, dbl)) fl |= NV;
      // inf * 0 is invalid even when the addend is a quiet NaN
      else if ((a === 0 && (b === Infinity || b === -Infinity)) ||
               (b === 0 && (a === Infinity || a === -Infinity))) fl |= NV;
      r = NaN;
    } else {
      if (opcode === 0x4b || opcode === 0x4f) a = -a; // FNMSUB, FNMADD: -(a*b)
      if (opcode === 0x47 || opcode === 0x4f) c = -c; // FMSUB, FNMADD: -c
      r = fmaOp(a, b, c, dbl, rm);
    }
    if (dbl) wrD(f, rd, r); else wrS(f, rd, r);
    h.fflags |= fl | sf.fl;
    return true;
  }

  const funct5 = insn >>> 27;
  switch (funct5) {
    case 0x00: case 0x01: case 0x02: case 0x03: { // FADD FSUB FMUL FDIV
      if (rm > 4) return false;
      let r: number;
      if (dbl) {
        const a = rdD(f, rs1), b = rdD(f, rs2);
        if (a !== a || b !== b) {
          if (isSNaN(f, rs1, true) || isSNaN(f, rs2, true)) fl |= NV;
          r = NaN;
        } else if (funct5 === 0) r = addD(a, b, rm);
        else if (funct5 === 1) r = addD(a, -b, rm);
        else if (funct5 === 2) r = mulD(a, b, rm);
        else r = divD(a, b, rm);
        wrD(f, rd, r);
      } else {
        const a = rdS(f, rs1), b = rdS(f, rs2);
        if (a !== a || b !== b) {
          if (isSNaN(f, rs1, false) || isSNaN(f, rs2, false)) fl |= NV;
          r = NaN;
        } else if (funct5 === 0) r = addS(a, b, rm);
        else if (funct5 === 1) r = addS(a, -b, rm);
        else if (funct5 === 2) r = mulS(a, b, rm);
        else r = divS(a, b, rm);
        wrS(f, rd, r);
      }
      break;
    }
    case 0x0b: { // FSQRT
      if (rs2 !== 0 || rm > 4) return false;
      const a = dbl ? rdD(f, rs1) : rdS(f, rs1);
      let r: number;
      if (a !== a) {
        if (isSNaN(f, rs1, dbl)) fl |= NV;
        r = NaN;
      } else r = dbl ? sqrtD(a, rm) : sqrtS(a, rm);
      if (dbl) wrD(f, rd, r); else wrS(f, rd, r);
      break;
    }
    case 0x04: { // FSGNJ FSGNJN FSGNJX (pure bit operations)
      if (funct3 > 2) return false;
      if (dbl) {
        const lo = f[2 * rs1], ha = f[2 * rs1 + 1], hb = f[2 * rs2 + 1];
        const s = funct3 === 0 ? hb : funct3 === 1 ? ~hb : ha ^ hb;
        f[2 * rd] = lo;
        f[2 * rd + 1] = (ha & 0x7fffffff) | (s & 0x80000000);
      } else {
        const ba = f[2 * rs1 + 1] === -1 ? f[2 * rs1] : 0x7fc00000;
        const bb = f[2 * rs2 + 1] === -1 ? f[2 * rs2] : 0x7fc00000;
        const s = funct3 === 0 ? bb : funct3 === 1 ? ~bb : ba ^ bb;
        f[2 * rd] = (ba & 0x7fffffff) | (s & 0x80000000);
        f[2 * rd + 1] = -1;
      }
      break;
    }
    case 0x05: { // FMIN FMAX
      if (funct3 > 1) return false;
      const a = dbl ? rdD(f, rs1) : rdS(f, rs1);
      const b = dbl ? rdD(f, rs2) : rdS(f, rs2);
      let r: number;
      if (a !== a || b !== b) {
        if (isSNaN(f, rs1, dbl) || isSNaN(f, rs2, dbl)) fl |= NV;
        r = a !== a ? b : a; // the non-NaN operand, or NaN if both are NaN
      } else if (a === b) {
        if (a === 0) { // -0 < +0
          const na = Object.is(a, -0), nb = Object.is(b, -0);
          r = (funct3 === 0 ? (na || nb) : (na && nb)) ? -0 : 0;
        } else r = a;
      } else if (funct3 === 0) r = a < b ? a : b;
      else r = a > b ? a : b;
      if (dbl) wrD(f, rd, r); else wrS(f, rd, r);
      break;
    }
    case 0x08: { // FCVT.S.D (fmt=S, rs2=1) / FCVT.D.S (fmt=D, rs2=0)
      if (rs2 !== (dbl ? 0 : 1) || rm > 4) return false;
      if (dbl) {
        const a = rdS(f, rs1);
        if (a !== a && isSNaN(f, rs1, false)) fl |= NV;
        wrD(f, rd, a);
      } else {
        const a = rdD(f, rs1);
        let r: number;
        if (a !== a) {
          if (isSNaN(f, rs1, true)) fl |= NV;
          r = NaN;
        } else if (a === 0 || a - a !== 0) r = a;
        else r = roundS(a, 0, rm);
        wrS(f, rd, r);
      }
      break;
    }
    case 0x14: { // FLE FLT FEQ
      if (funct3 > 2) return false;
      const a = dbl ? rdD(f, rs1) : rdS(f, rs1);
      const b = dbl ? rdD(f, rs2) : rdS(f, rs2);
      let r: boolean;
      if (a !== a || b !== b) {
        // FEQ is a quiet comparison; FLT and FLE are signaling.
        if (funct3 !== 2 || isSNaN(f, rs1, dbl) || isSNaN(f, rs2, dbl)) fl |= NV;
        r = false;
      } else r = funct3 === 2 ? a === b : funct3 === 1 ? a < b : a <= b;
      wrX(h.x, rd, r ? 1 : 0, 0);
      break;
    }
    case 0x18: { // FCVT.W/WU/L/LU.{S,D}
      if (rs2 > 3 || rm > 4) return false;
      const a = dbl ? rdD(f, rs1) : rdS(f, rs1);
      cvtToInt(h.x, rd, a, rs2, rm);
      break;
    }
    case 0x1a: { // FCVT.{S,D}.W/WU/L/LU
      if (rs2 > 3 || rm > 4) return false;
      const r = cvtFromInt(h.x, rs1, rs2, dbl, rm);
      if (dbl) wrD(f, rd, r); else wrS(f, rd, r);
      break;
    }
    case 0x1c: { // FMV.X.W / FMV.X.D (funct3=0), FCLASS (funct3=1)
      if (rs2 !== 0 || funct3 > 1) return false;
      const lo = f[2 * rs1], hi = f[2 * rs1 + 1];
      if (funct3 === 0) {
        if (dbl) wrX(h.x, rd, lo, hi);
        else wrX(h.x, rd, lo, lo >> 31); // lower 32 bits, sign-extended; boxing ignored
      } else {
        const c = dbl ? classD(lo, hi) : classS(hi === -1 ? lo : 0x7fc00000);
        wrX(h.x, rd, c, 0);
      }
      break;
    }
    case 0x1e: { // FMV.W.X / FMV.D.X
      if (rs2 !== 0 || funct3 !== 0) return false;
      const lo = h.x[2 * rs1], hi = h.x[2 * rs1 + 1];
      f[2 * rd] = lo;
      f[2 * rd + 1] = dbl ? hi : -1;
      break;
    }
    default:
      return false;
  }
  h.fflags |= fl | sf.fl;
  return true;
}
