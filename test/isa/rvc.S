// C extension: every RV64C instruction, written with explicit c.* mnemonics so each one is
// the 16-bit encoding; immediates at the ends of their ranges; reserved encodings raising
// illegal-instruction with mtval = the 16 instruction bits; HINTs that write x0; a 32-bit
// instruction at a 2 mod 4 address and one straddling a page boundary.
#include "vessel_test.h"

/* Case n: the 16-bit parcel `bits` is illegal and mtval holds exactly those bits. */
#define ILLEGAL16(n, bits) \
  TEST_TRAP(n, CAUSE_ILLEGAL, .half bits); CHECK_EQ(T_TVAL, bits)

  TEST_CODE_BEGIN
  .option rvc
  li t0, FS_INITIAL
  csrs mstatus, t0
  la s0, cdat
  mv s1, sp

  // ---------------- quadrant 0 ----------------
  TEST_CASE(1, a0, 0x13fc, li sp, 0x1000; c.addi4spn a0, sp, 1020)
  TEST_CASE(2, a1, 0x1004, li sp, 0x1000; c.addi4spn a1, sp, 4)
  TEST_CASE(3, a2, 0, li sp, -8; c.addi4spn a2, sp, 8)
  TEST_CASE(4, a5, 0x10000000c, li sp, 0xfffffffc; c.addi4spn a5, sp, 16)
  mv sp, s1
  TEST_CASE(5, a0, 0xffffffff80000001, li a1, 0x80000001; sw a1, 124(s0); c.lw a0, 124(s0))
  TEST_CASE(6, a0, 0x7ffffffe, li a1, 0x7ffffffe; sw a1, 0(s0); c.lw a0, 0(s0))
  TEST_CASE(7, a0, 0x0123456789abcdef, li a1, 0x0123456789abcdef; sd a1, 248(s0); c.ld a0, 248(s0))
  TEST_CASE(8, a0, 0x9abcdef0, sd zero, 64(s0); li a1, 0x123456789abcdef0; c.sw a1, 64(s0); ld a0, 64(s0))
  TEST_CASE(9, a0, 0x123456789abcdef0, c.sd a1, 120(s0); ld a0, 120(s0))
  TEST_CASE(10, a0, 0x123456789abcdef0, mv a0, s0; c.ld a0, 120(a0))
  TEST_CASE(11, a0, 0x4008000000000000, li a1, 0x4008000000000000; sd a1, 8(s0); c.fld fa0, 8(s0); fmv.x.d a0, fa0)
  TEST_CASE(12, a0, 0xc00921fb54442d18, li a1, 0xc00921fb54442d18; fmv.d.x fa1, a1; c.fsd fa1, 248(s0); ld a0, 248(s0))

  // ---------------- quadrant 1 ----------------
  TEST_CASE(13, a0, 5, li a0, 5; c.nop)
  TEST_CASE(14, a0, -32, li a0, 0; c.addi a0, -32)
  TEST_CASE(15, a0, 30, li a0, -1; c.addi a0, 31)
  TEST_CASE(16, t3, 0x100000000, li t3, 0xffffffff; c.addi t3, 1)
  TEST_CASE(17, a0, 0x7fffffff, li a0, 0x80000000; c.addiw a0, -1)
  TEST_CASE(18, a0, 0xffffffff80000000, li a0, 0x7fffffff; c.addiw a0, 1)
  TEST_CASE(19, a0, -1, li a0, 0x12345678ffffffff; c.addiw a0, 0)
  TEST_CASE(20, t5, 0x1f, li t5, 0xffffffff00000000; c.addiw t5, 31)
  TEST_CASE(21, a0, -32, c.li a0, -32)
  TEST_CASE(22, a0, 31, c.li a0, 31)
  TEST_CASE(23, t3, -1, li t3, 0x1234; c.li t3, -1)
  TEST_CASE(24, a0, 0xe00, li sp, 0x1000; c.addi16sp sp, -512; mv a0, sp)
  TEST_CASE(25, a0, 0xff0, c.addi16sp sp, 496; mv a0, sp)
  TEST_CASE(26, a0, 0x1000, c.addi16sp sp, 16; mv a0, sp)
  mv sp, s1
  TEST_CASE(27, a1, 0xfffffffffffe1000, c.lui a1, 0xfffe1)
  TEST_CASE(28, a1, 0x1000, c.lui a1, 1)
  TEST_CASE(29, a1, 0x1f000, c.lui a1, 31)
  TEST_CASE(30, a1, 0xfffffffffffe0000, c.lui a1, 0xfffe0)
  TEST_CASE(31, t4, 0xfffffffffffff000, c.lui t4, 0xfffff)
  TEST_CASE(32, a0, 0x7fffffffffffffff, li a0, -1; c.srli a0, 1)
  TEST_CASE(33, a0, 1, li a0, -1; c.srli a0, 63)
  TEST_CASE(34, a0, 0xffffffff, li a0, -1; c.srli a0, 32)
  TEST_CASE(35, a0, -1, li a0, 0x8000000000000000; c.srai a0, 63)
  TEST_CASE(36, a0, 0xf800000000000000, li a0, 0x8000000000000000; c.srai a0, 4)
  TEST_CASE(37, a0, 0xffffffff80000000, li a0, 0x8000000000000000; c.srai a0, 32)
  TEST_CASE(38, a0, 0x3fffffff, li a0, 0x7fffffffffffffff; c.srai a0, 33)
  TEST_CASE(39, a0, 0xffe0, li a0, 0xffff; c.andi a0, -32)
  TEST_CASE(40, a0, 0x1f, li a0, 0xff; c.andi a0, 31)
  TEST_CASE(41, a0, 0, li a0, -1; c.andi a0, 0)
  TEST_CASE(42, a0, 0xffffffffffffffe0, li a0, -1; c.andi a0, -32)
  TEST_CASE(43, a0, -2, li a0, 5; li a1, 7; c.sub a0, a1)
  TEST_CASE(44, a0, 0xf0f0, li a0, 0xff00; li a1, 0x0ff0; c.xor a0, a1)
  TEST_CASE(45, a0, 0xfff0, li a0, 0xff00; li a1, 0x0ff0; c.or a0, a1)
  TEST_CASE(46, a0, 0x0f00, li a0, 0xff00; li a1, 0x0ff0; c.and a0, a1)
  TEST_CASE(47, a0, 0x7fffffff, li a0, 0x80000000; li a1, 1; c.subw a0, a1)
  TEST_CASE(48, a0, 0xffffffff80000000, li a0, 0; li a1, 0x80000000; c.subw a0, a1)
  TEST_CASE(49, a0, 0xffffffff80000000, li a0, 0x7fffffff; li a1, 1; c.addw a0, a1)
  TEST_CASE(50, a0, 3, li a0, 0x100000001; li a1, 0x200000002; c.addw a0, a1)
  TEST_CASE(51, s1, 0x7ffffffffffffffe, li s1, 0x8000000000000000; li a5, 2; c.sub s1, a5)
  mv s1, sp
  // jumps and branches
  li TESTNUM, 52
  c.j 1f
  j vessel_fail
