// RV64I: integer ALU (64-bit and W forms), shifts, LUI/AUIPC, loads and stores of every width
// (aligned, misaligned within a page and across a page), branches, JAL/JALR, x0.
// Assembled without RVC so that every instruction here is a 32-bit encoding.
#include "vessel_test.h"

  TEST_CODE_BEGIN
  .option norvc

  // ---------------- ADD / SUB / ADDI ----------------
  TEST_RR(1, add, 0, 0, 0)
  TEST_RR(2, add, 2, 1, 1)
  TEST_RR(3, add, 10, 3, 7)
  TEST_RR(4, add, 0xffffffffffff8000, 0, 0xffffffffffff8000)
  TEST_RR(5, add, 0x8000000000000000, 0x7fffffffffffffff, 1)
  TEST_RR(6, add, 0, -1, 1)
  TEST_RR(7, add, 0x100000000, 0xffffffff, 1)
  TEST_RR(8, add, 0x1fffffffe, 0xffffffff, 0xffffffff)
  TEST_RR(9, add, -2, -1, -1)
  TEST_RR(10, add, 0x7ffffffffffffffe, 0x8000000000000000, 0xfffffffffffffffe)
  TEST_RR_RD_RS1(11, add, 24, 13, 11)
  TEST_RR_RD_RS2(12, add, 25, 14, 11)
  TEST_RR_RD_RS12(13, add, 26, 13)
  TEST_RR_X0(14, add, 5, 7)

  TEST_RR(15, sub, 0, 0, 0)
  TEST_RR(16, sub, -4, 3, 7)
  TEST_RR(17, sub, -1, 0, 1)
  TEST_RR(18, sub, 0xffffffff, 0x100000000, 1)
  TEST_RR(19, sub, 0x7fffffffffffffff, 0x8000000000000000, 1)
  TEST_RR(20, sub, 0x8000000000000000, 0x7fffffffffffffff, -1)
  TEST_RR(21, sub, 0xffffffff00000001, 1, 0x100000000)
  TEST_RR_RD_RS12(22, sub, 0, 0x123456789)

  TEST_RI(23, addi, 0, 0, 0)
  TEST_RI(24, addi, 0x100000000, 0xffffffff, 1)
  TEST_RI(25, addi, 0xfffffffffffff800, 0, -2048)
  TEST_RI(26, addi, 0x7fffffff, 0x80000000, -1)
  TEST_RI(27, addi, 0, 1, -1)
  TEST_RI(28, addi, 0x80000000000007fe, 0x7fffffffffffffff, 2047)
  TEST_RI(29, addi, 0xffffffff, 0x100000000, -1)
  TEST_RI_RD_RS1(30, addi, 0x800, 1, 2047)

  // ---------------- SLT / SLTU / SLTI / SLTIU ----------------
  TEST_RR(31, slt, 1, -1, 1)
  TEST_RR(32, sltu, 0, -1, 1)
  TEST_RR(33, slt, 1, 0x8000000000000000, 0x7fffffffffffffff)
  TEST_RR(34, sltu, 0, 0x8000000000000000, 0x7fffffffffffffff)
  TEST_RR(35, slt, 0, 0x80000000, 0x7fffffff)
  TEST_RR(36, slt, 1, 0x7fffffff, 0x80000000)
  TEST_RR(37, slt, 0, 5, 5)
  TEST_RR(38, sltu, 0, 5, 5)
  TEST_RR(39, sltu, 1, 0xffffffff, 0x100000000)
  TEST_RR(40, slt, 1, 0xfffffffe00000000, 0xffffffff00000000)
  TEST_RR(41, sltu, 1, 0, -1)
  TEST_RI(42, slti, 0, 0, -1)
  TEST_RI(43, sltiu, 1, 0, -1)
  TEST_RI(44, sltiu, 1, 0xfffffffffffffffe, -1)
  TEST_RI(45, sltiu, 0, -1, -1)
  TEST_RI(46, slti, 0, 0xfffffffffffff800, -2048)
  TEST_RI(47, slti, 1, 0xfffffffffffff7ff, -2048)
  TEST_RI(48, sltiu, 1, 0, 1)
  TEST_RI(49, sltiu, 0, 5, 1)
  TEST_RI(50, slti, 1, 0x7fe, 2047)
  TEST_RI(51, slti, 0, 0x80000000, 1)
  TEST_RI(52, sltiu, 0, 0x8000000000000000, 2047)
  TEST_RR_X0(53, slt, -1, 1)

  // ---------------- AND / OR / XOR and immediates ----------------
  TEST_RR(54, and, 0x0f000f000f000f00, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
  TEST_RR(55, or, 0xff0fff0fff0fff0f, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
  TEST_RR(56, xor, 0xf00ff00ff00ff00f, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
  TEST_RI(57, andi, 0xf, 0x00ff00ff00ff00ff, 0x70f)
  TEST_RI(58, andi, 0x00ff00ff00ff000f, 0x00ff00ff00ff00ff, -241)
  TEST_RI(59, ori, -1, 0x00ff00ff00ff00ff, -241)
  TEST_RI(60, ori, 0xff00ff00ff00fff0, 0xff00ff00ff00ff00, 0x0f0)
  TEST_RI(61, xori, 0xff00ff00ff00ff00, 0x00ff00ff00ff00ff, -1)
  TEST_RI(62, xori, 0xff00ff00ff00f80f, 0xff00ff00ff00ff00, 0x70f)
  TEST_RR_RD_RS12(63, xor, 0, 0x123456789abcdef)
  TEST_RR_RD_RS1(64, or, 0xff0fff0fff0fff0f, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
  TEST_RR_RD_RS2(65, and, 0x0f000f000f000f00, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)

  // ---------------- 64-bit shifts ----------------
  TEST_RR(66, sll, 1, 1, 0)
  TEST_RR(67, sll, 2, 1, 1)
  TEST_RR(68, sll, 0x80000000, 1, 31)
  TEST_RR(69, sll, 0x100000000, 1, 32)
  TEST_RR(70, sll, 0x8000000000000000, 1, 63)
  TEST_RR(71, sll, 0xffffffff80000000, -1, 31)
  TEST_RR(72, sll, 0xffffffff00000000, -1, 32)
  TEST_RR(73, sll, 0x123456789abcdef0, 0x0123456789abcdef, 4)
  TEST_RR(74, sll, 0x9abcdef000000000, 0x0123456789abcdef, 36)
  TEST_RR(75, sll, 1, 1, 64)
  TEST_RR(76, sll, 0x8000000000000000, 1, -1)
  TEST_RR(77, sll, 0x3579bde000000000, 0x123456789abcdef0, 33)
  TEST_RR(78, srl, 0x8000000000000000, 0x8000000000000000, 0)
  TEST_RR(79, srl, 0x4000000000000000, 0x8000000000000000, 1)
  TEST_RR(80, srl, 0x100000000, 0x8000000000000000, 31)
  TEST_RR(81, srl, 0x80000000, 0x8000000000000000, 32)
  TEST_RR(82, srl, 1, 0x8000000000000000, 63)
  TEST_RR(83, srl, 0xffffffff, -1, 32)
  TEST_RR(84, srl, 0x1ffffffff, -1, 31)
  TEST_RR(85, srl, 0x123456, 0x0123456789abcdef, 36)
  TEST_RR(86, srl, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffc0)
  TEST_RR(87, sra, 0x8000000000000000, 0x8000000000000000, 0)
  TEST_RR(88, sra, 0xc000000000000000, 0x8000000000000000, 1)
  TEST_RR(89, sra, 0xffffffff00000000, 0x8000000000000000, 31)
  TEST_RR(90, sra, 0xffffffff80000000, 0x8000000000000000, 32)
  TEST_RR(91, sra, -1, 0x8000000000000000, 63)
  TEST_RR(92, sra, 0, 0x7fffffffffffffff, 63)
  TEST_RR(93, sra, 0x7fffffff, 0x7fffffffffffffff, 32)
  TEST_RR(94, sra, 0x123456, 0x0123456789abcdef, 36)
  TEST_RR(95, sra, 0xf8123456789abcde, 0x8123456789abcdef, 4)
  TEST_RR(96, sra, 0xc000000000000000, 0x8000000000000000, -63)
  TEST_RR(97, sra, 0xfffffffffc000000, 0x8000000000000000, 37)
  TEST_RI(98, slli, 1, 1, 0)
  TEST_RI(99, slli, 0x80000000, 1, 31)
  TEST_RI(100, slli, 0x100000000, 1, 32)
  TEST_RI(101, slli, 0x8000000000000000, 1, 63)
  TEST_RI(102, slli, 0x9abcdef000000000, 0x0123456789abcdef, 36)
  TEST_RI(103, srli, 0x8000000000000000, 0x8000000000000000, 0)
  TEST_RI(104, srli, 0x100000000, 0x8000000000000000, 31)
  TEST_RI(105, srli, 0x80000000, 0x8000000000000000, 32)
  TEST_RI(106, srli, 1, 0x8000000000000000, 63)
  TEST_RI(107, srli, 0x00000000ffffffff, -1, 32)
  TEST_RI(108, srai, 0x8000000000000000, 0x8000000000000000, 0)
  TEST_RI(109, srai, 0xffffffff00000000, 0x8000000000000000, 31)
  TEST_RI(110, srai, 0xffffffff80000000, 0x8000000000000000, 32)
  TEST_RI(111, srai, -1, 0x8000000000000000, 63)
  TEST_RI(112, srai, 0x7fffffff, 0x7fffffffffffffff, 32)
  TEST_RI(113, srai, 0, 0x7fffffffffffffff, 63)
  TEST_RI_RD_RS1(114, srai, 0xf8123456789abcde, 0x8123456789abcdef, 4)

  // ---------------- W forms: 32-bit result, sign-extended ----------------
  TEST_RR(115, addw, 0xffffffff80000000, 0x7fffffff, 1)
  TEST_RR(116, addw, 0, 0xffffffff, 1)
  TEST_RR(117, addw, 5, 0x100000002, 0x100000003)
  TEST_RR(118, addw, -2, 0xffffffff, 0xffffffff)
  TEST_RI(119, addiw, 0xffffffff80000000, 0x7fffffff, 1)
  TEST_RI(120, addiw, 0x7fffffff, 0x80000000, -1)
  TEST_RI(121, addiw, -2, 0x00000000fffffffe, 0)
  TEST_RI(122, addiw, 0x7fffffff, 0x123456787fffffff, 0)
  TEST_RI(123, addiw, 0xfffffffffffff800, 0, -2048)
  TEST_RR(124, subw, -1, 0, 1)
  TEST_RR(125, subw, 0x7fffffff, 0x80000000, 1)
  TEST_RR(126, subw, 0x7fffffff, 0x0000000080000000, 0xffffffff00000001)
  TEST_RR(127, subw, 0xffffffff80000000, 0, 0x80000000)
  TEST_RR(128, sllw, 0xffffffff80000000, 1, 31)
  TEST_RR(129, sllw, 1, 1, 32)
  TEST_RR(130, sllw, -1, 0xffffffff, 0)
  TEST_RR(131, sllw, 0x23456780, 0x12345678, 4)
  TEST_RR(132, sllw, 0xffffffff80000000, 1, 63)
  TEST_RR(133, sllw, 0x56780000, 0xffffffff12345678, 16)
  TEST_RR(134, srlw, 0xffffffff80000000, 0x80000000, 0)
  TEST_RR(135, srlw, 0x40000000, 0x80000000, 1)
  TEST_RR(136, srlw, 1, 0xffffffff80000000, 31)
  TEST_RR(137, srlw, -1, -1, 32)
  TEST_RR(138, srlw, 0, 0x100000000, 0)
  TEST_RR(139, srlw, 0x7fffffff, 0x12345678ffffffff, 33)
  TEST_RR(140, sraw, 0xffffffffc0000000, 0x80000000, 1)
  TEST_RR(141, sraw, -1, 0x80000000, 31)
  TEST_RR(142, sraw, 0, 0x7fffffff, 31)
  TEST_RR(143, sraw, 0x7fffffff, 0x7fffffff, 32)
  TEST_RR(144, sraw, 0xfffffffff8000000, 0x1234567880000000, 4)
  TEST_RR(145, sraw, 0x12345678, 0xffffffff12345678, 0)
  TEST_RI(146, slliw, 0xffffffff80000000, 1, 31)
  TEST_RI(147, slliw, -1, 0xffffffff, 0)
  TEST_RI(148, slliw, 0x56780000, 0x12345678, 16)
  TEST_RI(149, slliw, 0, 0x100000000, 1)
  TEST_RI(150, srliw, 0xffffffff80000000, 0x80000000, 0)
  TEST_RI(151, srliw, 1, 0xffffffff, 31)
  TEST_RI(152, srliw, 0x7fffffff, -1, 1)
  TEST_RI(153, srliw, 0x0000ffff, 0xabcdef01ffff0000, 16)
  TEST_RI(154, sraiw, 0xffffffff80000000, 0x80000000, 0)
  TEST_RI(155, sraiw, -1, 0x80000000, 31)
  TEST_RI(156, sraiw, 0, 0x7fffffff, 31)
  TEST_RI(157, sraiw, 1, 0xdeadbeef40000000, 30)
  TEST_RI(158, sraiw, 0xffffffffffff8000, 0x0000000080000000, 16)

  // ---------------- LUI / AUIPC ----------------
  TEST_CASE(159, x14, 0xffffffff80000000, lui x14, 0x80000)
  TEST_CASE(160, x14, 0xfffffffffffff000, lui x14, 0xfffff)
  TEST_CASE(161, x14, 0x7ffff000, lui x14, 0x7ffff)
  TEST_CASE(162, x14, 0, li x14, -1; lui x14, 0)
  TEST_CASE(163, x14, 0xffffffff80000000, 1: auipc x14, 0x80000; la x11, 1b; sub x14, x14, x11)
  TEST_CASE(164, x14, -4096, 1: auipc x14, 0xfffff; la x11, 1b; sub x14, x14, x11)
  TEST_CASE(165, x14, 0x7ffff000, 1: auipc x14, 0x7ffff; la x11, 1b; sub x14, x14, x11)
  TEST_CASE(166, x14, 0, 1: auipc x14, 0; la x11, 1b; sub x14, x14, x11)
  TEST_CASE(167, x0, 0, lui x0, 0x12345)
  TEST_CASE(168, x0, 0, auipc x0, 0x1)

  // ---------------- loads ----------------
  la s0, tdat
  TEST_CASE(169, x14, 0xffffffffffffff87, lb x14, 0(s0))
  TEST_CASE(170, x14, 0x87, lbu x14, 0(s0))
  TEST_CASE(171, x14, 0x11, lb x14, 8(s0))
  TEST_CASE(172, x14, -16, lb x14, 7(s0))
  TEST_CASE(173, x14, 0xf0, lbu x14, 7(s0))
  TEST_CASE(174, x14, 0xffffffffffff9687, lh x14, 0(s0))
  TEST_CASE(175, x14, 0x9687, lhu x14, 0(s0))
  TEST_CASE(176, x14, 0x2211, lh x14, 8(s0))
  TEST_CASE(177, x14, 0xffffffffb4a59687, lw x14, 0(s0))
  TEST_CASE(178, x14, 0xb4a59687, lwu x14, 0(s0))
  TEST_CASE(179, x14, 0xfffffffff0e1d2c3, lw x14, 4(s0))
  TEST_CASE(180, x14, 0x44332211, lw x14, 8(s0))
  TEST_CASE(181, x14, 0x44332211, lwu x14, 8(s0))
  TEST_CASE(182, x14, 0xf0e1d2c3b4a59687, ld x14, 0(s0))
  TEST_CASE(183, x14, 0x8877665544332211, ld x14, 8(s0))
  addi s1, s0, 16
  TEST_CASE(184, x14, -16, lb x14, -9(s1))
  TEST_CASE(185, x14, 0xf0e1d2c3b4a59687, ld x14, -16(s1))
  TEST_CASE(186, x14, 0xffffffffffffff88, lb x14, -1(s1))
  // the base register is also the destination
  TEST_CASE(187, x14, 0x8877665544332211, mv x14, s0; ld x14, 8(x14))
  // misaligned, within a page (no trap)
  TEST_CASE(188, x14, 0xffffffffffffa596, lh x14, 1(s0))
  TEST_CASE(189, x14, 0xa596, lhu x14, 1(s0))
  TEST_CASE(190, x14, 0xffffffffc3b4a596, lw x14, 1(s0))
  TEST_CASE(191, x14, 0xffffffffe1d2c3b4, lw x14, 3(s0))
  TEST_CASE(192, x14, 0xe1d2c3b4, lwu x14, 3(s0))
  TEST_CASE(193, x14, 0x11f0e1d2c3b4a596, ld x14, 1(s0))
  TEST_CASE(194, x14, 0x5544332211f0e1d2, ld x14, 5(s0))
  TEST_CASE(195, x14, 0x11f0, lhu x14, 7(s0))
  TEST_CASE(196, x14, 0x2211f0e1, lwu x14, 6(s0))
  TEST_CASE(197, x14, 0x8877665544332211, ld x14, 8(s0))
  TEST_CASE(198, x0, 0, ld x0, 0(s0))
  // misaligned, across a page boundary (crossdat + 8 is page-aligned)
  la s1, crossdat
  TEST_CASE(199, x14, 0x0c0b0a0908070605, ld x14, 4(s1))
  TEST_CASE(200, x14, 0x0a090807, lw x14, 6(s1))
  TEST_CASE(201, x14, 0x0908, lh x14, 7(s1))
  TEST_CASE(202, x14, 0x0908, lhu x14, 7(s1))
  TEST_CASE(203, x14, 0x0f0e0d0c0b0a0908, ld x14, 7(s1))
  TEST_CASE(204, x14, 0x0807060504030201, ld x14, 0(s1))
  TEST_CASE(205, x14, 0xfffffffff9f8f7f6, la x11, crossneg; lw x14, 6(x11))
  TEST_CASE(206, x14, 0xf9f8f7f6, la x11, crossneg; lwu x14, 6(x11))

  // ---------------- stores ----------------
  la s0, sdat
  TEST_CASE(207, x14, 0xaa00, sd zero, 0(s0); li x11, 0x12345678aa; sb x11, 1(s0); ld x14, 0(s0))
  TEST_CASE(208, x14, 0xbbccaa00, li x11, -0x4434; sh x11, 2(s0); ld x14, 0(s0))
  TEST_CASE(209, x14, 0x90abcdefbbccaa00, li x11, 0x1234567890abcdef; sw x11, 4(s0); ld x14, 0(s0))
  TEST_CASE(210, x14, 0x1234567890abcdef, li x11, 0x1234567890abcdef; sd x11, 8(s0); ld x14, 8(s0))
  TEST_CASE(211, x14, 0xffffffffffffffef, lb x14, 8(s0))
  TEST_CASE(212, x14, 0x1234, addi x11, s0, 32; li x12, 0x1234; sh x12, -16(x11); lhu x14, 16(s0))
  // misaligned stores within a page
  TEST_CASE(213, x14, 0x00000000ddccbbaa, sd zero, 24(s0); li x11, 0xddccbbaa; sw x11, 25(s0); ld x14, 24(s0); srli x14, x14, 8)
  TEST_CASE(214, x14, 0x8877665544332211, li x11, 0x8877665544332211; sd x11, 35(s0); ld x14, 35(s0))
  TEST_CASE(215, x14, 0x4433, li x11, 0x4433; sh x11, 47(s0); lhu x14, 47(s0))
  TEST_CASE(216, x14, 0x88, lbu x14, 42(s0))
  TEST_CASE(217, x14, 0x11, lbu x14, 35(s0))
  // misaligned stores across a page: bytes on both sides land, neighbours untouched
  la s1, crossdat
  TEST_CASE(218, x14, 0x1122334455667788, li x11, 0x1122334455667788; sd x11, 3(s1); ld x14, 3(s1))
  TEST_CASE(219, x14, 0x03, lbu x14, 2(s1))
  TEST_CASE(220, x14, 0x0c, lbu x14, 11(s1))
  TEST_CASE(221, x14, 0x33, lbu x14, 8(s1))
  TEST_CASE(222, x14, 0x44, lbu x14, 7(s1))
  TEST_CASE(223, x14, 0xffffffffcafe1234, li x11, 0xcafe1234; sw x11, 6(s1); lw x14, 6(s1))
  TEST_CASE(224, x14, 0xbeef, li x11, 0xbeef; sh x11, 7(s1); lhu x14, 7(s1))

  // ---------------- branches ----------------
#define TAKEN(n, inst, a, b) \
  li TESTNUM, n; li x11, a; li x12, b; inst x11, x12, 8886f; j vessel_fail; 8886:
#define NOT_TAKEN(n, inst, a, b) \
  li TESTNUM, n; li x11, a; li x12, b; inst x11, x12, 8885f; j 8884f; 8885: j vessel_fail; 8884:
  TAKEN(225, beq, 0, 0)
  TAKEN(226, beq, -1, -1)
  NOT_TAKEN(227, beq, 0, 1)
  NOT_TAKEN(228, beq, 0x100000000, 0)
  NOT_TAKEN(229, beq, 0, 0x100000000)
  TAKEN(230, bne, 0, 1)
  TAKEN(231, bne, 0x100000000, 0)
  NOT_TAKEN(232, bne, -1, -1)
  TAKEN(233, blt, -1, 1)
  TAKEN(234, blt, 0x8000000000000000, 0x7fffffffffffffff)
  NOT_TAKEN(235, blt, 0, -1)
  NOT_TAKEN(236, blt, 1, 1)
  TAKEN(237, blt, 0x7fffffff, 0x80000000)
  TAKEN(238, blt, -2, -1)
  TAKEN(239, blt, 0xffffffff00000000, 0xffffffff00000001)
  NOT_TAKEN(240, blt, 0x80000000, 0x7fffffff)
  TAKEN(241, bge, 1, -1)
  TAKEN(242, bge, 1, 1)
  NOT_TAKEN(243, bge, -1, 0)
  TAKEN(244, bge, 0x7fffffffffffffff, 0x8000000000000000)
  NOT_TAKEN(245, bge, 0x7fffffff, 0x80000000)
  TAKEN(246, bltu, 1, -1)
  NOT_TAKEN(247, bltu, -1, 1)
  TAKEN(248, bltu, 0x7fffffffffffffff, 0x8000000000000000)
  TAKEN(249, bltu, 0xffffffff, 0x100000000)
  NOT_TAKEN(250, bltu, 0x80000000, 0x7fffffff)
  NOT_TAKEN(251, bltu, 3, 3)
  TAKEN(252, bgeu, -1, 1)
  NOT_TAKEN(253, bgeu, 0, 1)
  TAKEN(254, bgeu, 5, 5)
  TAKEN(255, bgeu, 0x100000000, 0xffffffff)
  NOT_TAKEN(256, bgeu, 0x7fffffff, 0x80000000)
  // backward branch: a counted loop
  TEST_CASE(257, x14, 10, li x14, 0; li x11, 10; 1: addi x14, x14, 1; addi x11, x11, -1; bnez x11, 1b)

  // ---------------- JAL / JALR ----------------
  li TESTNUM, 258
  jal x1, 2f
1:
  j vessel_fail
2:
  la x11, 1b
  CHECK_REG(x1, x11)
  li TESTNUM, 259          // jalr with an odd target: bit 0 is cleared
  la x11, 4f + 1
  jalr x1, 0(x11)
3:
  j vessel_fail
4:
  la x11, 3b
  CHECK_REG(x1, x11)
  li TESTNUM, 260          // negative offset
  la x11, 6f + 8
  jalr x13, -8(x11)
5:
  j vessel_fail
6:
  la x11, 5b
  CHECK_REG(x13, x11)
  li TESTNUM, 261          // rd == rs1: the target uses the old value
  la x11, 8f
  jalr x11, 0(x11)
7:
  j vessel_fail
8:
  la x12, 7b
  CHECK_REG(x11, x12)
  li TESTNUM, 262          // rd == rs1 with an offset
  la x11, 10f - 12
  jalr x11, 12(x11)
9:
  j vessel_fail
10:
  la x12, 9b
  CHECK_REG(x11, x12)
  li TESTNUM, 263          // jal/jalr to x0 do not write
  jal x0, 11f
  j vessel_fail
11:
  la x11, 12f
  jalr x0, 0(x11)
  j vessel_fail
12:
  CHECK_EQ(x0, 0)
  li TESTNUM, 264          // a call and return
  li x14, 0
  jal ra, 13f
  CHECK_EQ(x14, 99)
  j 14f
13:
  li x14, 99
  ret
14:

  // ---------------- x0 ----------------
  TEST_CASE(265, x0, 0, li x0, 5)
  TEST_CASE(266, x0, 0, addi x0, x0, 7; addi x0, x0, 7)
  TEST_CASE(267, x14, 0, addi x0, x0, 7; addi x14, x0, 0)
  TEST_CASE(268, x14, 0, li x11, -1; or x0, x11, x11; add x14, x0, x0)
  TEST_CASE(269, x14, 0, li x11, 1; sll x0, x11, 40; srl x14, x0, 0)
  TEST_CASE(270, x14, 0, csrr x0, mscratch; mv x14, x0)

  // ---------------- FENCE / FENCE.I execute ----------------
  TEST_CASE(271, x14, 1, fence; fence rw, rw; fence.i; li x14, 1)
  // self-modifying code: after a store to an instruction and FENCE.I, the new one runs
  TEST_CASE(272, x10, 1, call smc)
  TEST_CASE(273, x10, 2, la x11, smc; li x12, 0x00200513; sw x12, 0(x11); fence.i; call smc)
  TEST_CASE(274, x10, 3, la x11, smc; li x12, 0x00300513; sw x12, 0(x11); fence.i; call smc)

  TEST_PASS

  TEST_DATA
  .align 2
smc:            // li a0, 1; ret (rewritten by cases 273 and 274)
  .word 0x00100513
  .word 0x00008067
  .align 4
tdat:
  .dword 0xf0e1d2c3b4a59687, 0x8877665544332211
sdat:
  .skip 64

  .align 12
  .skip 4096 - 8
crossneg:     // bytes f0..ff; crossneg + 8 is page-aligned
  .byte 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff
  .skip 4096 - 16
crossdat:     // crossdat + 8 is page-aligned
  .byte 1, 2, 3, 4, 5, 6, 7, 8
  .byte 9, 10, 11, 12, 13, 14, 15, 16
