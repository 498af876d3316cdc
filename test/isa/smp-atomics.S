// Four harts (on four host threads with a thread per hart) hammer shared counters at once:
// AMOADD.W and AMOADD.D, LR/SC loops of both widths, and a spin lock (AMOSWAP.W.AQ to take it,
// FENCE RW,W and a plain store to release it) around a plain load-add-store. Every total must be
// exact: a lost update means an atomic was not atomic across threads, or the lock let two in.
// vessel-test: cpus=4
#define VESSEL_SECONDARY_MAIN
#include "vessel_test.h"

#define HARTS       4
#define N           20000
#define SPIN_LIMIT  200000000
#define OFF_READY   0
#define OFF_GO      8
#define OFF_DONE    16
#define OFF_LOCK    64
#define OFF_AMO_W   128
#define OFF_AMO_D   192
#define OFF_LRSC_W  256
#define OFF_LRSC_D  320
#define OFF_LOCKED  384

/* Spins until the 64-bit word at off(s0) is at least `n` (read with an AMO); fails after SPIN_LIMIT. */
#define WAIT_AT_LEAST(off, n) \
  addi a2, s0, off; li a3, SPIN_LIMIT; li a5, n; 8879: amoor.d a1, zero, (a2); bge a1, a5, 8878f; .insn i 0x0f, 0, x0, x0, 0x010; addi a3, a3, -1; bnez a3, 8879b; j vessel_fail; 8878:

  TEST_CODE_BEGIN
  la s0, shared
  li TESTNUM, 1
  WAIT_AT_LEAST(OFF_READY, HARTS - 1)
  li a1, 1
  addi a2, s0, OFF_GO
  amoswap.d.aqrl zero, a1, (a2)
  li TESTNUM, 2
  call hammer
  li TESTNUM, 3
  WAIT_AT_LEAST(OFF_DONE, HARTS)
  TEST_CASE(4, a0, HARTS * N, lw a0, OFF_AMO_W(s0))
  TEST_CASE(5, a0, HARTS * N, ld a0, OFF_AMO_D(s0))
  TEST_CASE(6, a0, HARTS * N, lw a0, OFF_LRSC_W(s0))
  TEST_CASE(7, a0, HARTS * N, ld a0, OFF_LRSC_D(s0))
  TEST_CASE(8, a0, HARTS * N, ld a0, OFF_LOCKED(s0))
  TEST_CASE(9, a0, 0, lw a0, OFF_LOCK(s0))
  TEST_PASS

// N rounds of: one increment of every counter.
hammer:
  li a4, N
  li a6, 1
1:
  addi a2, s0, OFF_AMO_W
  amoadd.w zero, a6, (a2)
  addi a2, s0, OFF_AMO_D
  amoadd.d zero, a6, (a2)
  addi a2, s0, OFF_LRSC_W
2:
  lr.w a0, (a2)
  addiw a0, a0, 1
  sc.w a1, a0, (a2)
  bnez a1, 2b
  addi a2, s0, OFF_LRSC_D
3:
  lr.d.aq a0, (a2)
  addi a0, a0, 1
  sc.d.rl a1, a0, (a2)
  bnez a1, 3b
  addi a2, s0, OFF_LOCK
4:
  amoswap.w.aq a0, a6, (a2)
  beqz a0, 5f
  .insn i 0x0f, 0, x0, x0, 0x010   /* pause (Zihintpause) */
  j 4b
5:
  ld a0, OFF_LOCKED(s0)
  addi a0, a0, 1
  sd a0, OFF_LOCKED(s0)
  fence rw, w
  sw zero, OFF_LOCK(s0)
  addi a4, a4, -1
  bnez a4, 1b
  addi a2, s0, OFF_DONE
  amoadd.d.aqrl zero, a6, (a2)
  ret

secondary_main:
  la s0, shared
  csrr a0, mhartid
  li a1, HARTS
  bgeu a0, a1, park
  li TESTNUM, 100
  li a1, 1
  addi a2, s0, OFF_READY
  amoadd.d.aqrl zero, a1, (a2)
  li TESTNUM, 101
  WAIT_AT_LEAST(OFF_GO, 1)
  li TESTNUM, 102
  call hammer
park:
  wfi
  j park

  TEST_DATA
  .align 8
shared:
  .skip 512
