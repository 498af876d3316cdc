// Zicsr and the basic CSRs: CSRRW/RS/RC and immediate forms (which of them write), read-only
// CSRs, privilege checks on CSR numbers, unimplemented CSRs, mscratch, misa, mhartid,
// sstatus/sie/sip as views of the M registers, WARL fields, counters (instret counts retired
// instructions, a write to minstret is what the next instruction reads, time advances) and
// mcounteren/scounteren.
#include "vessel_test.h"

/* Case n: `code` must raise illegal-instruction, with mtval = the 32 bits at its label. */
#define ILLEGAL_CSR(n, ...) \
  li TESTNUM, n; li T_CAUSE, -1; la T_RESUME, 8881f; .option push; .option norvc; 8882: __VA_ARGS__; .option pop; \
  8881: li T_RESUME, 0; CHECK_EQ(T_CAUSE, CAUSE_ILLEGAL); la a1, 8882b; lwu a2, 0(a1); CHECK_REG(T_TVAL, a2)

  TEST_CODE_BEGIN

  // ---------------- the six instructions ----------------
  TEST_CASE(1, a1, 0x1234, li a0, 0x1234; csrw mscratch, a0; li a0, 0x5678; csrrw a1, mscratch, a0)
  TEST_CASE(2, a1, 0x5678, csrr a1, mscratch)
  TEST_CASE(3, a1, 0x8000000000000001, li a0, 0x8000000000000001; csrw mscratch, a0; csrr a1, mscratch)
  TEST_CASE(4, a1, 0x8000000000000001, li a0, 0x00000000ff000010; csrrs a1, mscratch, a0)
  TEST_CASE(5, a1, 0x80000000ff000011, csrr a1, mscratch)
  TEST_CASE(6, a1, 0x80000000ff000011, li a0, 0x8000000000000010; csrrc a1, mscratch, a0)
  TEST_CASE(7, a1, 0x00000000ff000001, csrr a1, mscratch)
  TEST_CASE(8, a1, 0x00000000ff000001, csrrs a1, mscratch, x0; csrrc a1, mscratch, x0)
  TEST_CASE(9, a1, 0x00000000ff000001, csrrwi a1, mscratch, 31)
  TEST_CASE(10, a1, 31, csrr a1, mscratch)
  TEST_CASE(11, a1, 31, csrrci a1, mscratch, 3)
  TEST_CASE(12, a1, 28, csrrsi a1, mscratch, 0x10; csrr a1, mscratch)
  TEST_CASE(13, a1, 28, csrrsi a1, mscratch, 0; csrrci a1, mscratch, 0)
  TEST_CASE(14, a1, 0, csrrwi a1, mscratch, 0; csrr a1, mscratch)
  TEST_CASE(15, a1, 0x77, li a0, 0x77; csrrw x0, mscratch, a0; csrr a1, mscratch)
  TEST_CASE(16, a0, 0x77, li a0, 0x99; csrrw a0, mscratch, a0)
  TEST_CASE(17, a1, 0x99, csrr a1, mscratch)
  TEST_CASE(18, a0, 0x99, li a0, 0x88; csrrs a0, mscratch, a0)
  TEST_CASE(19, a1, 0x99, csrr a1, mscratch)
  TEST_CASE(20, x0, 0, csrrw x0, mscratch, x0; csrr x0, mscratch)

  // ---------------- misa, ids ----------------
  TEST_CASE(21, a0, 2, csrr a0, misa; srli a0, a0, 62)
  TEST_CASE(22, a0, 0x14112d, csrr a0, misa; li a1, 0x14112d; and a0, a0, a1)      // I M A F D C S U
  TEST_CASE(23, a0, 2, csrr a1, misa; csrw misa, a1; csrr a0, misa; srli a0, a0, 62)
  TEST_CASE(24, a0, 0x100, csrw misa, zero; csrr a0, misa; andi a0, a0, 0x100)
  TEST_CASE(25, a0, 0, csrr a0, mhartid)
  TEST_CASE(26, a0, 0, csrr a0, mvendorid; csrr a0, marchid; csrr a0, mimpid; li a0, 0)
  TEST_CASE(27, a0, 0, csrrs a0, mhartid, x0; csrrsi a0, mhartid, 0; csrrc a0, mhartid, x0; csrrci a0, mhartid, 0)

  // ---------------- illegal CSR accesses ----------------
  ILLEGAL_CSR(28, csrw mhartid, a0)              // read-only (0xf14)
  ILLEGAL_CSR(29, csrrwi x0, mhartid, 0)         // CSRRW writes even with x0 / 0
  ILLEGAL_CSR(30, csrrw x0, cycle, x0)           // the canonical 32-bit unimp
  li a0, 1
  ILLEGAL_CSR(31, csrrs a0, time, a0)
  ILLEGAL_CSR(32, csrrsi a0, instret, 1)
  ILLEGAL_CSR(33, csrrci a0, mvendorid, 1)
  ILLEGAL_CSR(34, csrr a0, 0x0ff)                // unallocated user CSR
  ILLEGAL_CSR(35, csrr a0, 0x1ff)                // unallocated supervisor CSR
  ILLEGAL_CSR(36, csrr a0, 0x3ff)                // unallocated machine CSR
  ILLEGAL_CSR(37, csrw 0x3ff, a0)
  ILLEGAL_CSR(38, .word 0x34004073)              // SYSTEM funct3 = 4 (reserved), csr = mscratch, rs1 = x0
  li a0, 5
  ILLEGAL_CSR(39, .word 0x34054073)              // the same with rs1 = a0: must not write mscratch
  TEST_CASE(40, a1, 0, csrr a1, mscratch)
  ILLEGAL_CSR(41, csrr a0, 0xfff)
  // the privilege encoded in the CSR number
  TEST_IN_MODE(42, MPP_S, CAUSE_ILLEGAL, csrr a0, mscratch)
  TEST_IN_MODE(43, MPP_S, CAUSE_ILLEGAL, csrw mstatus, zero)
  TEST_IN_MODE(44, MPP_U, CAUSE_ILLEGAL, csrr a0, sscratch)
  TEST_IN_MODE(45, MPP_U, CAUSE_ILLEGAL, csrr a0, mhartid)
  TEST_IN_MODE(46, MPP_S, -1, li a0, 0x55; csrw sscratch, a0; csrr a1, sscratch)
  CHECK_EQ(a1, 0x55)
  TEST_IN_MODE(47, MPP_S, CAUSE_ILLEGAL, csrr a0, mhartid)

  // ---------------- sstatus, a view of mstatus ----------------
  TEST_CASE(48, a0, 0xc6122, csrw mstatus, zero; li a1, -1; csrw sstatus, a1; csrr a0, mstatus; li a1, 0x7e79aa; and a0, a0, a1)
  TEST_CASE(49, a0, 0, csrr a0, sstatus; li a1, 0x1888; and a0, a0, a1)
  TEST_CASE(50, a0, 1, csrr a0, mstatus; srli a0, a0, 63)
  TEST_CASE(51, a0, MPP_S | MSTATUS_MPIE | MSTATUS_MIE, csrw mstatus, zero; li a1, MPP_S | MSTATUS_MPIE | MSTATUS_MIE; csrs mstatus, a1; \
    csrr a0, sstatus; li a1, 0x1888; and a0, a0, a1; csrw sstatus, zero; csrr a0, mstatus; li a1, 0x1888; and a0, a0, a1)
  TEST_CASE(52, a0, 0, csrr a0, sstatus; li a1, 0x1888; and a0, a0, a1)
  // (QEMU 7.2 lets case 48's write set UXL = 3, keeps MPP = 2, and lets medeleg[11] be set: 53-55, 57)
  TEST_CASE(53, a0, 2, csrr a0, sstatus; srli a0, a0, 32; andi a0, a0, 3)          // UXL = 64 bits
  TEST_CASE(54, a0, 0xa, csrr a0, mstatus; srli a0, a0, 32; andi a0, a0, 0xf)      // SXL = UXL = 64 bits
  TEST_CASE(55, a0, 0, li a1, MSTATUS_MPP; csrc mstatus, a1; li a1, 0x1000; csrs mstatus, a1; csrr a0, mstatus; \
    srli a0, a0, 11; andi a0, a0, 3; addi a0, a0, -2; seqz a0, a0)               // MPP = 2 is not kept
  csrw mstatus, zero

  // ---------------- delegation and interrupt-enable registers ----------------
  TEST_CASE(56, a0, 0x222, li a1, -1; csrw mideleg, a1; csrr a0, mideleg; andi a0, a0, 0x2aa)
  TEST_CASE(57, a0, 0, li a1, -1; csrw medeleg, a1; csrr a0, medeleg; li a1, 0x800; and a0, a0, a1)   // ecall from M is never delegated
  TEST_CASE(58, a0, 0xb3ff, csrr a0, medeleg; li a1, 0xb3ff; and a0, a0, a1)
  csrw medeleg, zero
  // (QEMU 7.2 keeps the hypervisor bit VSEIP writable in mie: 59, 61, 63)
  TEST_CASE(59, a0, 0xaaa, li a1, -1; csrw mie, a1; csrr a0, mie; li a1, 0xfff; and a0, a0, a1)
  TEST_CASE(60, a0, 0x222, csrr a0, sie)
  TEST_CASE(61, a0, 0x888, csrw sie, zero; csrr a0, mie; li a1, 0xfff; and a0, a0, a1)
  TEST_CASE(62, a0, 0x200, csrw mideleg, zero; li a1, MIP_SEIP; csrw mideleg, a1; li a1, -1; csrw sie, a1; csrr a0, sie)
  TEST_CASE(63, a0, 0xa88, csrr a0, mie; li a1, 0xfff; and a0, a0, a1)
  csrw mie, zero
  csrw mideleg, zero
  TEST_CASE(64, a0, MIP_SSIP, li a1, MIP_SSIP; csrs mip, a1; csrr a0, mip; andi a0, a0, 0xaa)
  TEST_CASE(65, a0, 0, csrr a0, sip)                                                 // not delegated: invisible
  TEST_CASE(66, a0, MIP_SSIP, li a1, MIP_SSIP; csrw mideleg, a1; csrr a0, sip)
  TEST_CASE(67, a0, 0, csrw sip, zero; csrr a0, mip; andi a0, a0, 0xaa)
  TEST_CASE(68, a0, MIP_STIP, li a1, MIP_STIP | MIP_MSIP | MIP_MTIP; csrs mip, a1; csrr a0, mip; andi a0, a0, 0xaa)  // MSIP/MTIP are not writable here
  csrw mip, zero
  csrw mideleg, zero

  // ---------------- trap CSRs ----------------
  csrr s1, mtvec
  TEST_CASE(69, a0, 0x80001000, li a1, 0x80001000; csrw mtvec, a1; csrr a0, mtvec)
  TEST_CASE(70, a0, 0x80001001, li a1, 0x80001001; csrw mtvec, a1; csrr a0, mtvec)   // vectored
  csrw mtvec, s1
  // (QEMU 7.2 does not clear bit 0 of mepc/sepc on writes: 71, 74)
  TEST_CASE(71, a0, 0x0000123456789ab2, li a1, 0x0000123456789ab3; csrw mepc, a1; csrr a0, mepc)
  TEST_CASE(72, a0, 0x8000000000000005, li a1, 0x8000000000000005; csrw mcause, a1; csrr a0, mcause)
  TEST_CASE(73, a0, 0xfedcba9876543210, li a1, 0xfedcba9876543210; csrw mtval, a1; csrr a0, mtval)
  TEST_CASE(74, a0, 0xffffffffffffff02, li a1, 0xffffffffffffff03; csrw sepc, a1; csrr a0, sepc)
  TEST_CASE(75, a0, 13, li a1, 13; csrw scause, a1; csrr a0, scause)
  TEST_CASE(76, a0, 0x1234, li a1, 0x1234; csrw stval, a1; csrr a0, stval)
  TEST_CASE(77, a0, 0xdeadbeefcafe, li a1, 0xdeadbeefcafe; csrw sscratch, a1; csrr a0, sscratch)
  TEST_CASE(78, a0, 0x80002000, li a1, 0x80002000; csrw stvec, a1; csrr a0, stvec)
  la a1, vessel_s_trap
  csrw stvec, a1
  TEST_CASE(79, a0, MENVCFG_STCE | 1, li a1, MENVCFG_STCE | 1; csrw CSR_MENVCFG, a1; csrr a0, CSR_MENVCFG)
  csrw CSR_MENVCFG, zero

  // ---------------- counters ----------------
  // instret counts retired instructions; the CSR read sees the count before itself
  // (exact counts: QEMU 7.2 without -icount is not instruction-exact, 80-85)
  TEST_CASE(80, a0, 3, .option push; .option norvc; csrr a1, minstret; nop; nop; csrr a0, minstret; .option pop; sub a0, a0, a1)
  TEST_CASE(81, a0, 1, .option push; .option norvc; csrr a1, minstret; csrr a0, instret; .option pop; sub a0, a0, a1)
  TEST_CASE(82, a0, 21, li a2, 10; csrr a1, minstret; 1: addi a2, a2, -1; bnez a2, 1b; csrr a0, minstret; sub a0, a0, a1)
  // mcycle counts too
  TEST_CASE(83, a0, 1, csrr a1, mcycle; nop; csrr a0, mcycle; sltu a0, a1, a0)
  // a write to minstret is what the next instruction reads (the write replaces the increment)
  TEST_CASE(84, a0, 1000, li a1, 1000; csrw minstret, a1; csrr a0, minstret)
  TEST_CASE(85, a0, 1, li a1, 0x123456789; csrw minstret, a1; nop; csrr a0, minstret; sub a0, a0, a1; addi a0, a0, -1; seqz a0, a0)
  // time advances (and mtime with it)
  TEST_CASE(86, a0, 1, rdtime a1; li a2, 100000000; 1: rdtime a0; bne a0, a1, 2f; addi a2, a2, -1; bnez a2, 1b; 2: sltu a0, a1, a0)
  TEST_CASE(87, a0, 1, rdtime a1; li a2, CLINT_MTIME; ld a2, 0(a2); sltu a0, a2, a1; xori a0, a0, 1)
  TEST_CASE(88, a0, 1, rdcycle a1; rdinstret a2; rdcycle a0; sltu a0, a1, a0)
  // mhpmcounters read without a trap in M-mode
  TEST_CASE(89, a0, 0, csrr a0, mhpmcounter3; csrr a0, mhpmevent3; li a0, 0)

  // ---------------- counter access from S and U ----------------
  csrw mcounteren, zero
  csrw scounteren, zero
  TEST_IN_MODE(90, MPP_S, CAUSE_ILLEGAL, rdcycle a0)
  TEST_IN_MODE(91, MPP_S, CAUSE_ILLEGAL, rdtime a0)
  TEST_IN_MODE(92, MPP_S, CAUSE_ILLEGAL, rdinstret a0)
  TEST_IN_MODE(93, MPP_U, CAUSE_ILLEGAL, rdtime a0)
  li a0, 2
  csrw mcounteren, a0        // TM only
  TEST_IN_MODE(94, MPP_S, -1, rdtime a0)
  TEST_IN_MODE(95, MPP_S, CAUSE_ILLEGAL, rdcycle a0)
  TEST_IN_MODE(96, MPP_U, CAUSE_ILLEGAL, rdtime a0)
  li a0, 7
  csrw mcounteren, a0
  TEST_IN_MODE(97, MPP_S, -1, rdcycle a0; rdtime a0; rdinstret a0)
  TEST_IN_MODE(98, MPP_U, CAUSE_ILLEGAL, rdcycle a0)
  li a0, 4
  csrw scounteren, a0        // IR only
  TEST_IN_MODE(99, MPP_U, -1, rdinstret a0)
  TEST_IN_MODE(100, MPP_U, CAUSE_ILLEGAL, rdtime a0)
  TEST_IN_MODE(101, MPP_S, -1, li a1, 3; csrw scounteren, a1)
  TEST_IN_MODE(102, MPP_U, -1, rdcycle a0; rdtime a0)
  TEST_IN_MODE(103, MPP_U, CAUSE_ILLEGAL, rdinstret a0)
  csrw mcounteren, zero
  TEST_IN_MODE(104, MPP_U, CAUSE_ILLEGAL, rdcycle a0)

  TEST_PASS
  TEST_DATA
