// Privilege and synchronous traps: ecall from U/S/M, illegal instruction (mtval = the
// instruction bits, zero-extended), breakpoint, access faults, misaligned accesses that do not
// trap in any mode, privileged instructions in lower modes (and TSR/TW/TVM), mret/sret state
// transitions, trap-entry state, delegation to S-mode with medeleg (stvec/sepc/scause/stval).
#include "vessel_test.h"

  TEST_CODE_BEGIN
  la s0, tdata

  // ---------------- ecall from each mode ----------------
  TEST_TRAP(1, CAUSE_ECALL_M, 1: ecall)
  la a1, 1b
  CHECK_REG(T_EPC, a1)
  CHECK_EQ(T_TVAL, 0)
  CHECK_EQ(T_PREV, 3)
  TEST_IN_MODE(2, MPP_S, CAUSE_ECALL_S, 1: ecall)
  CHECK_EQ(a6, 0)
  CHECK_EQ(a7, 3)
  CHECK_EQ(t1, 1)
  la a1, 1b
  CHECK_REG(t3, a1)
  TEST_IN_MODE(3, MPP_U, CAUSE_ECALL_U, 1: ecall)
  CHECK_EQ(a7, 3)
  CHECK_EQ(t1, 0)
  la a1, 1b
  CHECK_REG(t3, a1)

  // ---------------- illegal instructions ----------------
  TEST_TRAP(4, CAUSE_ILLEGAL, .option push; .option norvc; 1: unimp; .option pop)
  CHECK_EQ(T_TVAL, 0xc0001073)
  la a1, 1b
  CHECK_REG(T_EPC, a1)
  TEST_TRAP(5, CAUSE_ILLEGAL, .word 0xfff02573)       // csrr a0, 0xfff: mtval is zero-extended
  CHECK_EQ(T_TVAL, 0x00000000fff02573)
  TEST_TRAP(6, CAUSE_ILLEGAL, .word 0x8000007b)       // custom-3 opcode
  CHECK_EQ(T_TVAL, 0x8000007b)
  TEST_TRAP(7, CAUSE_ILLEGAL, .word 0xfe000033)       // OP with funct7 = 0x7f
  CHECK_EQ(T_TVAL, 0xfe000033)
  TEST_TRAP(8, CAUSE_ILLEGAL, .word 0x0000705b)       // custom-2 opcode
  CHECK_EQ(T_TVAL, 0x0000705b)
  TEST_TRAP(9, CAUSE_ILLEGAL, .word 0x00007003)       // LOAD with funct3 = 7
  CHECK_EQ(T_TVAL, 0x00007003)
  TEST_TRAP(10, CAUSE_ILLEGAL, .word 0x00004023)      // STORE with funct3 = 4
  TEST_TRAP(11, CAUSE_ILLEGAL, .word 0x04051513)      // SLLI with imm[11:6] = 000001
  TEST_TRAP(12, CAUSE_ILLEGAL, .word 0x0205151b)      // SLLIW with shamt[5] set
  TEST_TRAP(13, CAUSE_ILLEGAL, .word 0x00002063)      // BRANCH with funct3 = 2
  TEST_TRAP(14, CAUSE_ILLEGAL, .word 0x00001067)      // JALR with funct3 = 1
  TEST_TRAP(15, CAUSE_ILLEGAL, .word 0x00002073)      // csrrs x0, 0x000 (ustatus: not implemented)
  TEST_TRAP(16, CAUSE_ILLEGAL, .word 0x00200073)      // SYSTEM funct3 0 with an unknown funct12 (uret)
  TEST_TRAP(17, CAUSE_ILLEGAL, .word 0x0000300f)      // MISC-MEM with funct3 = 3
  TEST_IN_MODE(18, MPP_U, CAUSE_ILLEGAL, .word 0x8000007b)
  CHECK_EQ(a6, 0x8000007b)
  CHECK_EQ(t1, 0)

  // ---------------- breakpoints ----------------
  TEST_TRAP(19, CAUSE_BREAKPOINT, .option push; .option norvc; 1: ebreak; .option pop)
  la a1, 1b
  CHECK_REG(T_EPC, a1)
  TEST_IN_MODE(20, MPP_U, CAUSE_BREAKPOINT, .option push; .option norvc; 1: ebreak; .option pop)
  la a1, 1b
  CHECK_REG(t3, a1)
  CHECK_EQ(t1, 0)

  // ---------------- access faults ----------------
  TEST_TRAP(21, CAUSE_LOAD_ACCESS, li a1, UNMAPPED_PA; 1: ld a0, 0(a1))
  CHECK_EQ(T_TVAL, UNMAPPED_PA)
  la a1, 1b
  CHECK_REG(T_EPC, a1)
  TEST_TRAP(22, CAUSE_STORE_ACCESS, li a1, UNMAPPED_PA + 0x40; sw a0, 4(a1))
  CHECK_EQ(T_TVAL, UNMAPPED_PA + 0x44)
  TEST_TRAP(23, CAUSE_LOAD_ACCESS, li a1, UNMAPPED_PA; lbu a0, 7(a1))
  CHECK_EQ(T_TVAL, UNMAPPED_PA + 7)
  TEST_TRAP(24, CAUSE_FETCH_ACCESS, li a1, UNMAPPED_PA; jalr a1)
  CHECK_EQ(T_EPC, UNMAPPED_PA)
  CHECK_EQ(T_TVAL, UNMAPPED_PA)
  TEST_IN_MODE(25, MPP_U, CAUSE_LOAD_ACCESS, li a1, UNMAPPED_PA; lw a0, 0(a1))
  CHECK_EQ(a6, UNMAPPED_PA)
  TEST_IN_MODE(26, MPP_S, CAUSE_STORE_ACCESS, li a1, UNMAPPED_PA; sd a0, 0(a1))
  CHECK_EQ(t1, 1)

  // ---------------- misaligned accesses never trap ----------------
  TEST_CASE(27, a0, 0x1122334455667788, li a1, 0x1122334455667788; sd a1, 3(s0); ld a0, 3(s0))
  TEST_IN_MODE(28, MPP_S, -1, li a1, 0x0102030405060708; sd a1, 9(s0); ld a0, 9(s0); lw a2, 13(s0); lh a3, 15(s0))
  CHECK_EQ(a0, 0x0102030405060708)
  CHECK_EQ(a2, 0x01020304)
  CHECK_EQ(a3, 0x0102)
  TEST_IN_MODE(29, MPP_U, -1, li a1, 0xa1b2c3d4; sw a1, 21(s0); lwu a0, 21(s0); sh a1, 31(s0); lhu a2, 31(s0))
  CHECK_EQ(a0, 0xa1b2c3d4)
  CHECK_EQ(a2, 0xc3d4)

  // ---------------- privileged instructions in lower modes ----------------
  TEST_IN_MODE(30, MPP_U, CAUSE_ILLEGAL, mret)
  TEST_IN_MODE(31, MPP_U, CAUSE_ILLEGAL, sret)
  TEST_IN_MODE(32, MPP_U, CAUSE_ILLEGAL, wfi)
  TEST_IN_MODE(33, MPP_U, CAUSE_ILLEGAL, sfence.vma)
  TEST_IN_MODE(34, MPP_U, CAUSE_ILLEGAL, csrr a0, sstatus)
  TEST_IN_MODE(35, MPP_S, CAUSE_ILLEGAL, mret)
  CHECK_EQ(a6, 0x30200073)
  TEST_IN_MODE(36, MPP_S, -1, sfence.vma; csrr a0, satp; csrw satp, zero)
  li a1, MSTATUS_TSR
  csrs mstatus, a1
  TEST_IN_MODE(37, MPP_S, CAUSE_ILLEGAL, sret)
  CHECK_EQ(a6, 0x10200073)
  csrc mstatus, a1
  li a1, MSTATUS_TW
  csrs mstatus, a1
  TEST_IN_MODE(38, MPP_S, CAUSE_ILLEGAL, wfi)
  CHECK_EQ(a6, 0x10500073)
  csrc mstatus, a1
  li a1, MSTATUS_TVM
  csrs mstatus, a1
  TEST_IN_MODE(39, MPP_S, CAUSE_ILLEGAL, sfence.vma)
  TEST_IN_MODE(40, MPP_S, CAUSE_ILLEGAL, csrr a0, satp)
  TEST_IN_MODE(41, MPP_S, CAUSE_ILLEGAL, csrw satp, zero)
  TEST_CASE(42, a0, 0, csrr a0, satp)        // TVM does not concern M-mode
  li a1, MSTATUS_TVM
  csrc mstatus, a1
  // SRET in S-mode (TSR = 0) returns to the mode in SPP
  TEST_IN_MODE(43, MPP_S, -1, li a1, MSTATUS_SPP; csrs sstatus, a1; la a1, 1f; csrw sepc, a1; sret; j vessel_fail; 1: li a0, 5)
  CHECK_EQ(a0, 5)

  // ---------------- MRET ----------------
  // MIE := MPIE, MPIE := 1, MPP := U (the least-privileged mode)
  TEST_CASE(44, a0, MSTATUS_MIE | MSTATUS_MPIE, csrw mstatus, zero; li a1, MPP_M | MSTATUS_MPIE; csrs mstatus, a1; \
    la a1, 1f; csrw mepc, a1; mret; j vessel_fail; 1: csrr a0, mstatus; li a1, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP; and a0, a0, a1)
  TEST_CASE(45, a0, MSTATUS_MPIE, csrw mstatus, zero; li a1, MPP_M | MSTATUS_MIE; csrs mstatus, a1; \
    la a1, 1f; csrw mepc, a1; mret; j vessel_fail; 1: csrr a0, mstatus; li a1, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP; and a0, a0, a1)
  // MPRV survives an MRET to M and is cleared by one to a lower mode (QEMU 7.2 keeps it: 48)
  TEST_CASE(46, a0, MSTATUS_MPRV, csrw mstatus, zero; li a1, MPP_M | MSTATUS_MPRV; csrs mstatus, a1; \
    la a1, 1f; csrw mepc, a1; mret; 1: csrr a0, mstatus; li a1, MSTATUS_MPRV; and a0, a0, a1)
  TEST_IN_MODE(47, MPP_S, -1, nop)
  TEST_CASE(48, a0, 0, csrr a0, mstatus; li a1, MSTATUS_MPRV; and a0, a0, a1)
  csrw mstatus, zero
  // trap entry from U: MPIE := MIE (1 in U after MRET with MPIE = 1), MIE := 0, MPP := U
  li a1, MSTATUS_MPIE
  csrs mstatus, a1
  TEST_IN_MODE(49, MPP_U, CAUSE_ILLEGAL, csrr a0, mstatus)
  TEST_CASE(50, a0, MSTATUS_MPIE, csrr a0, mstatus; li a1, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP; and a0, a0, a1)
  csrw mstatus, zero
  TEST_IN_MODE(51, MPP_S, -1, nop)
  TEST_CASE(52, a0, MPP_S, csrr a0, mstatus; li a1, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP; and a0, a0, a1)
  csrw mstatus, zero

  // ---------------- SRET from M ----------------
  // SIE := SPIE, SPIE := 1, SPP := U, privilege := SPP
  li TESTNUM, 53
  li a1, MSTATUS_SPP | MSTATUS_SPIE
  csrs mstatus, a1
  la a1, 1f
  csrw sepc, a1
  la T_MCONT, 2f
  sret
