/**
 * Exact (BigInt based) slow paths for the FPU.
 *
 * Every finite operand is a JS double (single-precision values are exactly
 * representable as doubles), decomposed as (-1)^sign * sig * 2^exp with an
 * integer significand. Results are computed exactly (or exactly plus a sticky
 * bit) and rounded once by {@link roundPack} to the target format, which
 * returns the rounded value as a JS number (again exact for singles) and ORs
 * IEEE flags into {@link sf.fl}.
 *
 * Underflow uses tininess detection AFTER rounding (RISC-V / IEEE 754 option),
 * i.e. a result is tiny when rounding it to the target precision with an
 * unbounded exponent range, in the current rounding mode, gives a magnitude
 * below the smallest normal number. UF is raised when tiny and inexact.
 */

// Flag and rounding-mode numbers mirror FpFlag / RoundingMode in fpu.ts.
const NX = 1, UF = 2, OF = 4;
const RNE = 0, RTZ = 1, RDN = 2, RUP = 3;

/** Flags raised by the last soft-path operations (caller reads and clears). */
export const sf = { fl: 0 };

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/** POW2[e + 1074] = 2^e exactly, for e in [-1074, 1023]. */
const POW2 = new Float64Array(2098);
{
  let v = 1;
  for (let e = 0; e <= 1023; e++) { POW2[e + 1074] = v; v *= 2; }
  v = 1;
  for (let e = 0; e >= -1074; e--) { POW2[e + 1074] = v; v /= 2; }
}
export function pow2(e: number): number { return POW2[e + 1074]; }

const MAX_D = 1.7976931348623157e308;
const MAX_S = 3.4028234663852886e38;

// Unpacked operand (module-level scratch, avoids allocation).
let uNeg = false;
let uSig = 0n;
let uExp = 0;

/** Decompose a finite non-zero double. */
function unpack(x: number): void {
  f64[0] = x;
  const lo = u32[0], hi = u32[1];
  uNeg = (hi >>> 31) !== 0;
  const ef = (hi >>> 20) & 0x7ff;
  const frac = (hi & 0xfffff) * 4294967296 + lo;
  if (ef === 0) { uSig = BigInt(frac); uExp = -1074; }
  else { uSig = BigInt(frac + 4503599627370496); uExp = ef - 1075; }
}

/** Number of significant bits of a positive bigint. */
export function bitLen(x: bigint): number {
  if (x < 0x20000000000000n) {
    const n = Number(x);
    if (n < 4294967296) return 32 - Math.clz32(n);
    return 64 - Math.clz32(Math.floor(n / 4294967296));
  }
  const h = x.toString(16);
  return (h.length - 1) * 4 + 32 - Math.clz32(parseInt(h[0], 16));
}

let rInexact = false;

/** Rounds sig*2^exp to a multiple of 2^q (q > exp means bits are dropped). Returns the multiple count. */
function roundAt(neg: boolean, sig: bigint, exp: number, q: number, rm: number): bigint {
  const shift = q - exp;
  if (shift <= 0) { rInexact = false; return sig << BigInt(-shift); }
  const bs = BigInt(shift);
  const kept = sig >> bs;
  const rem = sig - (kept << bs);
  if (rem === 0n) { rInexact = false; return kept; }
  rInexact = true;
  const half = 1n << (bs - 1n);
  let inc: boolean;
  switch (rm) {
    case RNE: inc = rem > half || (rem === half && (kept & 1n) === 1n); break;
    case RTZ: inc = false; break;
    case RDN: inc = neg; break;
    case RUP: inc = !neg; break;
    default: inc = rem >= half; break; // RMM: ties away from zero
  }
  return inc ? kept + 1n : kept;
}

/**
 * Rounds the exact value (-1)^neg * (sig + d) * 2^exp, where d = 0 when !sticky and
 * 0 < d < 1 when sticky, to single (dbl=false) or double precision.
 * When sticky is set, sig must have at least p+2 significant bits.
 * sig must be > 0.
 */
export function roundPack(neg: boolean, sig: bigint, exp: number, sticky: boolean, dbl: boolean, rm: number): number {
  const p = dbl ? 53 : 24;
  const emin = dbl ? -1022 : -126;
  const emax = dbl ? 1023 : 127;
  if (sticky) { sig = (sig << 2n) | 1n; exp -= 2; }
  const E = exp + bitLen(sig) - 1; // exponent of the leading bit of the exact value
  const qU = E - p + 1;             // quantum with unbounded exponent range
  const qMin = emin - p + 1;        // subnormal quantum
  let q = qU > qMin ? qU : qMin;
  let kept = roundAt(neg, sig, exp, q, rm);
  const inexact = rInexact;
  let fl = inexact ? NX : 0;
  const top = 1n << BigInt(p);
  if (kept === top) { kept = top >> 1n; q += 1; }
  if (kept !== 0n && q + bitLen(kept) - 1 > emax) {
    sf.fl |= OF | NX;
    const max = dbl ? MAX_D : MAX_S;
    let mag: number;
    switch (rm) {
      case RTZ: mag = max; break;
      case RDN: mag = neg ? Infinity : max; break;
      case RUP: mag = neg ? max : Infinity; break;
      default: mag = Infinity; break;
    }
    return neg ? -mag : mag;
  }
  if (inexact && E < emin) {
    // Tininess after rounding: round with unbounded exponent and compare with 2^emin.
    const ku = roundAt(neg, sig, exp, qU, rm);
    const tiny = !(ku === top && E + 1 >= emin);
    if (tiny) fl |= UF;
  }
  sf.fl |= fl;
  const mag = Number(kept) * pow2(q);
  return neg ? -mag : mag;
}

