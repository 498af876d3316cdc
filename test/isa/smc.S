// Self-modifying code: stores to instructions that already ran (often enough to be compiled by
// the JIT) must be seen by later fetches. FENCE.I is what the ISA requires before the modified
// code runs; Vessel also shows a hart's own stores to its next instructions without it (a
// compiled block stops after a store to a page of translated code), which cases 3 and 4 check.
#include "vessel_test.h"

  TEST_CODE_BEGIN
  .option norvc

  // 1: a loop body runs 200 times, then its `addi a0, a0, 1` becomes `addi a0, a0, 3`
  //    (FENCE.I in between); 200 more iterations must add 3 each.
  li TESTNUM, 1
  li a0, 0
  li a1, 200
  call smc_loop
  CHECK_EQ(a0, 200)
  la t0, smc_patch
  li t1, 0x00350513          // addi a0, a0, 3
  sw t1, 0(t0)
  fence.i
  li a1, 200
  call smc_loop
  CHECK_EQ(a0, 800)

  // 2: the same patch undone, through a halfword store of the immediate's bits only.
  li TESTNUM, 2
  li a0, 0
  la t0, smc_patch
  li t1, 0x0015              // upper half of 0x00150513 (addi a0, a0, 1)
  sh t1, 2(t0)
  fence.i
  li a1, 100
  call smc_loop
  CHECK_EQ(a0, 100)

  // 3: a loop that rewrites its own next instruction each iteration without FENCE.I:
  //    iteration i stores `addi a0, a0, i` over `next` and then executes it.
  li TESTNUM, 3
  li a0, 0
  li a2, 1
  la t0, smc_next
4:
  slli t1, a2, 20            // imm field
  li t2, 0x00050513          // addi a0, a0, 0
  or t1, t1, t2
  sw t1, 0(t0)
smc_next:
  addi a0, a0, 0
  addi a2, a2, 1
  li t3, 101
  bne a2, t3, 4b
  CHECK_EQ(a0, 5050)         // 1 + 2 + ... + 100

  // 4: a store that lands on the instruction right after it, in the same straight-line run.
  li TESTNUM, 4
  li a1, 0
  li a2, 100
5:
  la t0, smc_after
  li t1, 0x00100513          // addi a0, zero, 1
  sw t1, 0(t0)
smc_after:
  li a0, 9                   // replaced by `li a0, 1` on every pass after the store
  add a1, a1, a0
  li t1, 0x00900513          // put `li a0, 9` back for the next pass
  sw t1, 0(t0)
  addi a2, a2, -1
  bnez a2, 5b
  CHECK_EQ(a1, 100)

  // 5: code on another page that is compiled and then changed. The call site in smc_far_loop
  //    first runs after smc_far is compiled (warmed up by the loop here), so the JIT calls
  //    smc_far from it directly; after the patch the same call site must reach the new code.
  li TESTNUM, 5
  li a0, 0
  li a1, 50
6:
  call smc_far
  addi a1, a1, -1
  bnez a1, 6b
  CHECK_EQ(a0, 50)
  li a0, 0
  li a1, 50
  call smc_far_loop
  CHECK_EQ(a0, 50)
  la t0, smc_far
  li t1, 0x00350513          // addi a0, a0, 3
  sw t1, 0(t0)
  fence.i
  li a0, 0
  li a1, 50
  call smc_far_loop
  CHECK_EQ(a0, 150)

  // 6: a caller and a callee on another page that get hot together (so the JIT compiles them
  //    into one module, where the call is direct). Patching the callee's page drops the blocks
  //    there but not the caller's, whose direct call must then see that and reach the new code.
  li TESTNUM, 6
  li a0, 0
  li a1, 300
  call smc_near_loop
  CHECK_EQ(a0, 300)
  la t0, smc_far2
  li t1, 0x00350513          // addi a0, a0, 3
  sw t1, 0(t0)
  fence.i
  li a0, 0
  li a1, 300
  call smc_near_loop
  CHECK_EQ(a0, 900)

  TEST_PASS

  // a1 times: jal smc_far2 (a constant target the JIT can call directly)
smc_near_loop:
  mv t6, ra
8:
  jal smc_far2
  addi a1, a1, -1
  bnez a1, 8b
  jr t6

  // a1 times: call smc_far
smc_far_loop:
  mv t6, ra
7:
  call smc_far
  addi a1, a1, -1
  bnez a1, 7b
  jr t6

  // a1 times: a0 += (the immediate at smc_patch)
smc_loop:
smc_patch:
  addi a0, a0, 1
  addi a1, a1, -1
  bnez a1, smc_loop
  ret

  // On a page of its own, so that patching it leaves its callers' translations in place.
  .balign 4096
smc_far:
  addi a0, a0, 1
  ret
  .balign 4096
smc_far2:
  addi a0, a0, 1
  ret
  .balign 4096

  TEST_DATA
