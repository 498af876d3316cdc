// A store to code whose translation is still on the JIT's compile worker: run with a low
// threshold, batches of one and the worker (test/jit-worker.test.ts), the loop's blocks are sent
// to be compiled after 16 entries, and at iteration 20, long before a module can come back, the
// loop patches its own body. The modules built from the old bytes must not be used: the
// patched `addi a0, a0, 3` counts from then on. (Under other settings it is plain SMC.)
#include "vessel_test.h"

  TEST_CODE_BEGIN
  .option norvc

  li TESTNUM, 1
  li a0, 0
  li s1, 0
  li s2, 20                  // the iteration that patches
  li s3, 3000000             // iterations in all (the worker thread takes a while to start)
  la t0, inflight_patch
  li t1, 0x00350513          // addi a0, a0, 3
1:
  addi s1, s1, 1
  bne s1, s2, inflight_patch
  sw t1, 0(t0)
  fence.i
inflight_patch:
  addi a0, a0, 1
  blt s1, s3, 1b
  CHECK_EQ(a0, 19 + (3000000 - 19) * 3)

  TEST_PASS

  TEST_DATA