/** Exact a + b, both finite non-zero, rounded once. */
export function softAdd(a: number, b: number, dbl: boolean, rm: number): number {
  unpack(a);
  const na = uNeg, ma = uSig, ea = uExp;
  unpack(b);
  return addParts(na, ma, ea, uNeg, uSig, uExp, dbl, rm);
}

function addParts(na: boolean, ma: bigint, ea: number, nb: boolean, mb: bigint, eb: number,
                  dbl: boolean, rm: number): number {
  const e = ea < eb ? ea : eb;
  let A = ma << BigInt(ea - e);
  if (na) A = -A;
  let B = mb << BigInt(eb - e);
  if (nb) B = -B;
  const S = A + B;
  if (S === 0n) return rm === RDN ? -0 : 0;
  return S < 0n ? roundPack(true, -S, e, false, dbl, rm) : roundPack(false, S, e, false, dbl, rm);
}

/** Exact a * b, both finite non-zero, rounded once. */
export function softMul(a: number, b: number, dbl: boolean, rm: number): number {
  unpack(a);
  const na = uNeg, ma = uSig, ea = uExp;
  unpack(b);
  return roundPack(na !== uNeg, ma * uSig, ea + uExp, false, dbl, rm);
}

/** a / b, both finite non-zero, correctly rounded. */
export function softDiv(a: number, b: number, dbl: boolean, rm: number): number {
  unpack(a);
  const na = uNeg, ma = uSig, ea = uExp;
  unpack(b);
  const mb = uSig, eb = uExp;
  const p = dbl ? 53 : 24;
  let k = p + 3 + bitLen(mb) - bitLen(ma);
  if (k < 0) k = 0;
  const N = ma << BigInt(k);
  const Q = N / mb;
  return roundPack(na !== uNeg, Q, ea - eb - k, N !== Q * mb, dbl, rm);
}

function isqrt(M: bigint): bigint {
  // Start above floor(sqrt(M)) and run Newton's iteration downwards.
  let x = BigInt(Math.ceil(Math.sqrt(Number(M)) * (1 + 2 ** -40))) + 2n;
  for (;;) {
    const y = (x + M / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  while (x * x > M) x -= 1n;
  while ((x + 1n) * (x + 1n) <= M) x += 1n;
  return x;
}

/** sqrt(a), a finite and > 0, correctly rounded. */
export function softSqrt(a: number, dbl: boolean, rm: number): number {
  unpack(a);
  const m = uSig, e = uExp;
  const p = dbl ? 53 : 24;
  let k = 2 * (p + 3) - bitLen(m);
  if (k < 0) k = 0;
  if (((e - k) & 1) !== 0) k++;
  const M = m << BigInt(k);
  const r = isqrt(M);
  return roundPack(false, r, (e - k) / 2, r * r !== M, dbl, rm);
}

/** a * b + c, all finite non-zero, with a single rounding. */
export function softFma(a: number, b: number, c: number, dbl: boolean, rm: number): number {
  unpack(a);
  const na = uNeg, ma = uSig, ea = uExp;
  unpack(b);
  const np = na !== uNeg, mp = ma * uSig, ep = ea + uExp;
  unpack(c);
  return addParts(np, mp, ep, uNeg, uSig, uExp, dbl, rm);
}

/** Rounds the integer (-1)^neg * mag (mag > 0) to the target format. */
export function softFromInt(neg: boolean, mag: bigint, dbl: boolean, rm: number): number {
  return roundPack(neg, mag, 0, false, dbl, rm);
}

/**
 * Rounds to the target format an exact value known only as a normal double d
 * plus the sign eps of (exact - d), where exact lies strictly between d's
 * neighbouring doubles (e.g. d is the round-to-nearest double of exact).
 * Only valid for a single-precision target (dbl=false) unless eps === 0: the
 * sticky form needs p+2 significant bits, which a double has for p = 24 only.
 */
export function softRoundDouble(d: number, eps: number, dbl: boolean, rm: number): number {
  unpack(d);
  if (eps === 0) return roundPack(uNeg, uSig, uExp, false, dbl, rm);
  const magUp = (eps > 0) !== uNeg; // exact magnitude above |d|?
  return magUp ? roundPack(uNeg, uSig, uExp, true, dbl, rm)
               : roundPack(uNeg, uSig - 1n, uExp, true, dbl, rm);
}