1:
  TEST_CASE(53, a0, 0, li a0, 3; 2: c.addi a0, -1; c.bnez a0, 2b)
  li TESTNUM, 54
  li a0, 0
  c.beqz a0, 3f
  j vessel_fail
3:
  li TESTNUM, 55
  li a0, 0x100000000
  c.beqz a0, 4f
  c.bnez a0, 5f
4:
  j vessel_fail
5:
  li TESTNUM, 56
  li a0, 1
  c.beqz a0, 6f
  c.j 7f
6:
  j vessel_fail
7:
  li TESTNUM, 57          // c.j backwards
  li a0, 0
  c.j 9f
8:
  c.addi a0, 1
  c.j 10f
9:
  c.j 8b
10:
  CHECK_EQ(a0, 1)

  // ---------------- quadrant 2 ----------------
  TEST_CASE(58, a0, 0x8000000000000000, li a0, 1; c.slli a0, 63)
  TEST_CASE(59, t3, 0xffffffff00000000, li t3, 0xffffffff; c.slli t3, 32)
  TEST_CASE(60, a0, 2, li a0, 1; c.slli a0, 1)
  mv sp, s0
  TEST_CASE(61, a0, 0xfffffffff0000001, li a1, 0xf0000001; sw a1, 252(s0); c.lwsp a0, 252(sp))
  TEST_CASE(62, t3, 0x1111222233334444, li a1, 0x1111222233334444; sd a1, 504(s0); c.ldsp t3, 504(sp))
  TEST_CASE(63, a0, 0x00000000cafef00d, sd zero, 16(s0); li t4, 0x12345678cafef00d; c.swsp t4, 16(sp); ld a0, 16(s0))
  TEST_CASE(64, a0, 0x12345678cafef00d, c.sdsp t4, 496(sp); ld a0, 496(s0))
  TEST_CASE(65, a0, 0x3ff0000000000000, li a1, 0x3ff0000000000000; sd a1, 32(s0); c.fldsp ft3, 32(sp); fmv.x.d a0, ft3)
  TEST_CASE(66, a0, 0x3ff0000000000000, c.fsdsp ft3, 504(sp); ld a0, 504(s0))
  TEST_CASE(67, a0, 0x7fffffff, li a1, 0x7fffffff; sw a1, 0(s0); c.lwsp a0, 0(sp))
  mv sp, s1
  TEST_CASE(68, a0, 0x123, li a1, 0x123; c.mv a0, a1)
  TEST_CASE(69, t6, -5, li a1, -5; c.mv t6, a1)
  TEST_CASE(70, a0, 0x8000000000000000, li a0, 0x7fffffffffffffff; li a1, 1; c.add a0, a1)
  TEST_CASE(71, t3, 0x100000000, li t3, 0xffffffff; li t4, 1; c.add t3, t4)
  li TESTNUM, 72
  la a0, 11f
  c.jr a0
  j vessel_fail
