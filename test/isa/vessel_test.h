/*
 * Shared definitions for Vessel's bare-metal ISA tests (test/isa/*.S, run by test/isa.test.ts).
 *
 * Every hart starts in M-mode at _start with no firmware. Each test case sets TESTNUM to its
 * number, computes something and compares it with the expected value; on a mismatch the
 * program powers the board off through the sifive_test device with the case number as the
 * exit code ((n << 16) | 0x3333). Passing programs write 0x5555.
 *
 * Register conventions (tests must not use these for anything else):
 *   gp       TESTNUM: the current case number
 *   x14, x7  the last comparison: x14 = value found, x7 = value expected
 *   s2..s4   scratch of the trap handlers and the exit path (s4 = 0xf00 after a mismatch,
 *            0xbad after an unexpected trap; the runner reads it)
 *   s5..s9   written by the trap handlers: s5 = privilege the trap came from, s6 = privilege
 *            of the handler that took it (3 or 1), s7 = xepc, s8 = xcause, s9 = xtval
 *   s11      "resume": when non-zero, a trap (M or S handler) returns to this address in the
 *            privilege it came from (xepc := s11, then xRET) and clears s11
 *   s10      "M continuation": when s11 is zero, the M handler jumps to s10 and stays in M
 *            (used to come back to M-mode with an ecall, and for interrupts); cleared on use
 *   tp       "S continuation": the same for the S handler, which stays in S
 * A trap that finds none of these set is unexpected and fails the current case.
 *
 * The programs were cross-checked on QEMU 7.2 (qemu-system-riscv64 -M virt -cpu rv64,h=false
 * -bios none -kernel prog.elf); the cases where QEMU 7.2 departs from the spec are marked.
 */
#ifndef VESSEL_TEST_H
#define VESSEL_TEST_H

/* ---- board (QEMU virt layout) ---- */
#define TEST_DEVICE     0x100000
#define CLINT_MSIP      0x2000000
#define CLINT_MTIMECMP  0x2004000
#define CLINT_MTIME     0x200bff8
/* Neither RAM nor a device: accesses fault. */
#define UNMAPPED_PA     0x08000000

/* ---- CSRs gas may not know by name ---- */
#define CSR_MENVCFG     0x30a
#define CSR_STIMECMP    0x14d

/* ---- mstatus / sstatus ---- */
#define MSTATUS_SIE     0x2
#define MSTATUS_MIE     0x8
#define MSTATUS_SPIE    0x20
#define MSTATUS_MPIE    0x80
#define MSTATUS_SPP     0x100
#define MSTATUS_MPP     0x1800
#define MPP_U           0x0
#define MPP_S           0x800
#define MPP_M           0x1800
#define MSTATUS_FS      0x6000
#define FS_INITIAL      0x2000
#define FS_CLEAN        0x4000
#define FS_DIRTY        0x6000
#define MSTATUS_MPRV    0x20000
#define MSTATUS_SUM     0x40000
#define MSTATUS_MXR     0x80000
#define MSTATUS_TVM     0x100000
#define MSTATUS_TW      0x200000
#define MSTATUS_TSR     0x400000
#define MSTATUS_SD      0x8000000000000000

#define MENVCFG_STCE    0x8000000000000000

/* ---- interrupts (mip / mie bits) ---- */
#define MIP_SSIP        0x2
#define MIP_MSIP        0x8
#define MIP_STIP        0x20
#define MIP_MTIP        0x80
#define MIP_SEIP        0x200
#define MIP_MEIP        0x800

/* ---- mcause / scause ---- */
#define CAUSE_INTERRUPT         0x8000000000000000
#define CAUSE_FETCH_MISALIGNED  0
#define CAUSE_FETCH_ACCESS      1
#define CAUSE_ILLEGAL           2
#define CAUSE_BREAKPOINT        3
#define CAUSE_LOAD_MISALIGNED   4
#define CAUSE_LOAD_ACCESS       5
#define CAUSE_STORE_MISALIGNED  6
#define CAUSE_STORE_ACCESS      7
#define CAUSE_ECALL_U           8
#define CAUSE_ECALL_S           9
#define CAUSE_ECALL_M           11
#define CAUSE_FETCH_PAGE        12
#define CAUSE_LOAD_PAGE         13
#define CAUSE_STORE_PAGE        15
#define CAUSE_SSI               (CAUSE_INTERRUPT | 1)
#define CAUSE_MSI               (CAUSE_INTERRUPT | 3)
#define CAUSE_STI               (CAUSE_INTERRUPT | 5)
#define CAUSE_MTI               (CAUSE_INTERRUPT | 7)

