// Interrupts: CLINT software interrupt (msip), machine timer (mtimecmp against mtime), the
// enables (mstatus.MIE, mie, lower modes), priority, vectored mtvec, delegation of S-level
// interrupts with mideleg, Sstc (stimecmp with menvcfg.STCE), and WFI waking on a pending
// interrupt even when interrupts are globally disabled.
#include "vessel_test.h"

#define SPIN_LIMIT 50000000
/* Spins until an interrupt handler continues elsewhere; fails the case after SPIN_LIMIT loops. */
#define SPIN_UNTIL_TRAP \
  li a3, SPIN_LIMIT; 8879: addi a3, a3, -1; bnez a3, 8879b; j vessel_fail

  TEST_CODE_BEGIN
  li s0, CLINT_MSIP
  li s1, CLINT_MTIMECMP

  // ---------------- machine software interrupt ----------------
  // pending but not enabled: visible in mip, not taken
  TEST_CASE(1, a0, MIP_MSIP, li a1, 1; sw a1, 0(s0); csrr a0, mip; andi a0, a0, MIP_MSIP)
  TEST_CASE(2, a0, MIP_MSIP, li a1, MIP_MSIP; csrw mie, a1; nop; nop; csrr a0, mip; andi a0, a0, MIP_MSIP)   // MIE = 0
  TEST_CASE(3, a0, 0, csrw mie, zero; csrsi mstatus, MSTATUS_MIE; nop; nop; csrci mstatus, MSTATUS_MIE; li a0, 0)  // MSIE = 0
  // enabled: taken at once, mepc = the next instruction, mcause = interrupt 3, mtval = 0
  li TESTNUM, 4
  li a1, MIP_MSIP
  csrw mie, a1
  la T_MCONT, 2f
  csrsi mstatus, MSTATUS_MIE
1:
  SPIN_UNTIL_TRAP
2:
  CHECK_EQ(T_CAUSE, CAUSE_MSI)
  la a1, 1b
  CHECK_REG(T_EPC, a1)
  CHECK_EQ(T_TVAL, 0)
  TEST_CASE(5, a0, MSTATUS_MPIE | MPP_M, csrr a0, mstatus; li a1, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP; and a0, a0, a1)
  TEST_CASE(6, a0, 0, sw zero, 0(s0); csrr a0, mip; andi a0, a0, MIP_MSIP)
  TEST_CASE(7, a0, 0, li a1, MIP_MSIP; csrs mip, a1; csrr a0, mip; andi a0, a0, MIP_MSIP)   // MSIP is not writable in mip
  // raised while enabled: taken right after the store
  li TESTNUM, 8
  csrsi mstatus, MSTATUS_MIE
  la T_MCONT, 4f
  li a1, 1
  sw a1, 0(s0)
3:
  SPIN_UNTIL_TRAP
4:
  CHECK_EQ(T_CAUSE, CAUSE_MSI)
  sw zero, 0(s0)
  csrw mie, zero

  // ---------------- machine timer ----------------
  TEST_CASE(9, a0, 0, csrr a0, mip; andi a0, a0, MIP_MTIP)
  // a compare value in the past is pending at once
  TEST_CASE(10, a0, MIP_MTIP, sd zero, 0(s1); csrr a0, mip; andi a0, a0, MIP_MTIP)
  TEST_CASE(11, a0, MIP_MTIP, li a1, MIP_MTIP; csrc mip, a1; csrr a0, mip; andi a0, a0, MIP_MTIP)   // not clearable in mip
  TEST_CASE(12, a0, 0, li a1, -1; sd a1, 0(s1); csrr a0, mip; andi a0, a0, MIP_MTIP)
  // a compare value slightly in the future: taken once mtime gets there
  li TESTNUM, 13
  li a1, MIP_MTIP
  csrw mie, a1
  li a1, CLINT_MTIME
  ld a2, 0(a1)
  addi a2, a2, 1000
  sd a2, 0(s1)
  la T_MCONT, 5f
  csrsi mstatus, MSTATUS_MIE
  SPIN_UNTIL_TRAP