1:
  csrr a0, sstatus
  ecall
2:
  CHECK_EQ(T_CAUSE, CAUSE_ECALL_S)
  li a1, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP
  and a0, a0, a1
  CHECK_EQ(a0, MSTATUS_SIE | MSTATUS_SPIE)
  li TESTNUM, 54
  csrw mstatus, zero
  la a1, 3f
  csrw sepc, a1
  la T_MCONT, 4f
  sret
3:
  csrr a0, cycle       // U-mode: mcounteren is 0, so this traps (and resumes nowhere: goes to T_MCONT)
  j vessel_fail
4:
  CHECK_EQ(T_CAUSE, CAUSE_ILLEGAL)
  CHECK_EQ(T_PREV, 0)
  csrw mstatus, zero

  // ---------------- delegation to S-mode ----------------
  li a1, (1 << CAUSE_ILLEGAL) | (1 << CAUSE_BREAKPOINT) | (1 << CAUSE_LOAD_ACCESS)
  csrw medeleg, a1
  TEST_IN_MODE(55, MPP_U, CAUSE_ILLEGAL, 1: .word 0x8000007b)
  CHECK_EQ(a7, 1)
  CHECK_EQ(a6, 0x8000007b)
  CHECK_EQ(t1, 0)
  la a1, 1b
  CHECK_REG(t3, a1)
  TEST_CASE(56, a0, CAUSE_ILLEGAL, csrr a0, scause)
  TEST_CASE(57, a0, 0x8000007b, csrr a0, stval)
  TEST_CASE(58, a0, MSTATUS_SPIE, csrr a0, sstatus; andi a0, a0, MSTATUS_SPIE)   // left by the handler's SRET
  TEST_IN_MODE(59, MPP_S, CAUSE_ILLEGAL, csrr a0, mstatus)
  CHECK_EQ(a7, 1)
  CHECK_EQ(t1, 1)
  TEST_IN_MODE(60, MPP_U, CAUSE_BREAKPOINT, ebreak)
  CHECK_EQ(a7, 1)
  TEST_IN_MODE(61, MPP_S, CAUSE_LOAD_ACCESS, li a1, UNMAPPED_PA; lw a0, 8(a1))
  CHECK_EQ(a7, 1)
  CHECK_EQ(a6, UNMAPPED_PA + 8)
  // not delegated: store access faults still go to M
  TEST_IN_MODE(62, MPP_S, CAUSE_STORE_ACCESS, li a1, UNMAPPED_PA; sw a0, 8(a1))
  CHECK_EQ(a7, 3)
  // traps never go to a less privileged mode: in M, delegated causes stay in M
  TEST_TRAP(63, CAUSE_ILLEGAL, .word 0x8000007b)
  CHECK_EQ(T_MODE, 3)
  // stvec in vectored mode still sends exceptions to its base
  la a1, vessel_s_trap
  ori a1, a1, 1
  csrw stvec, a1
  TEST_IN_MODE(64, MPP_U, CAUSE_ILLEGAL, .word 0x8000007b)
  CHECK_EQ(a7, 1)
  la a1, vessel_s_trap
  csrw stvec, a1
  // trap-entry state in sstatus: SPIE := SIE, SIE := 0, SPP := the mode trapped from
  li TESTNUM, 65
  li a1, MSTATUS_SIE
  csrs mstatus, a1
  RUN_IN MPP_S, s_state
  CHECK_EQ(a0, MSTATUS_SPIE | MSTATUS_SPP)
  csrw mstatus, zero
  li TESTNUM, 66
  li a1, MSTATUS_SIE
  csrs mstatus, a1
  RUN_IN MPP_U, u_state     // U traps to S, which runs u_state_s and then returns to M
  CHECK_EQ(a0, MSTATUS_SPIE)
  csrw mstatus, zero

  // ecall from U delegated: the S handler sees it, then S comes back to M with its own ecall
  li a1, 1 << CAUSE_ECALL_U
  csrw medeleg, a1
  li TESTNUM, 67
  li a1, MSTATUS_MPP
  csrc mstatus, a1
  la a1, 5f
  csrw mepc, a1
  la T_MCONT, 7f
  la T_SCONT, 6f
  mret