/* ---- page tables ---- */
#define PTE_V   0x1
#define PTE_R   0x2
#define PTE_W   0x4
#define PTE_X   0x8
#define PTE_U   0x10
#define PTE_G   0x20
#define PTE_A   0x40
#define PTE_D   0x80
#define SATP_SV39 0x8000000000000000
#define SATP_SV48 0x9000000000000000

/* ---- register conventions (see above) ---- */
#define TESTNUM   gp
#define T_PREV    s5
#define T_MODE    s6
#define T_EPC     s7
#define T_CAUSE   s8
#define T_TVAL    s9
#define T_MCONT   s10
#define T_RESUME  s11
#define T_SCONT   tp

/* ---- checks ---- */

/* Fails the current case unless register `reg` holds `exp` (an immediate). */
#define CHECK_EQ(reg, exp) \
  mv x14, reg; li x7, exp; beq x14, x7, 8888f; jal zero, vessel_fail; 8888:

/* Fails the current case unless registers `reg` and `expreg` are equal. */
#define CHECK_REG(reg, expreg) \
  mv x7, expreg; mv x14, reg; beq x14, x7, 8888f; jal zero, vessel_fail; 8888:

/* Case n: run `code` (any instructions), then `reg` must hold `exp`. */
#define TEST_CASE(n, reg, exp, ...) \
  li TESTNUM, n; __VA_ARGS__; CHECK_EQ(reg, exp)

/* Register-register and register-immediate operations: x14 = op(x11, x12 / imm). */
#define TEST_RR(n, inst, exp, a, b) \
  TEST_CASE(n, x14, exp, li x11, a; li x12, b; inst x14, x11, x12)
#define TEST_RI(n, inst, exp, a, imm) \
  TEST_CASE(n, x14, exp, li x11, a; inst x14, x11, imm)
/* The same with the destination equal to a source. */
#define TEST_RR_RD_RS1(n, inst, exp, a, b) \
  TEST_CASE(n, x11, exp, li x11, a; li x12, b; inst x11, x11, x12)
#define TEST_RR_RD_RS2(n, inst, exp, a, b) \
  TEST_CASE(n, x12, exp, li x11, a; li x12, b; inst x12, x11, x12)
#define TEST_RR_RD_RS12(n, inst, exp, a) \
  TEST_CASE(n, x11, exp, li x11, a; inst x11, x11, x11)
#define TEST_RI_RD_RS1(n, inst, exp, a, imm) \
  TEST_CASE(n, x11, exp, li x11, a; inst x11, x11, imm)
/* Writes to x0 are ignored. */
#define TEST_RR_X0(n, inst, a, b) \
  TEST_CASE(n, x0, 0, li x11, a; li x12, b; inst x0, x11, x12)

/*
 * Case n: `code` must trap with mcause/scause `cause`; execution resumes after it in the
 * same privilege. The trap record (s5..s9) can be checked afterwards.
 */
#define TEST_TRAP(n, cause, ...) \
  li TESTNUM, n; li T_CAUSE, -1; la T_RESUME, 8887f; __VA_ARGS__; \
  8887: li T_RESUME, 0; CHECK_EQ(T_CAUSE, cause)

/* ---- program structure ---- */

/*
 * Starts the program: trap vectors, a stack per hart (4 KiB each, at most 4 harts), PMP
 * opened for S/U (QEMU enforces PMP; Vessel has none), this hart's mtimecmp at its maximum. Hart 0 continues after the macro;
 * other harts go to `secondary_main` when the test defines VESSEL_SECONDARY_MAIN, else park.
 */
.macro TEST_CODE_BEGIN
  .option nopic
  .section .text.init, "ax", @progbits
  .globl _start
_start:
  la t0, vessel_m_trap
  csrw mtvec, t0
  la t0, vessel_s_trap
  csrw stvec, t0
  csrw mstatus, zero
  csrw medeleg, zero
  csrw mideleg, zero
  csrw mie, zero
  csrw satp, zero
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  /* no machine timer interrupt pending at the start (the reset value of mtimecmp varies) */
  csrr t0, mhartid
  slli t0, t0, 3
  li t1, CLINT_MTIMECMP
  add t0, t0, t1
  li t1, -1
  sd t1, 0(t0)
  li T_RESUME, 0
  li T_MCONT, 0
  li T_SCONT, 0
  li TESTNUM, 0
  la sp, vessel_stacks
  csrr t0, mhartid
  addi t0, t0, 1
  slli t0, t0, 12
  add sp, sp, t0
  csrr t0, mhartid
  beqz t0, vessel_main
