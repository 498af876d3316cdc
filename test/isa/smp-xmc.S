// Cross-modifying code: hart 1 calls `patched` in a loop (hot enough to be compiled on its thread)
// while hart 0 rewrites the function's first instruction, round after round, to return the
// round's number. After each rewrite hart 0 publishes the round (AMOSWAP.RL); hart 1 waits for
// it, executes FENCE.I (the protocol the ISA asks of the hart that runs modified code) and must
// then get the new value, never the old translation's.
// vessel-test: cpus=2
#define VESSEL_SECONDARY_MAIN
#include "vessel_test.h"

#define ROUNDS      40
#define CALLS       3000
#define SPIN_LIMIT  200000000
#define OFF_READY   0
#define OFF_ROUND   8
#define OFF_ACK     16

#define WAIT_AT_LEAST(off, reg) \
  addi a2, s0, off; li a3, SPIN_LIMIT; 8879: amoor.d a1, zero, (a2); bge a1, reg, 8878f; addi a3, a3, -1; bnez a3, 8879b; j vessel_fail; 8878:

  TEST_CODE_BEGIN
  la s0, shared
  li TESTNUM, 1
  li s1, 1
  WAIT_AT_LEAST(OFF_READY, s1)
  li TESTNUM, 2
  la s2, patched
  li s1, 2                      // the round, and the value patched returns from it on
1:
  // addi a0, zero, s1: imm << 20 | rd (a0 = 10) << 7 | OP-IMM
  slli a0, s1, 20
  li a1, (10 << 7) | 0x13
  or a0, a0, a1
  sw a0, 0(s2)
  addi a2, s0, OFF_ROUND
  amoswap.d.rl zero, s1, (a2)
  WAIT_AT_LEAST(OFF_ACK, s1)
  addi s1, s1, 1
  li a0, ROUNDS + 2
  blt s1, a0, 1b
  TEST_PASS

secondary_main:
  la s0, shared
  csrr a0, mhartid
  li a1, 1
  bne a0, a1, park
  li TESTNUM, 100
  li s3, CALLS                  // warm up: patched returns 1
2:
  call patched
  li a1, 1
  bne a0, a1, vessel_fail
  addi s3, s3, -1
  bnez s3, 2b
  li a1, 1
  addi a2, s0, OFF_READY
  amoswap.d.rl zero, a1, (a2)
  li s1, 2
3:
  li TESTNUM, 101
  WAIT_AT_LEAST(OFF_ROUND, s1)
  fence.i
  li TESTNUM, 102
  li s3, CALLS
4:
  call patched
  bne a0, s1, vessel_fail       // a stale translation returns an earlier round's value
  addi s3, s3, -1
  bnez s3, 4b
  addi a2, s0, OFF_ACK
  amoswap.d.rl zero, s1, (a2)
  addi s1, s1, 1
  li a0, ROUNDS + 2
  blt s1, a0, 3b
park:
  wfi
  j park

  .option push
  .option norvc
  .align 12
patched:
  addi a0, zero, 1
  ret
  .option pop

  TEST_DATA
  .align 8
shared:
  .skip 64