5:
  CHECK_EQ(T_CAUSE, CAUSE_MTI)
  li a1, CLINT_MTIME
  ld a3, 0(a1)
  sltu a0, a3, a2
  CHECK_EQ(a0, 0)                    // mtime >= mtimecmp when it fired
  TEST_CASE(14, a0, 0, li a1, -1; sd a1, 0(s1); csrr a0, mip; andi a0, a0, MIP_MTIP)
  // written as two 32-bit halves
  li TESTNUM, 15
  la T_MCONT, 6f
  li a1, -1
  sw a1, 4(s1)
  sw zero, 0(s1)
  sw zero, 4(s1)
  csrsi mstatus, MSTATUS_MIE
  SPIN_UNTIL_TRAP
6:
  CHECK_EQ(T_CAUSE, CAUSE_MTI)
  li a1, -1
  sd a1, 0(s1)

  // ---------------- WFI ----------------
  // with MIE = 0 WFI still wakes when an enabled interrupt becomes pending; no trap is taken
  li TESTNUM, 16
  csrw mie, zero
  li a1, MIP_MTIP
  csrw mie, a1
  li a1, CLINT_MTIME
  ld a2, 0(a1)
  li a3, 20000                       // 2 ms at 10 MHz
  add a2, a2, a3
  sd a2, 0(s1)
  li a4, 1000
7:
  wfi
  csrr a0, mip
  andi a0, a0, MIP_MTIP
  bnez a0, 8f
  addi a4, a4, -1                    // WFI may return early; it must not hang
  bnez a4, 7b
  j vessel_fail
8:
  TEST_CASE(17, a0, 0, li a1, CLINT_MTIME; ld a3, 0(a1); sltu a0, a3, a2)
  // a pending enabled interrupt makes WFI complete at once
  TEST_CASE(18, a0, MIP_MTIP, wfi; wfi; csrr a0, mip; andi a0, a0, MIP_MTIP)
  li a1, -1
  sd a1, 0(s1)
  csrw mie, zero

  // ---------------- priority and vectored mode ----------------
  // MSI before MTI before SSI when all are pending (MEI > MSI > MTI > SEI > SSI > STI;
  // QEMU 7.2 takes the lowest-numbered one first: 19-21)
  li TESTNUM, 19
  li a1, 1
  sw a1, 0(s0)
  sd zero, 0(s1)
  li a1, MIP_SSIP
  csrs mip, a1
  li a1, MIP_MSIP | MIP_MTIP | MIP_SSIP
  csrw mie, a1
  la T_MCONT, 9f
  csrsi mstatus, MSTATUS_MIE
  SPIN_UNTIL_TRAP
9:
  CHECK_EQ(T_CAUSE, CAUSE_MSI)
  sw zero, 0(s0)
  li TESTNUM, 20
  la T_MCONT, 10f
  csrsi mstatus, MSTATUS_MIE
  SPIN_UNTIL_TRAP
10:
  CHECK_EQ(T_CAUSE, CAUSE_MTI)
  li a1, -1
  sd a1, 0(s1)
  li TESTNUM, 21
  la T_MCONT, 11f
  csrsi mstatus, MSTATUS_MIE
  SPIN_UNTIL_TRAP
11:
  CHECK_EQ(T_CAUSE, CAUSE_SSI)
  li a1, MIP_SSIP
  csrc mip, a1
  csrw mie, zero
  // vectored: interrupts go to base + 4 * cause, exceptions to base
  la a1, vectors
  ori a1, a1, 1
  csrw mtvec, a1
  li TESTNUM, 22
  li t4, 0
  li a1, MIP_MSIP | MIP_MTIP
  csrw mie, a1
  la T_MCONT, 12f
  csrsi mstatus, MSTATUS_MIE
  li a1, 1
  sw a1, 0(s0)
  SPIN_UNTIL_TRAP
12:
  CHECK_EQ(t4, 3)
  CHECK_EQ(T_CAUSE, CAUSE_MSI)
  sw zero, 0(s0)
  li TESTNUM, 23
  li t4, 0
  la T_MCONT, 13f
  sd zero, 0(s1)
  csrsi mstatus, MSTATUS_MIE
  SPIN_UNTIL_TRAP
