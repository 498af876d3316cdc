/**
 * 64-bit integer helpers over (lo, hi) int32 halves.
 *
 * The interpreter keeps every 64-bit register as two int32 halves because V8 handles small
 * integers without allocation, while BigInt values escaping a function allocate. The common
 * operations (add, compare, shifts, logic) are inlined in the interpreter; the rarer ones
 * (multiply-high, divide) live here and may use BigInt. Results with two halves return the
 * low half and leave the high half in `hi64`.
 */
export let hi64 = 0;

export function toBig(lo: number, hi: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo >>> 0);
}
export function toBigU(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
function fromBig(v: bigint): number {
  hi64 = Number(BigInt.asIntN(32, v >> 32n));
  return Number(BigInt.asIntN(32, v));
}

/** High 32 bits of the unsigned 64-bit product of two unsigned 32-bit values. */
function mulhu32(a: number, b: number): number {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) | 0;
}

/** Low 64 bits of a 64x64 product (MUL). */
export function mul(alo: number, ahi: number, blo: number, bhi: number): number {
  hi64 = (mulhu32(alo, blo) + Math.imul(alo, bhi) + Math.imul(ahi, blo)) | 0;
  return Math.imul(alo, blo);
}

/**
 * High 64 bits of the unsigned 128-bit product, from four 32x32 partial products. Bignum code
 * (the kernel's RSA module-signature check) lives on this, so it avoids BigInt.
 */
export function mulhu(alo: number, ahi: number, blo: number, bhi: number): number {
  const p0hi = mulhu32(alo, blo) >>> 0;
  const p1lo = Math.imul(alo, bhi) >>> 0, p1hi = mulhu32(alo, bhi) >>> 0;
  const p2lo = Math.imul(ahi, blo) >>> 0, p2hi = mulhu32(ahi, blo) >>> 0;
  const p3lo = Math.imul(ahi, bhi) >>> 0, p3hi = mulhu32(ahi, bhi) >>> 0;
  const c1 = Math.floor((p0hi + p1lo + p2lo) / 4294967296);
  const w2 = p1hi + p2hi + p3lo + c1;
  hi64 = (p3hi + Math.floor(w2 / 4294967296)) | 0;
  return w2 | 0;
}

/** Subtracts (lo, hi) from the pending result (lo returned here, hi in hi64), modulo 2^64. */
function subFrom(rlo: number, lo: number, hi: number): number {
  const r = (rlo - lo) | 0;
  hi64 = (hi64 - hi - ((rlo >>> 0) < (lo >>> 0) ? 1 : 0)) | 0;
  return r;
}

/** Signed x signed: the unsigned high product corrected by the operands' signs. */
export function mulh(alo: number, ahi: number, blo: number, bhi: number): number {
  let r = mulhu(alo, ahi, blo, bhi);
  if (ahi < 0) r = subFrom(r, blo, bhi);
  if (bhi < 0) r = subFrom(r, alo, ahi);
  return r;
}
/** Signed x unsigned. */
export function mulhsu(alo: number, ahi: number, blo: number, bhi: number): number {
  const r = mulhu(alo, ahi, blo, bhi);
  return ahi < 0 ? subFrom(r, blo, bhi) : r;
}

const MIN64 = -(1n << 63n);
export function div(alo: number, ahi: number, blo: number, bhi: number): number {
  if (blo === 0 && bhi === 0) { hi64 = -1; return -1; }
  const a = toBig(alo, ahi), b = toBig(blo, bhi);
  if (a === MIN64 && b === -1n) { hi64 = ahi; return alo; }
  return fromBig(a / b);
}
export function divu(alo: number, ahi: number, blo: number, bhi: number): number {
  if (blo === 0 && bhi === 0) { hi64 = -1; return -1; }
  if (ahi === 0 && bhi === 0) { hi64 = 0; return ((alo >>> 0) / (blo >>> 0)) | 0; }
  return fromBig(toBigU(alo, ahi) / toBigU(blo, bhi));
}
export function rem(alo: number, ahi: number, blo: number, bhi: number): number {
  if (blo === 0 && bhi === 0) { hi64 = ahi; return alo; }
  const a = toBig(alo, ahi), b = toBig(blo, bhi);
  if (a === MIN64 && b === -1n) { hi64 = 0; return 0; }
  return fromBig(a % b);
}
export function remu(alo: number, ahi: number, blo: number, bhi: number): number {
  if (blo === 0 && bhi === 0) { hi64 = ahi; return alo; }
  if (ahi === 0 && bhi === 0) { hi64 = 0; return ((alo >>> 0) % (blo >>> 0)) | 0; }
  return fromBig(toBigU(alo, ahi) % toBigU(blo, bhi));
}

/** 32-bit variants (DIVW etc.): operate on the low words, result sign-extended by the caller. */
export function divw(a: number, b: number): number {
  if (b === 0) return -1;
  if (a === -0x80000000 && b === -1) return a;
  return (a / b) | 0;
}
export function divuw(a: number, b: number): number {
  if (b === 0) return -1;
  return ((a >>> 0) / (b >>> 0)) | 0;
}
export function remw(a: number, b: number): number {
  if (b === 0) return a;
  if (a === -0x80000000 && b === -1) return 0;
  return (a % b) | 0;
}
export function remuw(a: number, b: number): number {
  if (b === 0) return a;
  return ((a >>> 0) % (b >>> 0)) | 0;
}