11:
  li TESTNUM, 73
  la a0, 13f
12:
  c.jalr a0
  j vessel_fail
13:
  la a1, 12b + 2
  CHECK_REG(ra, a1)
  li TESTNUM, 74           // c.jalr ra: jumps to the old ra
  la ra, 15f
14:
  c.jalr ra
  j vessel_fail
15:
  la a1, 14b + 2
  CHECK_REG(ra, a1)
  li TESTNUM, 75           // a call through c.jalr and a return through c.jr ra
  li a0, 0
  la a1, 17f
  c.jalr a1
  CHECK_EQ(a0, 42)
  j 18f
17:
  c.li a0, 21
  c.add a0, a0
  c.jr ra
18:
  TEST_TRAP(76, CAUSE_BREAKPOINT, 19: c.ebreak)
  la a1, 19b
  CHECK_REG(T_EPC, a1)
  li TESTNUM, 77           // mtval after a breakpoint is 0 or the pc
  beqz T_TVAL, 20f
  CHECK_REG(T_TVAL, a1)
20:

  // ---------------- reserved encodings ----------------
  ILLEGAL16(78, 0x0000)    // all zeros (c.addi4spn with imm 0)
  ILLEGAL16(79, 0x6101)    // c.addi16sp with imm 0
  ILLEGAL16(80, 0x6081)    // c.lui ra, 0
  ILLEGAL16(81, 0x8002)    // c.jr x0
  ILLEGAL16(82, 0x4002)    // c.lwsp x0
  ILLEGAL16(83, 0x6002)    // c.ldsp x0
  ILLEGAL16(84, 0x2001)    // c.addiw x0
  ILLEGAL16(85, 0x9c41)    // quadrant 1, funct6 100111 with funct2 10 (reserved in RV64C)
  ILLEGAL16(86, 0x8000)    // quadrant 0, funct3 100
  li TESTNUM, 87           // c.jr to a target at 2 mod 4
  la a0, 23f
  c.jr a0
  j vessel_fail
  .align 2
  c.nop
23:

  // ---------------- HINTs: encodings that write x0 do nothing ----------------
  li a1, 77
  TEST_CASE(88, x0, 0, .half 0x4015)     // c.li x0, 5
  TEST_CASE(89, x0, 0, .half 0x802e)     // c.mv x0, a1
  TEST_CASE(90, x0, 0, .half 0x902e)     // c.add x0, a1
  TEST_CASE(91, x0, 0, .half 0x0005)     // c.addi x0, 1 (c.nop with an immediate)
  TEST_CASE(92, a1, 77, .half 0x0581)    // c.addi a1, 0
  TEST_CASE(93, a1, 77, .half 0x0582)    // c.slli a1, 0 (shift by zero: a HINT)

  // ---------------- mixed widths ----------------
  TEST_CASE(94, a0, 77, c.nop; .option push; .option norvc; addi a0, zero, 77; .option pop)
  TEST_CASE(95, a0, 1234, li a0, 0; call straddle)
  TEST_CASE(96, a0, 99, li a0, 0; call straddle16)

  // ---------------- jumps and branches at the ends of their ranges ----------------
  li TESTNUM, 97           // c.j forward by almost 2 KiB
  c.j 30f
  .skip 2040
30:
  li TESTNUM, 98           // c.j backward by almost 2 KiB
  j 32f
31:
  c.j 33f
  .skip 2030
32:
  c.j 31b
33:
  li TESTNUM, 99           // c.beqz forward by almost 256 bytes
  li a0, 0
  c.beqz a0, 34f
  .skip 250
34:
  li TESTNUM, 100          // c.bnez backward by almost 256 bytes
  li a0, 5
  j 36f
35:
  j 37f
  .skip 240
36:
  c.bnez a0, 35b
  j vessel_fail
37:

  TEST_PASS

  // A 32-bit instruction whose two halves are on different pages.
  .text
  .balign 4096
  .skip 4094
straddle:
  .option push
  .option norvc
  addi a0, zero, 1234
  .option pop
  ret
  // A 16-bit instruction in the last two bytes of a page, then the next one on the next page.
  .balign 4096
  .skip 4094
straddle16:
  c.li a0, 31
  c.addi a0, 31
  addi a0, a0, 37
  ret

  TEST_DATA
  .align 6
cdat:
  .skip 512
