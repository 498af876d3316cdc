/*
 * Reference vector generator for the Vessel FPU (src/cpu/fpu.ts).
 *
 * Uses the host's IEEE 754 hardware (x86-64 SSE, or whatever the host libm /
 * compiler use) via fesetround/feclearexcept/fetestexcept for RNE, RTZ, RDN and
 * RUP. Where RISC-V semantics differ from plain IEEE hardware behaviour the
 * expectation is derived from the RISC-V specification instead:
 *   - NaN results are the canonical NaN (0x7fc00000 / 0x7ff8000000000000);
 *   - FMA with inf*0 raises NV even when the addend is a quiet NaN;
 *   - float -> integer conversions saturate (NaN -> max) and raise NV/NX per
 *     the spec table (computed with nearbyint()/round() + range checks);
 *   - FMIN/FMAX (2019 semantics), FEQ/FLT/FLE, FCLASS, FSGNJ* are computed
 *     directly from their spec definitions;
 *   - RMM (round to nearest, ties away) does not exist on x86: it equals RNE
 *     except when the exact result is a midpoint between two representable
 *     neighbours. The exact result is obtained in binary128 (__float128), where
 *     any midpoint is representable, so a binary128 operation that is exact
 *     (no FE_INEXACT) yields the value to test for a tie; an inexact binary128
 *     result cannot be a midpoint. Square roots are never midpoints.
 *
 * Output, one vector per line (hex, no 0x):
 *   <op> <rm> <a> <b> <c> <result> <flags>
 * a, b, c: operand bits (singles: 32-bit patterns; integer sources: 64-bit
 * x-register values); result: f-register bits (singles: 32 bits) or the
 * 64-bit x-register value; flags: RISC-V fflags (NV=10 DZ=8 OF=4 UF=2 NX=1).
 *
 * Usage: gen [seed] [scale]
 */
#define _GNU_SOURCE
#include <fenv.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GCC ignores "#pragma STDC FENV_ACCESS"; build with -frounding-math -fsignaling-nans. */

/* binary128 for the exact-result (RMM) checks */
#if LDBL_MANT_DIG == 113
typedef long double f128;
#elif defined(__x86_64__) || defined(__i386__)
typedef __float128 f128;
#else
#error "need a binary128 type (__float128 or 113-bit long double)"
#endif

#define F_NV 0x10
#define F_DZ 0x08
#define F_OF 0x04
#define F_UF 0x02
#define F_NX 0x01

static const int HOST_RM[4] = { FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD, FE_UPWARD };

/* ------------------------------------------------------------------------ */
/* Random numbers (xorshift64*) */

static uint64_t rs = 88172645463325252ull;
static uint64_t rnd64(void) {
  rs ^= rs >> 12; rs ^= rs << 25; rs ^= rs >> 27;
  return rs * 2685821657736338717ull;
}
static int rndint(int lo, int hi) { return lo + (int)(rnd64() % (uint64_t)(hi - lo + 1)); }

/* ------------------------------------------------------------------------ */
/* Bit casts */

