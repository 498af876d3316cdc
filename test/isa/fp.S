// F/D through the hart (the arithmetic itself has vector tests in test/fpu.test.ts):
// mstatus.FS = Off makes every FP instruction and FP CSR illegal (mtval = the instruction,
// 16 bits for RVC forms); FS becomes Dirty (and SD set) on any FP state change; FLW/FLD/FSW/
// FSD and NaN-boxing; FMV between register files; fcsr/frm/fflags; reserved rounding modes.
#include "vessel_test.h"

/* Case n: the instruction(s) at the label must raise illegal-instruction with mtval = the
   32-bit (ILLEGAL32) or 16-bit (ILLEGAL16) instruction found there. */
#define ILLEGAL32(n, ...) \
  li TESTNUM, n; li T_CAUSE, -1; la T_RESUME, 8881f; .option push; .option norvc; 8882: __VA_ARGS__; .option pop; \
  8881: li T_RESUME, 0; CHECK_EQ(T_CAUSE, CAUSE_ILLEGAL); la a1, 8882b; lwu a2, 0(a1); CHECK_REG(T_TVAL, a2)
#define ILLEGAL16(n, ...) \
  li TESTNUM, n; li T_CAUSE, -1; la T_RESUME, 8881f; 8882: __VA_ARGS__; \
  8881: li T_RESUME, 0; CHECK_EQ(T_CAUSE, CAUSE_ILLEGAL); la a1, 8882b; lhu a2, 0(a1); CHECK_REG(T_TVAL, a2)

  TEST_CODE_BEGIN
  la s0, fdat
  mv s1, sp

  // ---------------- FS = Off (the reset value here) ----------------
  TEST_CASE(1, a0, 0, csrr a0, mstatus; li a1, MSTATUS_FS; and a0, a0, a1)
  ILLEGAL32(2, flw fa0, 0(s0))
  ILLEGAL32(3, fld fa0, 0(s0))
  ILLEGAL32(4, fsw fa0, 0(s0))
  ILLEGAL32(5, fsd fa0, 0(s0))
  ILLEGAL32(6, fmv.x.w a0, fa0)
  ILLEGAL32(7, fmv.w.x fa0, a0)
  ILLEGAL32(8, fmv.d.x fa0, a0)
  ILLEGAL32(9, fadd.s fa0, fa1, fa2)
  ILLEGAL32(10, fmadd.d fa0, fa1, fa2, fa3)
  ILLEGAL32(11, fcvt.w.d a0, fa0)
  ILLEGAL32(12, fclass.s a0, fa0)
  ILLEGAL32(13, frcsr a0)
  ILLEGAL32(14, frrm a0)
  ILLEGAL32(15, fsflags a0, a1)
  ILLEGAL32(16, csrwi frm, 1)
  ILLEGAL16(17, c.fld fa0, 8(s0))
  ILLEGAL16(18, c.fsd fa0, 8(s0))
  mv sp, s0
  ILLEGAL16(19, c.fldsp fa0, 8(sp))
  ILLEGAL16(20, c.fsdsp fa0, 8(sp))
  mv sp, s1
  TEST_CASE(21, a0, 0, csrr a0, mstatus; li a1, MSTATUS_FS; and a0, a0, a1)

  // ---------------- FS = Initial: loads, stores, NaN-boxing ----------------
  li t0, FS_INITIAL
  csrs mstatus, t0
  TEST_CASE(22, a0, 0, csrr a0, mstatus; srli a0, a0, 63)
  TEST_CASE(23, a0, 0xffffffff3f800000, li a1, 0x3f800000; sw a1, 0(s0); flw fa0, 0(s0); fmv.x.d a0, fa0)
  TEST_CASE(24, a0, FS_DIRTY, csrr a0, mstatus; li a1, MSTATUS_FS; and a0, a0, a1)
  TEST_CASE(25, a0, 1, csrr a0, mstatus; srli a0, a0, 63)
  TEST_CASE(26, a0, 1, csrr a0, sstatus; srli a0, a0, 63)
  TEST_CASE(27, a0, 0x400921fb54442d18, li a1, 0x400921fb54442d18; sd a1, 8(s0); fld fa1, 8(s0); fmv.x.d a0, fa1)
  TEST_CASE(28, a0, 0x5a5a5a5a54442d18, li a1, 0x5a5a5a5a5a5a5a5a; sd a1, 16(s0); fsw fa1, 16(s0); ld a0, 16(s0))
  TEST_CASE(29, a0, 0x400921fb54442d18, fsd fa1, 24(s0); ld a0, 24(s0))
  TEST_CASE(30, a0, 0x5a5a5a5a3f800000, sd a1, 32(s0); fsw fa0, 32(s0); ld a0, 32(s0))
  // misaligned FP accesses within a page are done, like integer ones
  TEST_CASE(31, a0, 0x400921fb54442d18, fsd fa1, 41(s0); fld fa2, 41(s0); fmv.x.d a0, fa2)
  TEST_CASE(32, a0, 0xffffffff54442d18, flw fa2, 41(s0); fmv.x.d a0, fa2)
  // FMV: bits move unchanged; FMV.W.X boxes, FMV.X.W sign-extends bit 31
  TEST_CASE(33, a0, 0xffffffffc0000000, li a1, 0x12345678c0000000; fmv.w.x fa3, a1; fmv.x.d a0, fa3)
  TEST_CASE(34, a0, 0xffffffffc0000000, fmv.x.w a0, fa3)
  TEST_CASE(35, a0, 0x3f800000, fmv.x.w a0, fa0)
  TEST_CASE(36, a0, 0xffffffff9abcdef0, li a1, 0x123456789abcdef0; fmv.d.x fa4, a1; fmv.x.w a0, fa4)
  TEST_CASE(37, a0, 0x123456789abcdef0, fmv.x.d a0, fa4)
  TEST_CASE(38, a0, 0x7ff4000000000001, li a1, 0x7ff4000000000001; fmv.d.x fa4, a1; fmv.x.d a0, fa4)
  // a single that is not NaN-boxed reads as the canonical NaN
  TEST_CASE(39, a0, 0xffffffff7fc00000, li a1, 0x000000003f800000; fmv.d.x fa5, a1; fadd.s fa6, fa5, fa5; fmv.x.d a0, fa6)
  TEST_CASE(40, a0, 0x200, fclass.s a0, fa5)
  TEST_CASE(41, a0, 0xffffffff7fc00000, fmv.s fa6, fa5; fmv.x.d a0, fa6)
  TEST_CASE(42, a0, 0xffffffffbf800000, fneg.s fa6, fa0; fmv.x.d a0, fa6)
  TEST_CASE(43, a0, 0x40, fclass.s a0, fa0)
  TEST_CASE(44, a0, 0xc00921fb54442d18, fneg.d fa6, fa1; fmv.x.d a0, fa6)
  // a boxed single used as a double is just a (quiet) NaN bit pattern
  TEST_CASE(45, a0, 0x200, fclass.d a0, fa0)

  // ---------------- fcsr, frm, fflags ----------------
  TEST_CASE(46, a0, 0xff, li a1, 0xff; csrw fcsr, a1; frcsr a0)
  TEST_CASE(47, a0, 7, frrm a0)
  TEST_CASE(48, a0, 0x1f, frflags a0)
  TEST_CASE(49, a0, 0xff, li a1, 0x1ff; fscsr a0, a1; frcsr a0)
  TEST_CASE(50, a0, 0x1f, li a1, 2; fsrm a0, a1; frflags a0)
  TEST_CASE(51, a0, 0x5f, frcsr a0)
  TEST_CASE(52, a0, 0x1f, fsflagsi a0, 0)
  TEST_CASE(53, a0, 0x40, frcsr a0)
  TEST_CASE(54, a0, 2, fsrmi a0, 4)
  TEST_CASE(55, a0, 0x80, frcsr a0)
  TEST_CASE(56, a0, 0x8a, csrsi fflags, 0xa; frcsr a0)
  TEST_CASE(57, a0, 0x82, csrci fflags, 0x8; frcsr a0)
  TEST_CASE(58, a0, 0x02, csrwi fcsr, 2; frcsr a0)
  // exception flags accrue
  TEST_CASE(59, a0, 0x08, li a1, 0x3f800000; fmv.w.x fa0, a1; fmv.w.x fa1, zero; fsflags zero; fdiv.s fa2, fa0, fa1; frflags a0)
  TEST_CASE(60, a0, 0x09, li a1, 0x4008000000000000; fmv.d.x fa3, a1; fcvt.d.s fa4, fa0; fdiv.d fa5, fa4, fa3; frflags a0)
  TEST_CASE(61, a0, 0x19, fneg.s fa6, fa0; fsqrt.s fa7, fa6; frflags a0)
  TEST_CASE(62, a0, 0xffffffff7fc00000, fmv.x.d a0, fa7)
  TEST_CASE(63, a0, 0x7ff0000000000000, fcvt.d.s fa6, fa2; fmv.x.d a0, fa6)
  // a rounding mode reserved in frm is illegal when the instruction says "dynamic"
  TEST_CASE(64, a0, 5, csrwi frm, 5; frrm a0)
  ILLEGAL32(65, fadd.s fa0, fa1, fa2)
  ILLEGAL32(66, fcvt.w.d a0, fa1)
  TEST_CASE(67, a0, 0x40000000, li a1, 0x3f800000; fmv.w.x fa1, a1; fadd.s fa0, fa1, fa1, rne; fmv.x.w a0, fa0)
  csrwi frm, 7
  ILLEGAL32(68, fmul.d fa0, fa1, fa2)
  csrwi frm, 0
  ILLEGAL32(69, .word 0x003150d3)       // fadd.s f1, f2, f3 with rm = 5
  ILLEGAL32(70, .word 0x023160d3)       // fadd.d f1, f2, f3 with rm = 6
  TEST_CASE(71, a0, 0x40000000, fadd.s fa0, fa1, fa1; fmv.x.w a0, fa0)
  // fcvt and compare write integer registers; x0 as destination stays 0
  TEST_CASE(72, a0, 2, fcvt.w.s a0, fa0)
  TEST_CASE(73, x0, 0, fcvt.w.s x0, fa0)
  TEST_CASE(74, a0, 1, flt.s a0, fa1, fa0)

  // ---------------- FS state transitions ----------------
  // reading an FP CSR does not dirty FS; writing one does; FP instructions do
  li t0, MSTATUS_FS
  csrc mstatus, t0
  li t0, FS_CLEAN
  csrs mstatus, t0
  TEST_CASE(75, a0, FS_CLEAN, frcsr a1; csrr a0, mstatus; li a1, MSTATUS_FS; and a0, a0, a1)
  TEST_CASE(76, a0, 0, csrr a0, mstatus; srli a0, a0, 63)
  TEST_CASE(77, a0, FS_DIRTY, csrwi fflags, 0; csrr a0, mstatus; li a1, MSTATUS_FS; and a0, a0, a1)
  li t0, MSTATUS_FS
  csrc mstatus, t0
  li t0, FS_CLEAN
  csrs mstatus, t0
  TEST_CASE(78, a0, FS_DIRTY, fmv.d.x fa0, zero; csrr a0, mstatus; li a1, MSTATUS_FS; and a0, a0, a1)
  // sstatus shows FS
  TEST_CASE(79, a0, FS_DIRTY, csrr a0, sstatus; li a1, MSTATUS_FS; and a0, a0, a1)
  // and FS = Off through sstatus turns the unit off again
  li t0, MSTATUS_FS
  csrc sstatus, t0
  ILLEGAL32(80, fmv.x.d a0, fa0)
  ILLEGAL16(81, c.fld fa0, 16(s0))

  TEST_PASS

  TEST_DATA
  .align 6
fdat:
  .skip 128
