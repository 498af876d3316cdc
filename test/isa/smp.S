// Two harts: both start at _start; hart 1 waits for hart 0 through an AMO-read flag, then both
// increment one counter with LR/SC loops and another with AMOADD, and the totals must be
// exact. Then hart 0 wakes hart 1 from WFI with a CLINT software interrupt (msip[1]).
// vessel-test: cpus=2
#define VESSEL_SECONDARY_MAIN
#include "vessel_test.h"

#define N           20000
#define SPIN_LIMIT  50000000
#define OFF_GO      0
#define OFF_READY   4
#define OFF_DONE    8
#define OFF_IPI     12
#define OFF_ID      16
#define OFF_LRSC    64      /* its own reservation granule, away from the flags */
#define OFF_AMO     128

/* Spins until the 32-bit word at off(s0) is non-zero (read with an AMO); fails after SPIN_LIMIT. */
#define WAIT_FLAG(off) \
  addi a2, s0, off; li a3, SPIN_LIMIT; 8879: amoor.w a1, zero, (a2); bnez a1, 8878f; addi a3, a3, -1; bnez a3, 8879b; j vessel_fail; 8878:

  TEST_CODE_BEGIN
  la s0, shared
  TEST_CASE(1, a0, 0, csrr a0, mhartid)
  sd zero, OFF_LRSC(s0)
  sd zero, OFF_AMO(s0)
  // release hart 1, wait until it is running
  li TESTNUM, 2
  li a1, 1
  addi a2, s0, OFF_GO
  amoswap.w.aqrl zero, a1, (a2)
  WAIT_FLAG(OFF_READY)
  // both harts now increment the counters
  li TESTNUM, 3
  call increment
  // wait for hart 1 to finish, then check the totals
  li TESTNUM, 4
  WAIT_FLAG(OFF_DONE)
  TEST_CASE(5, a0, 2 * N, ld a0, OFF_LRSC(s0))
  TEST_CASE(6, a0, 2 * N, ld a0, OFF_AMO(s0))
  TEST_CASE(7, a0, 1, ld a0, OFF_ID(s0))
  // hart 1 is now in WFI with MSIE set and MIE clear: wake it with msip[1]
  li TESTNUM, 8
  li a1, CLINT_MSIP
  li a2, 1
  sw a2, 4(a1)
  WAIT_FLAG(OFF_IPI)
  TEST_CASE(9, a0, 0, li a1, CLINT_MSIP; lw a0, 4(a1))       // hart 1 cleared its msip
  TEST_CASE(10, a0, 0, csrr a0, mip; andi a0, a0, MIP_MSIP)   // hart 0 never had one
  TEST_PASS

// N LR/SC increments of OFF_LRSC and N AMO increments of OFF_AMO (either hart).
increment:
  addi a2, s0, OFF_LRSC
  li a4, N
1:
  lr.d a0, (a2)
  addi a0, a0, 1
  sc.d a1, a0, (a2)
  bnez a1, 1b
  addi a4, a4, -1
  bnez a4, 1b
  addi a2, s0, OFF_AMO
  li a4, N
  li a1, 1
2:
  amoadd.d zero, a1, (a2)
  addi a4, a4, -1
  bnez a4, 2b
  ret

secondary_main:
  li TESTNUM, 100          // failures on hart 1 report 100+
  la s0, shared
  csrr a0, mhartid
  li a1, 1
  bne a0, a1, park         // only hart 1 takes part
  sd a0, OFF_ID(s0)
  li TESTNUM, 101
  WAIT_FLAG(OFF_GO)
  li a1, 1
  addi a2, s0, OFF_READY
  amoswap.w.aqrl zero, a1, (a2)
  li TESTNUM, 102
  call increment
  li a1, 1
  addi a2, s0, OFF_DONE
  amoadd.w.aqrl zero, a1, (a2)
  // wait for the IPI in WFI (MIE = 0: no trap, WFI just returns)
  li TESTNUM, 103
  li a1, MIP_MSIP
  csrw mie, a1
  li a4, SPIN_LIMIT
1:
  wfi
  csrr a0, mip
  andi a0, a0, MIP_MSIP
  bnez a0, 2f
  addi a4, a4, -1
  bnez a4, 1b
  j vessel_fail
2:
  li a1, CLINT_MSIP
  sw zero, 4(a1)
  csrw mie, zero
  li a1, 1
  addi a2, s0, OFF_IPI
  amoswap.w.aqrl zero, a1, (a2)
park:
  wfi
  j park

  TEST_DATA
  .align 8
shared:
  .skip 256
