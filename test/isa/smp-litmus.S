// Litmus tests on two harts running at once (a thread each):
// - SB+fences (store buffering): hart 0 stores X then loads Y, hart 1 stores Y then loads X, each
//   with FENCE RW,RW between; both loads reading 0 is forbidden (RVWMO). x86-64 allows it
//   without a fence (its store buffer), so this checks that the fence became a host barrier.
// - SB without fences: both reading 0 is allowed; the count of times it was seen is left at
//   `sb_relaxed_seen` for test/smp.test.ts to report.
// - MP (message passing): hart 1 stores DATA, FENCE W,W, stores FLAG; hart 0 waits for FLAG,
//   FENCE R,R, loads DATA: it must see the data.
// Each iteration starts at a barrier both harts reach, so the racing accesses overlap in time.
// vessel-test: cpus=2
#define VESSEL_SECONDARY_MAIN
#include "vessel_test.h"

#define ITER        4000
#define SPIN_LIMIT  200000000
#define OFF_BAR     0

/* Barrier number `reg` (counting from 1): both harts add 1, then wait for 2 * reg. */
#define BARRIER(reg) \
  addi a2, s0, OFF_BAR; li a1, 1; amoadd.d.aqrl zero, a1, (a2); slli a5, reg, 1; li a3, SPIN_LIMIT; \
  8879: amoor.d a1, zero, (a2); bge a1, a5, 8878f; addi a3, a3, -1; bnez a3, 8879b; j vessel_fail; 8878:

  TEST_CODE_BEGIN
  la s0, shared
  li TESTNUM, 1
  li s1, 1                       // barrier count
  li s2, 0                       // iteration
  la s3, sb_x
  la s4, sb_y
  la s5, sb_r0
  la s6, sbf_x
  la s7, sbf_y
  la s8, sbf_r0
1:
  BARRIER(s1)
  addi s1, s1, 1
  slli t0, s2, 2
  add t1, s3, t0
  add t2, s4, t0
  li a0, 1
  sw a0, 0(t1)                   // SB without a fence
  lw a0, 0(t2)
  add t1, s5, t0
  sw a0, 0(t1)
  BARRIER(s1)
  addi s1, s1, 1
  slli t0, s2, 2
  add t1, s6, t0
  add t2, s7, t0
  li a0, 1
  sw a0, 0(t1)                   // SB with FENCE RW,RW
  fence rw, rw
  lw a0, 0(t2)
  add t1, s8, t0
  sw a0, 0(t1)
  BARRIER(s1)                    // MP: hart 1 publishes; hart 0 reads
  addi s1, s1, 1
  slli t0, s2, 2
  la t1, mp_flag
  add t1, t1, t0
  li a3, SPIN_LIMIT
2:
  lw a0, 0(t1)
  bnez a0, 3f
  addi a3, a3, -1
  bnez a3, 2b
  j vessel_fail
3:
  fence r, r
  la t1, mp_data
  add t1, t1, t0
  li TESTNUM, 2
  lw a0, 0(t1)
  li a1, 1
  bne a0, a1, vessel_fail        // MP: the flag was seen, the data was not
  li TESTNUM, 1
  addi s2, s2, 1
  li a0, ITER
  blt s2, a0, 1b
  BARRIER(s1)                    // hart 1's results are all written
  // count the iterations where both loads read 0
  li s2, 0
  li s9, 0                       // SB relaxed
  li s10, 0                      // SB with fences
4:
  slli t0, s2, 2
  la t1, sb_r0
  add t1, t1, t0
  lw a0, 0(t1)
  la t1, sb_r1
  add t1, t1, t0
  lw a1, 0(t1)
  or a0, a0, a1
  seqz a0, a0
  add s9, s9, a0
  la t1, sbf_r0
  add t1, t1, t0
  lw a0, 0(t1)
  la t1, sbf_r1
  add t1, t1, t0
  lw a1, 0(t1)
  or a0, a0, a1
  seqz a0, a0
  add s10, s10, a0
  addi s2, s2, 1
  li a0, ITER
  blt s2, a0, 4b
  la t1, sb_relaxed_seen
  sd s9, 0(t1)
  la t1, sb_fenced_seen
  sd s10, 0(t1)
  TEST_CASE(3, a0, 0, mv a0, s10)   // SB+fences: never both 0
  TEST_PASS

secondary_main:
  la s0, shared
  csrr a0, mhartid
  li a1, 1
  bne a0, a1, park
  li TESTNUM, 100
  li s1, 1
  li s2, 0
5:
  BARRIER(s1)
  addi s1, s1, 1
  slli t0, s2, 2
  la t1, sb_y
  add t1, t1, t0
  la t2, sb_x
  add t2, t2, t0
  li a0, 1
  sw a0, 0(t1)
  lw a0, 0(t2)
  la t1, sb_r1
  add t1, t1, t0
  sw a0, 0(t1)
  BARRIER(s1)
  addi s1, s1, 1
  slli t0, s2, 2
  la t1, sbf_y
  add t1, t1, t0
  la t2, sbf_x
  add t2, t2, t0
  li a0, 1
  sw a0, 0(t1)
  fence rw, rw
  lw a0, 0(t2)
  la t1, sbf_r1
  add t1, t1, t0
  sw a0, 0(t1)
  BARRIER(s1)
  addi s1, s1, 1
  slli t0, s2, 2
  la t1, mp_data
  add t1, t1, t0
  li a0, 1
  sw a0, 0(t1)
  fence w, w
  la t1, mp_flag
  add t1, t1, t0
  sw a0, 0(t1)
  addi s2, s2, 1
  li a0, ITER
  blt s2, a0, 5b
  BARRIER(s1)
park:
  wfi
  j park

  TEST_DATA
  .align 8
shared:
  .skip 64
  .globl sb_relaxed_seen, sb_fenced_seen
sb_relaxed_seen: .dword 0
sb_fenced_seen: .dword 0
  .bss
  .align 6
sb_x: .skip ITER * 4
  .align 6
sb_y: .skip ITER * 4
sb_r0: .skip ITER * 4
sb_r1: .skip ITER * 4
  .align 6
sbf_x: .skip ITER * 4
  .align 6
sbf_y: .skip ITER * 4
sbf_r0: .skip ITER * 4
sbf_r1: .skip ITER * 4
mp_data: .skip ITER * 4
mp_flag: .skip ITER * 4
