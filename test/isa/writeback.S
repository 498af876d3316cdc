// Registers that compiled code keeps in locals (src/cpu/jit/translate.ts writes them back to
// the hart's state only when a block leaves or calls the interpreter): every way out of a block
// must leave each register as the interpreter would, and paths that meet inside a block must
// agree on where a register's value is. Each case runs a routine often enough to be compiled;
// each routine is on a page of its own, so that it is a block of its own (a block follows a
// call on its page into the callee) that does not know the values the caller set.
#include "vessel_test.h"

  TEST_CODE_BEGIN
  .option norvc

  // 1: a loop whose block writes registers it never reads (t3, t4) after its way out: the
  //    values of the iteration before the last must be there after the loop (their writes
  //    happened in earlier trips round the compiled loop), and when the loop leaves in its
  //    first iteration, the old values.
  li TESTNUM, 1
  li a0, 0
  li a1, 5000
  li t3, 0
  li t4, 0
  call wb_loop
  CHECK_EQ(a0, 15000)
  CHECK_EQ(t3, 77)
  CHECK_EQ(t4, 2)
  CHECK_EQ(a1, 0)
  li a1, 1
  li t3, 11
  li t4, 12
  call wb_loop
  CHECK_EQ(a0, 15003)
  CHECK_EQ(t3, 11)
  CHECK_EQ(t4, 12)

  // 2: a load that faults after the block wrote other registers: the trap must see those
  //    writes, and the load's rd (not read earlier in the block) must keep its old value.
  li TESTNUM, 2
  li s0, 300
  li a5, 0
1:
  li t6, 0x55
  li T_CAUSE, -1
  la T_RESUME, 2f
  call wb_fault
2:
  CHECK_EQ(T_CAUSE, CAUSE_LOAD_ACCESS)
  CHECK_EQ(t6, 0x55)
  CHECK_EQ(a6, 9)
  addi s0, s0, -1
  bnez s0, 1b
  CHECK_EQ(a5, 300)

  // 3: two branches that skip to the same instruction with a write of t0 between them: each
  //    of the three paths must reach the join with its own t0 (old, 5 or 6).
  li TESTNUM, 3
  li s0, 300
  li s1, 0
3:
  li t0, 1
  li a0, 0
  li a1, 0
  call wb_join                // a0 = 0: the first branch skips, t0 stays 1
  add s1, s1, t1
  li t0, 1
  li a0, 1
  li a1, 0
  call wb_join                // the second branch skips, after t0 = 5
  add s1, s1, t1
  li t0, 1
  li a0, 1
  li a1, 1
  call wb_join                // no skip: t0 = 6
  add s1, s1, t1
  addi s0, s0, -1
  bnez s0, 3b
  li t2, 300 * (1 + 5 + 6)
  CHECK_REG(s1, t2)

  // 4: a loop with an instruction the interpreter runs (a CSR read) between register writes:
  //    the values written before it must reach the CSR write after it.
  li TESTNUM, 4
  li a0, 0
  li a1, 1000
  call wb_csr_loop
  CHECK_EQ(a0, 2000)
  csrr t0, mscratch
  CHECK_EQ(t0, 2000)

  TEST_PASS

  .balign 4096
  // a1 times: a0 += 3; then, unless a1 reached 0, t3 = 77 and t4 = 2 * a1.
wb_loop:
  addi a0, a0, 3
  addi a1, a1, -1
  beqz a1, 1f
  li t3, 77
  slli t4, a1, 1
  j wb_loop
1:
  ret

  .balign 4096
  // a5 += 1, a6 = 9, then a load from no memory into t6.
wb_fault:
  addi a5, a5, 1
  li a6, 9
  li a7, UNMAPPED_PA
  ld t6, 0(a7)
  ret

  .balign 4096
  // t1 = t0 (a0 = 0), else 5 (a1 = 0), else 6.
wb_join:
  beqz a0, 1f
  li t0, 5
  beqz a1, 1f
  li t0, 6
1:
  add t1, t0, zero
  ret

  .balign 4096
  // a1 times: a0 += 2, then mscratch = a0 through a CSR read of it in between.
wb_csr_loop:
  addi a0, a0, 2
  csrr t0, mscratch
  csrw mscratch, a0
  addi a1, a1, -1
  bnez a1, wb_csr_loop
  ret

  TEST_DATA