#ifdef VESSEL_SECONDARY_MAIN
  j secondary_main
#else
1:
  wfi
  j 1b
#endif

  .align 2
vessel_m_trap:
  csrr T_CAUSE, mcause
  csrr T_TVAL, mtval
  csrr T_EPC, mepc
  csrr T_PREV, mstatus
  srli T_PREV, T_PREV, 11
  andi T_PREV, T_PREV, 3
  li T_MODE, 3
  beqz T_RESUME, 1f
  csrw mepc, T_RESUME
  li T_RESUME, 0
  mret
1:
  beqz T_MCONT, vessel_unexpected_trap
  mv s4, T_MCONT
  li T_MCONT, 0
  jr s4

  .align 2
vessel_s_trap:
  csrr T_CAUSE, scause
  csrr T_TVAL, stval
  csrr T_EPC, sepc
  csrr T_PREV, sstatus
  srli T_PREV, T_PREV, 8
  andi T_PREV, T_PREV, 1
  li T_MODE, 1
  beqz T_RESUME, 1f
  csrw sepc, T_RESUME
  li T_RESUME, 0
  sret
1:
  beqz T_SCONT, 2f
  mv s4, T_SCONT
  li T_SCONT, 0
  jr s4
2:
  /* Unexpected in S: with every continuation clear, the ecall is unexpected in M too, and the
     M handler reports it (scause/sepc/stval still describe the original trap). */
  li T_MCONT, 0
  ecall

vessel_unexpected_trap:
  li s4, 0xbad
  j vessel_exit_fail
vessel_fail:
  li s4, 0xf00
vessel_exit_fail:
  li T_RESUME, 0
  li T_MCONT, 0
  li T_SCONT, 0
  bnez TESTNUM, 1f
  li TESTNUM, 0xfffe
1:
  slli s3, TESTNUM, 16
  li s2, 0x3333
  or s3, s3, s2
  li s2, TEST_DEVICE
  sw s3, 0(s2)
2:
  j 2b

vessel_pass:
  li s2, TEST_DEVICE
  li s3, 0x5555
  sw s3, 0(s2)
3:
  j 3b

vessel_main:
.endm

/* Ends the test code: all cases passed. */
.macro TEST_PASS
  j vessel_pass
.endm

/* Starts the data part; the per-hart stacks live in .bss. */
.macro TEST_DATA
  .bss
  .align 12
vessel_stacks:
  .skip 4096 * 4
  .data
.endm

/*
 * From M-mode, runs the code at `label` in privilege `mode` (MPP_S or MPP_U) with interrupts
 * as mstatus.MPIE says; that code ends with `ecall`, which brings execution back here in M.
 * Fails the current case if anything other than that ecall comes back.
 */
.macro RUN_IN mode, label
  li t0, MSTATUS_MPP
  csrc mstatus, t0
  li t0, \mode
  csrs mstatus, t0
  la t0, \label
  csrw mepc, t0
  la T_MCONT, .Lback\@
  mret
.Lback\@:
  .if \mode == MPP_U
  li x7, CAUSE_ECALL_U
  .else
  li x7, CAUSE_ECALL_S
  .endif
  mv x14, T_CAUSE
  beq x14, x7, .Lok\@
  j vessel_fail
.Lok\@:
.endm

/*
 * Case n: runs `code` in privilege `mode` (MPP_S or MPP_U; the code is where the macro is, so
 * it needs no page tables or an identity-mapped page) and checks the first trap it raised:
 * its cause must be `cause` (-1: no trap at all). Execution resumes after `code`. Afterwards
 * a5 = that trap's cause, a6 = its tval, a7 = the privilege whose handler took it (-1: none),
 * t1 = the privilege it came from, t3 = its epc; other registers hold what `code` left (and
 * s5..s9 describe the closing ecall).
 */
#define TEST_IN_MODE(n, mode, cause, ...) \
  li TESTNUM, n; RUN_IN mode, 8870f; j 8871f; \
  8870: li T_CAUSE, -1; li T_TVAL, 0; li T_MODE, -1; li T_PREV, -1; li T_EPC, 0; la T_RESUME, 8872f; __VA_ARGS__; \
  8872: li T_RESUME, 0; mv a5, T_CAUSE; mv a6, T_TVAL; mv a7, T_MODE; mv t1, T_PREV; mv t3, T_EPC; ecall; \
  8871: CHECK_EQ(a5, cause)

#endif