13:
  CHECK_EQ(t4, 7)
  CHECK_EQ(T_CAUSE, CAUSE_MTI)
  li a1, -1
  sd a1, 0(s1)
  TEST_TRAP(24, CAUSE_ECALL_M, li t4, 0; ecall)
  CHECK_EQ(t4, 0x99)
  la a1, vessel_m_trap
  csrw mtvec, a1
  csrw mie, zero

  // ---------------- lower privilege: M-level interrupts ignore MIE ----------------
  li TESTNUM, 25
  li a1, 1
  sw a1, 0(s0)
  li a1, MIP_MSIP
  csrw mie, a1
  csrw mstatus, zero                 // MPP = U, MPIE = 0: U runs with MIE = 0
  la a1, 14f
  csrw mepc, a1
  la T_MCONT, 15f
  mret
14:
  SPIN_UNTIL_TRAP
15:
  CHECK_EQ(T_CAUSE, CAUSE_MSI)
  CHECK_EQ(T_PREV, 0)
  li TESTNUM, 26
  li a1, MPP_S
  csrs mstatus, a1
  la a1, 16f
  csrw mepc, a1
  la T_MCONT, 17f
  mret
16:
  SPIN_UNTIL_TRAP
17:
  CHECK_EQ(T_CAUSE, CAUSE_MSI)
  CHECK_EQ(T_PREV, 1)
  sw zero, 0(s0)
  csrw mie, zero
  csrw mstatus, zero

  // ---------------- delegated supervisor software interrupt ----------------
  li a1, MIP_SSIP | MIP_STIP
  csrw mideleg, a1
  li a1, MIP_SSIP
  csrw mie, a1
  csrs mip, a1
  // in M, delegated interrupts are never taken, even with MIE and SIE set
  TEST_CASE(27, a0, MIP_SSIP, csrsi mstatus, MSTATUS_MIE | MSTATUS_SIE; nop; nop; csrci mstatus, MSTATUS_MIE | MSTATUS_SIE; csrr a0, mip; andi a0, a0, MIP_SSIP)
  // in S: not with SIE = 0, taken into S once SIE is set
  li TESTNUM, 28
  RUN_IN MPP_S, s_ssi
  CHECK_EQ(a0, -1)
  CHECK_EQ(a1, CAUSE_SSI)
  CHECK_EQ(a2, 1)
  TEST_CASE(29, a0, 0, csrr a0, mip; andi a0, a0, MIP_SSIP)
  // in U: taken into S regardless of SIE
  li TESTNUM, 30
  li a1, MIP_SSIP
  csrs mip, a1
  la T_SCONT, u_ssi_s        // taken before U's first instruction
  RUN_IN MPP_U, u_ssi
  CHECK_EQ(a1, CAUSE_SSI)
  CHECK_EQ(a2, 1)
  CHECK_EQ(a3, 0)
  // WFI in S with SIE = 0 completes when a delegated interrupt is pending and enabled in sie
  li TESTNUM, 31
  li a1, MIP_SSIP
  csrs mip, a1
  RUN_IN MPP_S, s_wfi
  CHECK_EQ(a0, MIP_SSIP)
  csrw mip, zero
  csrw mie, zero

  // ---------------- Sstc ----------------
  // STCE = 0: stimecmp exists for M, not for S; STIP is an ordinary writable bit
  csrw CSR_MENVCFG, zero
  li a1, 7
  csrw mcounteren, a1
  TEST_CASE(32, a0, 0x1234, li a1, 0x1234; csrw CSR_STIMECMP, a1; csrr a0, CSR_STIMECMP)
  TEST_IN_MODE(33, MPP_S, CAUSE_ILLEGAL, csrr a0, CSR_STIMECMP)
  TEST_CASE(34, a0, MIP_STIP, li a1, MIP_STIP; csrs mip, a1; csrr a0, mip; andi a0, a0, MIP_STIP)
  TEST_CASE(35, a0, 0, li a1, MIP_STIP; csrc mip, a1; csrr a0, mip; andi a0, a0, MIP_STIP)
  // STCE = 1: STIP follows time >= stimecmp and is read-only
  li a1, MENVCFG_STCE
  csrw CSR_MENVCFG, a1
  TEST_CASE(36, a0, MIP_STIP, csrw CSR_STIMECMP, zero; csrr a0, mip; andi a0, a0, MIP_STIP)
  TEST_CASE(37, a0, MIP_STIP, li a1, MIP_STIP; csrc mip, a1; csrr a0, mip; andi a0, a0, MIP_STIP)
  TEST_CASE(38, a0, 0, li a1, -1; csrw CSR_STIMECMP, a1; csrr a0, mip; andi a0, a0, MIP_STIP)
  TEST_CASE(39, a0, 0, li a1, MIP_STIP; csrs mip, a1; csrr a0, mip; andi a0, a0, MIP_STIP)
  // mcounteren.TM = 0 hides stimecmp from S even with STCE = 1
  li a1, 5
  csrw mcounteren, a1
  TEST_IN_MODE(40, MPP_S, CAUSE_ILLEGAL, csrw CSR_STIMECMP, zero)
  li a1, 7
  csrw mcounteren, a1
  // S programs its own timer and takes the interrupt (delegated)
  li a1, MIP_STIP
  csrw mie, a1
  li TESTNUM, 41
  RUN_IN MPP_S, s_sstc
  CHECK_EQ(a1, CAUSE_STI)
  CHECK_EQ(a2, 1)
  CHECK_EQ(a0, 0)
  // not delegated: the same timer interrupts M
  csrw mideleg, zero
  li TESTNUM, 42
  la T_MCONT, 18f
  csrr a1, time
  addi a1, a1, 500
  csrw CSR_STIMECMP, a1
  csrsi mstatus, MSTATUS_MIE
  SPIN_UNTIL_TRAP