static double d_of(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }
static uint64_t u_of_d(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
static float f_of(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t u_of_f(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static int isnan_d(uint64_t u) { return (u & 0x7fffffffffffffffull) > 0x7ff0000000000000ull; }
static int issnan_d(uint64_t u) { return isnan_d(u) && !(u & 0x0008000000000000ull); }
static int isnan_f(uint32_t u) { return (u & 0x7fffffffu) > 0x7f800000u; }
static int issnan_f(uint32_t u) { return isnan_f(u) && !(u & 0x00400000u); }

static int host_flags(void) {
  int e = fetestexcept(FE_ALL_EXCEPT), f = 0;
  if (e & FE_INVALID) f |= F_NV;
  if (e & FE_DIVBYZERO) f |= F_DZ;
  if (e & FE_OVERFLOW) f |= F_OF;
  if (e & FE_UNDERFLOW) f |= F_UF;
  if (e & FE_INEXACT) f |= F_NX;
  return f;
}

/* ------------------------------------------------------------------------ */
/* Arithmetic on the host */

enum { ADD, SUB, MUL, DIV, SQRT, MADD, MSUB, NMSUB, NMADD, NOPS };
static const char *OPNAME[NOPS] = { "fadd", "fsub", "fmul", "fdiv", "fsqrt",
                                    "fmadd", "fmsub", "fnmsub", "fnmadd" };

static volatile double vd_a, vd_b, vd_c, vd_r;
static volatile float vf_a, vf_b, vf_c, vf_r;
static volatile f128 vq_a, vq_b, vq_c, vq_r;

__attribute__((noinline)) static void host_op_d(int op) {
  double a = vd_a, b = vd_b, c = vd_c;
  switch (op) {
    case ADD: vd_r = a + b; break;
    case SUB: vd_r = a - b; break;
    case MUL: vd_r = a * b; break;
    case DIV: vd_r = a / b; break;
    case SQRT: vd_r = sqrt(a); break;
    case MADD: vd_r = fma(a, b, c); break;
    case MSUB: vd_r = fma(a, b, -c); break;
    case NMSUB: vd_r = fma(-a, b, c); break;
    case NMADD: vd_r = fma(-a, b, -c); break;
  }
}

__attribute__((noinline)) static void host_op_f(int op) {
  float a = vf_a, b = vf_b, c = vf_c;
  switch (op) {
    case ADD: vf_r = a + b; break;
    case SUB: vf_r = a - b; break;
    case MUL: vf_r = a * b; break;
    case DIV: vf_r = a / b; break;
    case SQRT: vf_r = sqrtf(a); break;
    case MADD: vf_r = fmaf(a, b, c); break;
    case MSUB: vf_r = fmaf(a, b, -c); break;
    case NMSUB: vf_r = fmaf(-a, b, c); break;
    case NMADD: vf_r = fmaf(-a, b, -c); break;
  }
}

/* Same operation in binary128 (round to nearest); returns 1 if exact. */
__attribute__((noinline)) static int quad_op(int op) {
  f128 a = vq_a, b = vq_b, c = vq_c;
  fesetround(FE_TONEAREST);
  feclearexcept(FE_ALL_EXCEPT);
  switch (op) {
    case ADD: vq_r = a + b; break;
    case SUB: vq_r = a - b; break;
    case MUL: vq_r = a * b; break;
    case DIV: vq_r = a / b; break;
    case SQRT: return 0; /* never a midpoint */
    case MADD: vq_r = a * b + c; break;
    case MSUB: vq_r = a * b - c; break;
    case NMSUB: vq_r = -(a * b) + c; break;
    case NMADD: vq_r = -(a * b) - c; break;
  }
  return !fetestexcept(FE_INEXACT);
}

/*
 * RMM from RNE: q is the exact result (when exact != 0). If q is a midpoint
 * between neighbours t (toward zero) and a (away), RMM gives a.
 */
static void rmm_fix(int dbl, int exact, f128 q, uint64_t *res, int *fl) {
  if (!exact || q == 0 || q != q) return;
  if (dbl) {
    volatile double t;
    fesetround(FE_TOWARDZERO); t = (double)q; fesetround(FE_TONEAREST);
    if (isinf(t) || fabs(t) == DBL_MAX) return; /* overflow: RNE and RMM agree */
    double a = nextafter(t, q > 0 ? INFINITY : -INFINITY);
    if (q - (f128)t != (f128)a - q) return;
    if (u_of_d(a) == *res) return;
    *res = u_of_d(a);
    *fl = F_NX | ((q > -(f128)DBL_MIN && q < (f128)DBL_MIN) ? F_UF : 0);
  } else {
    volatile float t;
    fesetround(FE_TOWARDZERO); t = (float)q; fesetround(FE_TONEAREST);
    if (isinf(t) || fabsf(t) == FLT_MAX) return;
    float a = nextafterf(t, q > 0 ? INFINITY : -INFINITY);
    if (q - (f128)t != (f128)a - q) return;
    if (u_of_f(a) == (uint32_t)*res) return;
    *res = u_of_f(a);
    *fl = F_NX | ((q > -(f128)FLT_MIN && q < (f128)FLT_MIN) ? F_UF : 0);
  }
}

static void emit(const char *op, int rm, uint64_t a, uint64_t b, uint64_t c, uint64_t r, int fl) {
  printf("%s %d %llx %llx %llx %llx %x\n", op, rm, (unsigned long long)a, (unsigned long long)b,
         (unsigned long long)c, (unsigned long long)r, fl);
}

static long count;

static void arith_d(int op, uint64_t ua, uint64_t ub, uint64_t uc) {
  char name[16];
  snprintf(name, sizeof name, "%s.d", OPNAME[op]);
  if (op == SQRT) ub = uc = 0;
  else if (op < MADD) uc = 0;
  uint64_t rne = 0; int rnef = 0;
  for (int rm = 0; rm < 4; rm++) {
    vd_a = d_of(ua); vd_b = d_of(ub); vd_c = d_of(uc);
    fesetround(HOST_RM[rm]);
    feclearexcept(FE_ALL_EXCEPT);
    host_op_d(op);
    int fl = host_flags();
    fesetround(FE_TONEAREST);
    uint64_t r = u_of_d(vd_r);
    if (isnan_d(r)) r = 0x7ff8000000000000ull;
    if (op >= MADD && isnan_d(uc) && !isnan_d(ua) && !isnan_d(ub)) {
      double a = d_of(ua), b = d_of(ub);
      if ((isinf(a) && b == 0) || (a == 0 && isinf(b))) fl = F_NV; /* RISC-V: inf*0 invalid even with qNaN addend */
    }
    if (rm == 0) { rne = r; rnef = fl; }
    emit(name, rm, ua, ub, uc, r, fl); count++;
  }
  int ok = 0;
  f128 q = 0;
  if (!isnan_d(rne) && !isnan_d(ua) && !isnan_d(ub) && !isnan_d(uc)) {
    vq_a = d_of(ua); vq_b = d_of(ub); vq_c = d_of(uc);
    ok = quad_op(op);
    q = vq_r;
    if (q != q || isinf((double)q) || q * 0 != 0) ok = 0;
  }
  rmm_fix(1, ok, q, &rne, &rnef);
  emit(name, 4, ua, ub, uc, rne, rnef); count++;
}

static void arith_f(int op, uint32_t ua, uint32_t ub, uint32_t uc) {
  char name[16];
  snprintf(name, sizeof name, "%s.s", OPNAME[op]);
  if (op == SQRT) ub = uc = 0;
  else if (op < MADD) uc = 0;
  uint64_t rne = 0; int rnef = 0;
  for (int rm = 0; rm < 4; rm++) {
    vf_a = f_of(ua); vf_b = f_of(ub); vf_c = f_of(uc);
    fesetround(HOST_RM[rm]);
    feclearexcept(FE_ALL_EXCEPT);
    host_op_f(op);
    int fl = host_flags();
    fesetround(FE_TONEAREST);
    uint32_t r = u_of_f(vf_r);
    if (isnan_f(r)) r = 0x7fc00000u;
    if (op >= MADD && isnan_f(uc) && !isnan_f(ua) && !isnan_f(ub)) {
      float a = f_of(ua), b = f_of(ub);
      if ((isinf(a) && b == 0) || (a == 0 && isinf(b))) fl = F_NV;
    }
    if (rm == 0) { rne = r; rnef = fl; }
    emit(name, rm, ua, ub, uc, r, fl); count++;
  }
  int ok = 0;
  f128 q = 0;
  if (!isnan_f((uint32_t)rne) && !isnan_f(ua) && !isnan_f(ub) && !isnan_f(uc)) {
    vq_a = f_of(ua); vq_b = f_of(ub); vq_c = f_of(uc);
    ok = quad_op(op);
    q = vq_r;
    if (q != q || q * 0 != 0) ok = 0;
  }
  rmm_fix(0, ok, q, &rne, &rnef);
  emit(name, 4, ua, ub, uc, rne, rnef); count++;
}

/* ------------------------------------------------------------------------ */
/* Conversions */

static volatile int32_t vi32; static volatile uint32_t vu32;
static volatile int64_t vi64; static volatile uint64_t vu64;

/* int -> float/double. kind: 0 W, 1 WU, 2 L, 3 LU. x: 64-bit register value. */
static void cvt_from_int(int dbl, int kind, uint64_t x) {
  static const char *KN[4] = { "w", "wu", "l", "lu" };
  char name[24];
  snprintf(name, sizeof name, "fcvt.%s.%s", dbl ? "d" : "s", KN[kind]);
  uint64_t rne = 0; int rnef = 0;
  f128 q = 0;
  switch (kind) {
    case 0: q = (int32_t)(uint32_t)x; break;
    case 1: q = (uint32_t)x; break;
    case 2: q = (int64_t)x; break;
    default: q = x; break;
  }
  for (int rm = 0; rm < 4; rm++) {
    vi32 = (int32_t)(uint32_t)x; vu32 = (uint32_t)x; vi64 = (int64_t)x; vu64 = x;
    fesetround(HOST_RM[rm]);
    feclearexcept(FE_ALL_EXCEPT);
    uint64_t r;
    if (dbl) {
      volatile double d;
      switch (kind) { case 0: d = vi32; break; case 1: d = vu32; break; case 2: d = vi64; break; default: d = vu64; break; }
      r = u_of_d(d);
    } else {
      volatile float f;
      switch (kind) { case 0: f = vi32; break; case 1: f = vu32; break; case 2: f = vi64; break; default: f = vu64; break; }
      r = u_of_f(f);
    }
    int fl = host_flags();
    fesetround(FE_TONEAREST);
    if (rm == 0) { rne = r; rnef = fl; }
    emit(name, rm, x, 0, 0, r, fl); count++;
  }
  rmm_fix(dbl, 1, q, &rne, &rnef);
  emit(name, 4, x, 0, 0, rne, rnef); count++;
}

/* float/double -> int, spec-derived (saturating). */
static void cvt_to_int(int dbl, int kind, uint64_t ua) {
  static const char *KN[4] = { "w", "wu", "l", "lu" };
  char name[24];
  snprintf(name, sizeof name, "fcvt.%s.%s", KN[kind], dbl ? "d" : "s");
  int nan = dbl ? isnan_d(ua) : isnan_f((uint32_t)ua);
  double v = dbl ? d_of(ua) : (double)f_of((uint32_t)ua);
  for (int rm = 0; rm < 5; rm++) {
    uint64_t res; int fl = 0;
    double r = 0;
    int valid = 0;
    if (!nan) {
      if (rm == 4) r = round(v); /* ties away from zero */
      else { fesetround(HOST_RM[rm]); r = nearbyint(v); fesetround(FE_TONEAREST); }
      switch (kind) {
        case 0: valid = r >= -2147483648.0 && r <= 2147483647.0; break;
        case 1: valid = r >= 0.0 && r <= 4294967295.0; break;
        case 2: valid = r >= -9223372036854775808.0 && r < 9223372036854775808.0; break;
        default: valid = r >= 0.0 && r < 18446744073709551616.0; break;
      }
    }
    if (valid) {
      if (r != v) fl = F_NX;
      switch (kind) {
        case 0: res = (uint64_t)(int64_t)(int32_t)r; break;
        case 1: res = (uint64_t)(int64_t)(int32_t)(uint32_t)r; break; /* sign-extended */
        case 2: res = (uint64_t)(int64_t)r; break;
        default: res = (uint64_t)r; break;
      }
    } else {
      int pos = nan || v > 0;
      fl = F_NV;
      switch (kind) {
        case 0: res = pos ? 0x7fffffffull : 0xffffffff80000000ull; break;
        case 1: res = pos ? 0xffffffffffffffffull : 0; break;
        case 2: res = pos ? 0x7fffffffffffffffull : 0x8000000000000000ull; break;
        default: res = pos ? 0xffffffffffffffffull : 0; break;
      }
    }
    emit(name, rm, ua, 0, 0, res, fl); count++;
  }
}

static void cvt_s_d(uint64_t ua) {
  uint64_t rne = 0; int rnef = 0;
  for (int rm = 0; rm < 4; rm++) {
    vd_a = d_of(ua);
    fesetround(HOST_RM[rm]);
    feclearexcept(FE_ALL_EXCEPT);
    vf_r = (float)vd_a;
    int fl = host_flags();
    fesetround(FE_TONEAREST);
    uint64_t r = u_of_f(vf_r);
    if (isnan_f((uint32_t)r)) r = 0x7fc00000u;
    if (rm == 0) { rne = r; rnef = fl; }
    emit("fcvt.s.d", rm, ua, 0, 0, r, fl); count++;
  }
  rmm_fix(0, !isnan_d(ua) && !isinf(d_of(ua)), (f128)d_of(ua), &rne, &rnef);
  emit("fcvt.s.d", 4, ua, 0, 0, rne, rnef); count++;
}

static void cvt_d_s(uint32_t ua) {
  for (int rm = 0; rm < 5; rm++) {
    vf_a = f_of(ua);
    fesetround(HOST_RM[rm < 4 ? rm : 0]);
    feclearexcept(FE_ALL_EXCEPT);
    vd_r = (double)vf_a;
    int fl = host_flags();
    fesetround(FE_TONEAREST);
    uint64_t r = u_of_d(vd_r);
    if (isnan_d(r)) r = 0x7ff8000000000000ull;
    emit("fcvt.d.s", rm, ua, 0, 0, r, fl); count++;
  }
}

/* ------------------------------------------------------------------------ */
/* Non-arithmetic operations, spec-derived */

static void misc_d(uint64_t ua, uint64_t ub) {
  double a = d_of(ua), b = d_of(ub);
  int an = isnan_d(ua), bn = isnan_d(ub), sn = issnan_d(ua) || issnan_d(ub);
  /* FEQ (quiet), FLT, FLE (signaling) */
  emit("feq.d", 0, ua, ub, 0, (!an && !bn && a == b), sn ? F_NV : 0); count++;
  emit("flt.d", 0, ua, ub, 0, (!an && !bn && a < b), (an || bn) ? F_NV : 0); count++;
  emit("fle.d", 0, ua, ub, 0, (!an && !bn && a <= b), (an || bn) ? F_NV : 0); count++;
  /* FMIN / FMAX: -0 < +0; one NaN -> the other operand; both NaN -> canonical NaN */
  for (int mx = 0; mx < 2; mx++) {
    uint64_t r;
    if (an && bn) r = 0x7ff8000000000000ull;
    else if (an) r = ub;
    else if (bn) r = ua;
    else if (a == b) r = mx ? (ua & ub) : (ua | ub); /* equal: differ only for +-0 */
    else r = (mx ? a > b : a < b) ? ua : ub;
    emit(mx ? "fmax.d" : "fmin.d", 0, ua, ub, 0, r, sn ? F_NV : 0); count++;
  }
  /* FSGNJ, FSGNJN, FSGNJX */
  const uint64_t S = 0x8000000000000000ull;
  emit("fsgnj.d", 0, ua, ub, 0, (ua & ~S) | (ub & S), 0); count++;
  emit("fsgnjn.d", 0, ua, ub, 0, (ua & ~S) | (~ub & S), 0); count++;
  emit("fsgnjx.d", 0, ua, ub, 0, ua ^ (ub & S), 0); count++;
}

static void misc_f(uint32_t ua, uint32_t ub) {
  float a = f_of(ua), b = f_of(ub);
  int an = isnan_f(ua), bn = isnan_f(ub), sn = issnan_f(ua) || issnan_f(ub);
  emit("feq.s", 0, ua, ub, 0, (!an && !bn && a == b), sn ? F_NV : 0); count++;
  emit("flt.s", 0, ua, ub, 0, (!an && !bn && a < b), (an || bn) ? F_NV : 0); count++;
  emit("fle.s", 0, ua, ub, 0, (!an && !bn && a <= b), (an || bn) ? F_NV : 0); count++;
  for (int mx = 0; mx < 2; mx++) {
    uint32_t r;
    if (an && bn) r = 0x7fc00000u;
    else if (an) r = ub;
    else if (bn) r = ua;
    else if (a == b) r = mx ? (ua & ub) : (ua | ub);
    else r = (mx ? a > b : a < b) ? ua : ub;
    emit(mx ? "fmax.s" : "fmin.s", 0, ua, ub, 0, r, sn ? F_NV : 0); count++;
  }
  const uint32_t S = 0x80000000u;
  emit("fsgnj.s", 0, ua, ub, 0, (ua & ~S) | (ub & S), 0); count++;
  emit("fsgnjn.s", 0, ua, ub, 0, (ua & ~S) | (~ub & S), 0); count++;
  emit("fsgnjx.s", 0, ua, ub, 0, ua ^ (ub & S), 0); count++;
}

static int fclass_bits(int neg, int inf, int nan, int snan, int zero, int sub) {
  if (nan) return snan ? 1 << 8 : 1 << 9;
  if (inf) return neg ? 1 << 0 : 1 << 7;
  if (zero) return neg ? 1 << 3 : 1 << 4;
  if (sub) return neg ? 1 << 2 : 1 << 5;
  return neg ? 1 << 1 : 1 << 6;
}

static void fclass_d(uint64_t u) {
  int e = (u >> 52) & 0x7ff; uint64_t m = u & 0x000fffffffffffffull;
  emit("fclass.d", 0, u, 0, 0,
       fclass_bits(u >> 63, e == 0x7ff && !m, isnan_d(u), issnan_d(u), e == 0 && !m, e == 0 && m), 0);
  count++;
}

static void fclass_f(uint32_t u) {
  int e = (u >> 23) & 0xff; uint32_t m = u & 0x7fffff;
  emit("fclass.s", 0, u, 0, 0,
       fclass_bits(u >> 31, e == 0xff && !m, isnan_f(u), issnan_f(u), e == 0 && !m, e == 0 && m), 0);
  count++;
}

/* ------------------------------------------------------------------------ */
/* Operand generators */

static const uint64_t SPEC_D[] = {
  0x0000000000000000ull, /* +0 */
  0x0000000000000001ull, /* min subnormal */
  0x0000000000000003ull,
  0x0008000000000000ull,
  0x000fffffffffffffull, /* max subnormal */
  0x0010000000000000ull, /* min normal */
  0x0010000000000001ull,
  0x001fffffffffffffull,
  0x3ca0000000000000ull, /* 2^-53 */
  0x3fe0000000000000ull, /* 0.5 */
  0x3fefffffffffffffull, /* 1 - ulp */
  0x3ff0000000000000ull, /* 1 */
  0x3ff0000000000001ull, /* 1 + ulp */
  0x3ff8000000000000ull, /* 1.5 */
  0x4000000000000000ull, /* 2 */
  0x4004000000000000ull, /* 2.5 */
  0x4008000000000000ull, /* 3 */
  0x3fb999999999999aull, /* 0.1 */
  0x3fd5555555555555ull, /* 1/3 */
  0x4340000000000001ull, /* 2^53 + 2 */
  0x7fe0000000000000ull, /* 2^1023 */
  0x7feffffffffffffeull,
  0x7fefffffffffffffull, /* max */
  0x7ff0000000000000ull, /* inf */
  0x7ff8000000000000ull, /* canonical qNaN */
  0x7ff800000000dead, /* qNaN with payload */
  0x7ff0000000000001ull, /* sNaN */
  0x7ff4000000000000ull, /* sNaN */
};
static const uint32_t SPEC_F[] = {
  0x00000000u, 0x00000001u, 0x00000003u, 0x00400000u, 0x007fffffu, 0x00800000u, 0x00800001u,
  0x00ffffffu, 0x33800000u /* 2^-24 */, 0x3f000000u, 0x3f7fffffu, 0x3f800000u, 0x3f800001u,
  0x3fc00000u, 0x40000000u, 0x40200000u, 0x40400000u, 0x3dcccccdu /* 0.1 */, 0x3eaaaaabu,
  0x4b800001u /* 2^24 + 2 */, 0x7f000000u, 0x7f7ffffeu, 0x7f7fffffu, 0x7f800000u, 0x7fc00000u,
  0x7fc0dead, 0x7f800001u, 0x7fa00000u,
};
#define NSPEC_D (int)(sizeof SPEC_D / sizeof SPEC_D[0])
#define NSPEC_F (int)(sizeof SPEC_F / sizeof SPEC_F[0])

static uint64_t spec_d(int i) { return i < NSPEC_D ? SPEC_D[i] : SPEC_D[i - NSPEC_D] | 0x8000000000000000ull; }
static uint32_t spec_f(int i) { return i < NSPEC_F ? SPEC_F[i] : SPEC_F[i - NSPEC_F] | 0x80000000u; }

/* Significand with a random number of trailing zeros (short significands give exact results and ties). */
static uint64_t rnd_mant(int bits) {
  uint64_t m = rnd64() & ((1ull << bits) - 1);
  int tz = rndint(0, bits);
  if (rnd64() & 1) tz = rndint(0, 6);
  if (tz >= bits) return 0;
  return m & ~((1ull << tz) - 1);
}

/* Double with biased exponent field in [elo, ehi] (clamped), random sign. */
static uint64_t rnd_d(int elo, int ehi) {
  if (elo < 0) elo = 0;
  if (ehi > 0x7fe) ehi = 0x7fe;
  if (ehi < elo) ehi = elo;
  uint64_t e = (uint64_t)rndint(elo, ehi);
  return ((rnd64() & 1) << 63) | (e << 52) | rnd_mant(52);
}
static uint32_t rnd_f(int elo, int ehi) {
  if (elo < 0) elo = 0;
  if (ehi > 0xfe) ehi = 0xfe;
  if (ehi < elo) ehi = elo;
  uint32_t e = (uint32_t)rndint(elo, ehi);
  return ((uint32_t)(rnd64() & 1) << 31) | (e << 23) | (uint32_t)rnd_mant(23);
}

static int exp_d(uint64_t u) { return (u >> 52) & 0x7ff; }
static int exp_f(uint32_t u) { return (u >> 23) & 0xff; }

/* Random operand tuple for op, in one of several regimes. */
static void rnd_tuple_d(int op, uint64_t *a, uint64_t *b, uint64_t *c) {
  int regime = rndint(0, 9);
  switch (regime) {
    case 0: /* anything */
      *a = rnd64(); *b = rnd64(); *c = rnd64(); return;
    case 1: case 2: case 3: /* ordinary magnitudes */
      *a = rnd_d(1023 - 20, 1023 + 20); *b = rnd_d(1023 - 20, 1023 + 20); break;
    case 4: /* results near the subnormal range */
      *a = rnd_d(1, 1023); *b = rnd_d(1023 - exp_d(*a) - 1022 + 1023 - 60, 1023 - exp_d(*a) + 1023 - 1022 + 60);
      if (op == DIV) *b = rnd_d(exp_d(*a) + 1022 - 60, exp_d(*a) + 1022 + 60);
      if (op == ADD || op == SUB) { *a = rnd_d(0, 3); *b = rnd_d(0, 3); }
      if (op == SQRT) *a = rnd_d(0, 2);
      break;
    case 5: /* results near overflow */
      *a = rnd_d(1023, 2046); *b = rnd_d(2046 + 1023 - exp_d(*a) - 2, 2046 + 1023 - exp_d(*a) + 1);
      if (op == DIV) *b = rnd_d(exp_d(*a) - 1024 - 2, exp_d(*a) - 1024 + 1);
      if (op == ADD || op == SUB) { *a = rnd_d(2043, 2046); *b = rnd_d(2043, 2046); }
      break;
    case 6: case 7: { /* close exponents / cancellation, or a tie-prone addend */
      *a = rnd_d(1023 - 30, 1023 + 30);
      int d = rndint(-60, 60);
      *b = rnd_d(exp_d(*a) + d, exp_d(*a) + d);
      if (regime == 7) *b = (*b & 0x8000000000000000ull) | (uint64_t)(exp_d(*a) - 53 + rndint(-1, 1)) << 52 | rnd_mant(52);
      break;
    }
    default: /* subnormal operands */
      *a = rnd_d(0, 0); *b = rnd_d(0, 1023 + 60);
      if (rnd64() & 1) { uint64_t t = *a; *a = *b; *b = t; }
      break;
  }
  /* addend for FMA: near the product's magnitude (cancellation) or anywhere */
  int ep = exp_d(*a) + exp_d(*b) - 1023;
  switch (rndint(0, 3)) {
    case 0: *c = rnd_d(ep - 2, ep + 2); break;
    case 1: *c = rnd_d(ep - 60, ep + 60); break;
    case 2: *c = rnd_d(ep - 53 - 2, ep - 53 + 1); break;
    default: *c = rnd64(); break;
  }
}

static void rnd_tuple_f(int op, uint32_t *a, uint32_t *b, uint32_t *c) {
  int regime = rndint(0, 9);
  switch (regime) {
    case 0:
      *a = (uint32_t)rnd64(); *b = (uint32_t)rnd64(); *c = (uint32_t)rnd64(); return;
    case 1: case 2: case 3:
      *a = rnd_f(127 - 20, 127 + 20); *b = rnd_f(127 - 20, 127 + 20); break;
    case 4:
      *a = rnd_f(1, 127); *b = rnd_f(127 - exp_f(*a) - 126 + 127 - 30, 127 - exp_f(*a) + 127 - 126 + 30);
      if (op == DIV) *b = rnd_f(exp_f(*a) + 126 - 30, exp_f(*a) + 126 + 30);
      if (op == ADD || op == SUB) { *a = rnd_f(0, 3); *b = rnd_f(0, 3); }
      if (op == SQRT) *a = rnd_f(0, 2);
      break;
    case 5:
      *a = rnd_f(127, 254); *b = rnd_f(254 + 127 - exp_f(*a) - 2, 254 + 127 - exp_f(*a) + 1);
      if (op == DIV) *b = rnd_f(exp_f(*a) - 128 - 2, exp_f(*a) - 128 + 1);
      if (op == ADD || op == SUB) { *a = rnd_f(251, 254); *b = rnd_f(251, 254); }
      break;
    case 6: case 7: {
      *a = rnd_f(127 - 30, 127 + 30);
      int d = rndint(-30, 30);
      *b = rnd_f(exp_f(*a) + d, exp_f(*a) + d);
      if (regime == 7) *b = (*b & 0x80000000u) | (uint32_t)(exp_f(*a) - 24 + rndint(-1, 1)) << 23 | (uint32_t)rnd_mant(23);
      break;
    }
    default:
      *a = rnd_f(0, 0); *b = rnd_f(0, 127 + 30);
      if (rnd64() & 1) { uint32_t t = *a; *a = *b; *b = t; }
      break;
  }
  int ep = exp_f(*a) + exp_f(*b) - 127;
  switch (rndint(0, 3)) {
    case 0: *c = rnd_f(ep - 2, ep + 2); break;
    case 1: *c = rnd_f(ep - 30, ep + 30); break;
    case 2: *c = rnd_f(ep - 24 - 2, ep - 24 + 1); break;
    default: *c = (uint32_t)rnd64(); break;
  }
}

/* Doubles interesting for conversion to integers. */
static uint64_t cvt_operand_d(void) {
  static const double base[] = { 0, 0.25, 0.5, 0.75, 1, 1.5, 2.5, 3.5, 2147483647.0, 2147483648.0,
    2147483647.5, 2147483648.5, 4294967295.0, 4294967296.0, 4294967295.5, 4294967294.5,
    9223372036854775808.0, 18446744073709551616.0, 4503599627370496.0, 4503599627370497.0 };
  int k = rndint(0, 5);
  double v;
  if (k == 0) { v = base[rndint(0, (int)(sizeof base / sizeof base[0]) - 1)]; }
  else if (k == 1) { /* neighbours of the range limits */
    static const double lim[] = { 2147483648.0, 4294967296.0, 9223372036854775808.0, 18446744073709551616.0, 1.0, 0.5 };
    v = lim[rndint(0, 5)];
    int steps = rndint(-3, 3);
    for (; steps > 0; steps--) v = nextafter(v, INFINITY);
    for (; steps < 0; steps++) v = nextafter(v, 0);
  } else if (k == 2) { v = rndint(-20, 20) * 0.25; }
  else if (k == 3) return rnd_d(1023 - 3, 1023 + 66);
  else if (k == 4) return rnd64();
  else return rnd_d(1023 + 50, 1023 + 54);
  if (rnd64() & 1) v = -v;
  return u_of_d(v);
}

static uint64_t int_operand(void) {
  switch (rndint(0, 5)) {
    case 0: { static const uint64_t s[] = { 0, 1, 2, 3, 0xffffffffffffffffull, 0x7fffffff, 0x80000000,
        0xffffffff80000000ull, 0xffffffff, 0x100000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull,
        0x1000001, 0x1000003, 0x20000000000001ull, 0x20000000000003ull, 0xfffffffffffff800ull,
        0xfffffffffffffc00ull, 0x7ffffffffffffc00ull, 0x7ffffffffffffe00ull, 0xffffff80, 0xffffff7f };
      return s[rndint(0, (int)(sizeof s / sizeof s[0]) - 1)]; }
    case 1: return rnd64();
    case 2: return rnd64() >> rndint(0, 63);
    case 3: return (uint64_t)(-(int64_t)(rnd64() >> rndint(1, 63)));
    case 4: { /* short significand at a random position: exact, tie and near-tie cases */
      int n = rndint(20, 30); int sh = rndint(0, 63 - n);
      uint64_t v = ((rnd64() & ((1ull << n) - 1)) | (1ull << (n - 1))) << sh;
      return (rnd64() & 1) ? (uint64_t)(-(int64_t)v) : v; }
    default: { int n = rndint(50, 58); int sh = rndint(0, 63 - n);
      uint64_t v = ((rnd64() & ((1ull << n) - 1)) | (1ull << (n - 1))) << sh;
      return (rnd64() & 1) ? (uint64_t)(-(int64_t)v) : v; }
  }
}

/*
 * FMA.D operands that random sampling essentially never produces: a*b is an
 * exact tie at double precision (a odd integer in [2^52, 2^54/3), b = 3, so
 * a*b = ph + pl with |pl| = half an ulp of ph) and c = pl * (1 - 2^-53), so
 * the exact result ph + pl*(2 - 2^-53) lies a hair inside ph + 2*pl. A
 * double-double evaluation sees s + t exact with a tiny non-zero tail. Also
 * c = 2*m exactly (the exact result is a midpoint). Random power-of-two
 * scaling and signs; every FMA opcode computes the same a*b + c.
 */
static void fma_constructed_d(int n) {
  for (int k = 0; k < n; k++) {
    uint64_t ai = ((1ull << 52) + (rnd64() % ((1ull << 54) / 3 - (1ull << 52)))) | 1;
    double a = (double)ai, b = 3.0;
    double ph = a * b, pl = fma(a, b, -ph);
    double c = (k & 1) ? pl * (1 - 0x1p-53) : 2.0 * rndint(-8, 8);
    int ea = rndint(-200, 200), eb = rndint(-200, 200);
    a = ldexp(a, ea); b = ldexp(b, eb); c = ldexp(c, ea + eb);
    if (rnd64() & 1) { a = -a; c = -c; }
    if (rnd64() & 1) { b = -b; c = -c; }
    uint64_t ua = u_of_d(a), ub = u_of_d(b), uc = u_of_d(c);
    const uint64_t S = 0x8000000000000000ull;
    switch (k % 4) {
      case 0: arith_d(MADD, ua, ub, uc); break;
      case 1: arith_d(MSUB, ua, ub, uc ^ S); break;
      case 2: arith_d(NMSUB, ua ^ S, ub, uc); break;
      default: arith_d(NMADD, ua ^ S, ub, uc ^ S); break;
    }
  }
}

/* ------------------------------------------------------------------------ */

/*
 * The host must be usable as a RISC-V reference: binary64 arithmetic without
 * excess precision, and underflow tininess detected after rounding (x86 SSE
 * does this; some other architectures detect it before rounding).
 */
static void check_host(void) {
  /* max_subnormal * (1 + 2^-52) = 2^-1022 * (1 - 2^-104): rounds to DBL_MIN, not tiny after rounding */
  vd_a = d_of(0x000fffffffffffffull); vd_b = d_of(0x3ff0000000000001ull);
  fesetround(FE_TONEAREST);
  feclearexcept(FE_ALL_EXCEPT);
  host_op_d(MUL);
  int fl = host_flags();
  if (u_of_d(vd_r) != 0x0010000000000000ull || fl != F_NX) {
    fprintf(stderr, "host FPU does not detect tininess after rounding (flags %x): cannot generate RISC-V reference vectors\n", fl);
    exit(2);
  }
  /* 1 + (2^-53 + 2^-70) must round up to 1 + 2^-52 (extended precision would round twice, to 1) */
  vd_a = 1.0; vd_b = 0x1p-53 + 0x1p-70;
  host_op_d(ADD);
  if (vd_r != 1.0 + 0x1p-52) { fprintf(stderr, "host binary64 multiply is not correctly rounded\n"); exit(2); }
}

int main(int argc, char **argv) {
  check_host();
  if (argc > 1) rs = strtoull(argv[1], 0, 0) | 1;
  double scale = argc > 2 ? atof(argv[2]) : 1.0;
  int nrand = (int)(1200 * scale);
  int nfma_spec = (int)(1500 * scale);
  int nmisc = (int)(2000 * scale);

  /* Special x special for the two-operand (and one-operand) arithmetic ops. */
  for (int op = ADD; op <= SQRT; op++) {
    for (int i = 0; i < 2 * NSPEC_D; i++)
      for (int j = 0; j < (op == SQRT ? 1 : 2 * NSPEC_D); j++) arith_d(op, spec_d(i), spec_d(j), 0);
    for (int i = 0; i < 2 * NSPEC_F; i++)
      for (int j = 0; j < (op == SQRT ? 1 : 2 * NSPEC_F); j++) arith_f(op, spec_f(i), spec_f(j), 0);
  }
  /* FMA over random special triples. */
  for (int op = MADD; op <= NMADD; op++)
    for (int k = 0; k < nfma_spec; k++) {
      arith_d(op, spec_d(rndint(0, 2 * NSPEC_D - 1)), spec_d(rndint(0, 2 * NSPEC_D - 1)), spec_d(rndint(0, 2 * NSPEC_D - 1)));
      arith_f(op, spec_f(rndint(0, 2 * NSPEC_F - 1)), spec_f(rndint(0, 2 * NSPEC_F - 1)), spec_f(rndint(0, 2 * NSPEC_F - 1)));
    }
  /* Random operands in several regimes. */
  for (int op = ADD; op < NOPS; op++)
    for (int k = 0; k < nrand * (op >= MADD ? 2 : 1); k++) {
      uint64_t a, b, c; uint32_t fa, fb, fc;
      rnd_tuple_d(op == SUB ? ADD : op, &a, &b, &c);
      if (op == SQRT && (rnd64() & 3)) a &= 0x7fffffffffffffffull;
      arith_d(op, a, b, c);
      rnd_tuple_f(op == SUB ? ADD : op, &fa, &fb, &fc);
      if (op == SQRT && (rnd64() & 3)) fa &= 0x7fffffffu;
      arith_f(op, fa, fb, fc);
    }
  fma_constructed_d((int)(800 * scale));
  /* Conversions between formats. */
  for (int i = 0; i < 2 * NSPEC_D; i++) cvt_s_d(spec_d(i));
  for (int i = 0; i < 2 * NSPEC_F; i++) cvt_d_s(spec_f(i));
  for (int k = 0; k < nrand * 2; k++) {
    uint64_t d;
    switch (rndint(0, 4)) {
      case 0: d = rnd64(); break;
      case 1: d = rnd_d(1023 - 150, 1023 - 120); break;   /* single subnormal range */
      case 2: d = rnd_d(1023 + 125, 1023 + 129); break;   /* single overflow range */
      case 3: d = rnd_d(1023 - 126, 1023 - 126) ; break;  /* around FLT_MIN */
      default: d = rnd_d(1023 - 40, 1023 + 40); d &= ~((1ull << rndint(0, 30)) - 1); break;
    }
    cvt_s_d(d);
    cvt_d_s((uint32_t)rnd64());
  }
  /* Conversions to and from integers. */
  for (int dbl = 0; dbl < 2; dbl++)
    for (int kind = 0; kind < 4; kind++) {
      for (int i = 0; i < 2 * (dbl ? NSPEC_D : NSPEC_F); i++) {
        cvt_to_int(dbl, kind, dbl ? spec_d(i) : spec_f(i));
      }
      for (int k = 0; k < nrand; k++) {
        uint64_t u = cvt_operand_d();
        if (dbl) cvt_to_int(1, kind, u);
        else {
          volatile float f = (float)d_of(u);
          uint32_t fu = u_of_f(f);
          if (rnd64() % 8 == 0) fu = (uint32_t)rnd64();
          cvt_to_int(0, kind, fu);
        }
        cvt_from_int(dbl, kind, int_operand());
      }
    }
  feclearexcept(FE_ALL_EXCEPT);
  /* Comparisons, min/max, sign injection, classification. */
  for (int i = 0; i < 2 * NSPEC_D; i++)
    for (int j = 0; j < 2 * NSPEC_D; j++) misc_d(spec_d(i), spec_d(j));
  for (int i = 0; i < 2 * NSPEC_F; i++)
    for (int j = 0; j < 2 * NSPEC_F; j++) misc_f(spec_f(i), spec_f(j));
  for (int k = 0; k < nmisc; k++) {
    uint64_t a = rnd_d(1000, 1046), b = (rnd64() & 1) ? a ^ (rnd64() & 3) : rnd_d(1000, 1046);
    misc_d(a, b);
    uint32_t fa = rnd_f(110, 140), fb = (rnd64() & 1) ? fa ^ (uint32_t)(rnd64() & 3) : rnd_f(110, 140);
    misc_f(fa, fb);
    fclass_d(rnd64()); fclass_f((uint32_t)rnd64());
  }
  for (int i = 0; i < 2 * NSPEC_D; i++) fclass_d(spec_d(i));
  for (int i = 0; i < 2 * NSPEC_F; i++) fclass_f(spec_f(i));
  fprintf(stderr, "%ld vectors\n", count);
  return 0;
}