5:
  ecall
  j vessel_fail
6:
  mv a5, T_CAUSE
  mv a7, T_MODE
  mv t1, T_PREV
  mv t3, T_EPC
  ecall
7:
  CHECK_EQ(T_CAUSE, CAUSE_ECALL_S)
  CHECK_EQ(a5, CAUSE_ECALL_U)
  CHECK_EQ(a7, 1)
  CHECK_EQ(t1, 0)
  la a1, 5b
  CHECK_REG(t3, a1)
  TEST_CASE(68, a0, CAUSE_ECALL_U, csrr a0, scause)
  csrw medeleg, zero

  TEST_PASS

  // S-mode: take an illegal-instruction trap into S (delegated) and report sstatus as the
  // handler sees it in a0, then return to M.
s_state:
  la T_SCONT, 1f
  .word 0x8000007b
  j vessel_fail
1:
  csrr a0, sstatus
  li a1, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP
  and a0, a0, a1
  ecall

u_state:
  la T_SCONT, u_state_s
  .word 0x8000007b
  j vessel_fail
u_state_s:
  csrr a0, sstatus
  li a1, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP
  and a0, a0, a1
  // back to M from S: RUN_IN expects an ecall from U, so go there first
  li a1, MSTATUS_SPP
  csrc sstatus, a1
  la a1, 1f
  csrw sepc, a1
  sret
1:
  ecall

  TEST_DATA
  .align 4
tdata:
  .skip 64