18:
  CHECK_EQ(T_CAUSE, CAUSE_STI)
  li a1, -1
  csrw CSR_STIMECMP, a1
  csrw mie, zero
  csrw CSR_MENVCFG, zero
  // with STCE cleared again STIP is software's bit: a timer-driven STIP does not stay stuck
  li a1, MENVCFG_STCE
  csrw CSR_MENVCFG, a1
  TEST_CASE(43, a0, MIP_STIP, csrw CSR_STIMECMP, zero; csrr a0, mip; andi a0, a0, MIP_STIP)
  csrw CSR_MENVCFG, zero
  TEST_CASE(44, a0, 0, li a1, MIP_STIP; csrc mip, a1; csrr a0, mip; andi a0, a0, MIP_STIP)
  TEST_CASE(45, a0, MIP_STIP, li a1, MIP_STIP; csrs mip, a1; csrr a0, mip; andi a0, a0, MIP_STIP)
  TEST_CASE(46, a0, 0, li a1, MIP_STIP; csrc mip, a1; csrr a0, mip; andi a0, a0, MIP_STIP)
  li a1, -1
  csrw CSR_STIMECMP, a1

  // ---------------- supervisor external interrupt from mip.SEIP (software-writable in M) ----------------
  li a1, MIP_SEIP
  csrw mideleg, a1
  csrw mie, a1
  csrs mip, a1
  li TESTNUM, 47
  RUN_IN MPP_S, s_sei
  CHECK_EQ(a1, CAUSE_INTERRUPT | 9)
  CHECK_EQ(a2, 1)
  TEST_CASE(48, a0, MIP_SEIP, csrr a0, mip; andi a0, a0, 0x2aa)     // S cannot clear it through sip
  TEST_CASE(49, a0, 0, li a1, MIP_SEIP; csrc mip, a1; csrr a0, mip; andi a0, a0, 0x2aa)

  // ---------------- vectored stvec ----------------
  li a1, MIP_SSIP
  csrw mideleg, a1
  csrw mie, a1
  csrs mip, a1
  la a1, s_vectors
  ori a1, a1, 1
  csrw stvec, a1
  li TESTNUM, 50
  li t4, 0
  RUN_IN MPP_S, s_ssi_vec
  CHECK_EQ(t4, 1)
  CHECK_EQ(a1, CAUSE_SSI)
  la a1, vessel_s_trap
  csrw stvec, a1
  csrw mie, zero
  csrw mideleg, zero

  // ---------------- mtime is writable; the time CSR follows it ----------------
  TEST_CASE(51, a0, 1, li a1, CLINT_MTIME; li a2, 0x123400000000; sd a2, 0(a1); rdtime a3; sltu a0, a3, a2; xori a0, a0, 1)
  TEST_CASE(52, a0, 1, li a4, 0x123400000000 + 100000000; sltu a0, a3, a4)     // and not far beyond it
  // a compare value below the new mtime is pending at once
  TEST_CASE(53, a0, MIP_MTIP, li a2, 0x123300000000; sd a2, 0(s1); csrr a0, mip; andi a0, a0, MIP_MTIP)
  li a1, -1
  sd a1, 0(s1)

  TEST_PASS

// S-mode: SSIP is pending and enabled in sie; a0 = cause seen while SIE = 0 (-1: none),
// a1/a2 = cause and handler mode after setting SIE.
s_ssi:
  li T_CAUSE, -1
  nop
  nop
  mv a0, T_CAUSE
  la T_SCONT, 1f
  csrsi sstatus, MSTATUS_SIE
  SPIN_UNTIL_TRAP
1:
  mv a1, T_CAUSE
  mv a2, T_MODE
  csrci sip, MIP_SSIP
  ecall

// U-mode: the pending SSIP interrupts U at once into S (u_ssi_s); S reports (a1, a2, a3 =
// cause, mode, previous mode), clears it and returns to U, which ecalls back to M.
u_ssi:
  SPIN_UNTIL_TRAP
u_ssi_s:
  mv a1, T_CAUSE
  mv a2, T_MODE
  mv a3, T_PREV
  csrci sip, MIP_SSIP
  la a0, 2f
  csrw sepc, a0
  sret
2:
  ecall

// S-mode with SIE = 0: WFI returns because SSIP is pending and enabled; a0 = sip.SSIP.
s_wfi:
  li a4, 1000
1:
  wfi
  csrr a0, sip
  andi a0, a0, MIP_SSIP
  bnez a0, 2f
  addi a4, a4, -1
  bnez a4, 1b
  j vessel_fail
2:
  ecall

// S-mode: arms stimecmp a little in the future, waits for the interrupt with SIE = 1, then
// disarms it; a0 = sip.STIP afterwards.
s_sstc:
  la T_SCONT, 1f
  csrr a0, time
  addi a0, a0, 500
  csrw CSR_STIMECMP, a0
  csrsi sstatus, MSTATUS_SIE
  SPIN_UNTIL_TRAP
1:
  mv a1, T_CAUSE
  mv a2, T_MODE
  li a0, -1
  csrw CSR_STIMECMP, a0
  csrr a0, sip
  andi a0, a0, MIP_STIP
  ecall

// S-mode: SEIP is pending and delegated; take it with SIE = 1 (a1, a2 = cause, handler mode).
s_sei:
  la T_SCONT, 1f
  csrsi sstatus, MSTATUS_SIE
  SPIN_UNTIL_TRAP
1:
  mv a1, T_CAUSE
  mv a2, T_MODE
  ecall

// S-mode with a vectored stvec: SSI arrives through entry 1 (which sets t4 = 1).
s_ssi_vec:
  la T_SCONT, 1f
  csrsi sstatus, MSTATUS_SIE
  SPIN_UNTIL_TRAP
1:
  mv a1, T_CAUSE
  csrci sip, MIP_SSIP
  ecall

  .align 8
  .option push
  .option norvc
s_vectors:
  j vessel_s_trap
  j s_vec_ssi
  j vessel_s_trap
  j vessel_s_trap
  j vessel_s_trap
  j vessel_s_trap
  j vessel_s_trap
  j vessel_s_trap
  j vessel_s_trap
  j vessel_s_trap
  .option pop
s_vec_ssi:
  li t4, 1
  j vessel_s_trap

  // mtvec table for vectored mode: entry i at vectors + 4 * i
  .align 8
  .option push
  .option norvc
vectors:
  j vec_exception
  j vessel_unexpected_trap
  j vessel_unexpected_trap
  j vec_msi
  j vessel_unexpected_trap
  j vessel_unexpected_trap
  j vessel_unexpected_trap
  j vec_mti
  j vessel_unexpected_trap
  j vessel_unexpected_trap
  j vessel_unexpected_trap
  j vessel_unexpected_trap
  .option pop
vec_exception:
  li t4, 0x99
  j vessel_m_trap
vec_msi:
  li t4, 3
  j vessel_m_trap
vec_mti:
  li t4, 7
  j vessel_m_trap

  TEST_DATA
