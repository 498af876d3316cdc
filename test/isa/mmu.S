// MMU: Sv39 and Sv48 page tables built here in M-mode, then S- and U-mode accesses through
// them: 4 KiB pages, 2 MiB and 1 GiB superpages (and misaligned ones), R/W/X permission
// faults with the right cause and tval (taken in M, then delegated to S), U pages from S with
// and without SUM, MXR, hardware A/D updates, SFENCE.VMA after changing a PTE, non-canonical
// addresses, fetches across a page boundary, MPRV, and satp writes with unsupported modes.
//
// Layout: RAM 0x80000000..0x801fffff is identity-mapped with 4 KiB pages (RWX for S, except
// .utext = U+RX and .udata = U+RW); VA 0..1 GiB is a gigapage onto physical 0 (devices, S
// only); the test mappings are at VA 0x40000000 (see build_tables).
#include "vessel_test.h"

#define T(i)        (0x40000000 + (i) * 0x1000)   /* test page i */
#define MEGA        0x40200000                    /* 2 MiB page onto PA 0x80200000 */
#define MEGA_BAD    0x40400000                    /* 2 MiB page with a misaligned PPN */
#define L0_NONLEAF  0x40600000                    /* a level-0 PTE that points further */
#define GIGA        0xc0000000                    /* 1 GiB page onto PA 0x80000000 */
#define GIGA_BAD    0x100000000                   /* 1 GiB page with a misaligned PPN */
#define GIGA_HIGH   0xffffffffc0000000            /* top gigabyte (Sv39 root[511]) onto 0x80000000 */
#define RWXAD       (PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D)
#define RWAD        (PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
#define VALUE(i)    (0x7e570000 + (i))           /* the dword at offset 8 of test page i */

/* r = base + (sym - 0x80000000): the address of sym through an alias of RAM at base. */
#define ALIAS(r, sym, base) la r, sym; li t5, 0x80000000; sub r, r, t5; li t5, base; add r, r, t5

/* Like TEST_IN_MODE, for U-mode: the code is placed in .utext (U pages). */
#define TEST_IN_U(n, cause, ...) \
  li TESTNUM, n; RUN_IN MPP_U, 8870f; j 8871f; \
  .pushsection .utext, "ax"; \
  8870: li T_CAUSE, -1; li T_TVAL, 0; li T_MODE, -1; li T_PREV, -1; li T_EPC, 0; la T_RESUME, 8872f; __VA_ARGS__; \
  8872: li T_RESUME, 0; mv a5, T_CAUSE; mv a6, T_TVAL; mv a7, T_MODE; mv t1, T_PREV; mv t3, T_EPC; ecall; \
  .popsection; \
  8871: CHECK_EQ(a5, cause)

/* table[index] = PTE for the physical address in register `pa` with `flags`. */
.macro PTE table, index, pa, flags
  la t0, \table
  li t1, (\index) * 8
  add t0, t0, t1
  srli t1, \pa, 12
  slli t1, t1, 10
  li t2, \flags
  or t1, t1, t2
  sd t1, 0(t0)
.endm

/* Loads the PTE of test page i into a0. */
#define TEST_PTE(i) la a0, l0_test; ld a0, (i) * 8(a0)

  TEST_CODE_BEGIN
  call build_tables

  // ================= Sv39 =================
  la a0, root39
  srli a0, a0, 12
  li a1, SATP_SV39
  or s1, a0, a1
  csrw satp, s1
  sfence.vma
  TEST_CASE(1, a0, 0, csrr a0, satp; sub a0, a0, s1)

  // ---- identity pages and data ----
  TEST_IN_MODE(2, MPP_S, -1, la a1, tdata; ld a0, 0(a1))
  CHECK_EQ(a0, 0x1122334455667788)
  TEST_IN_MODE(3, MPP_S, -1, la a1, tdata; li a2, 0x99; sd a2, 8(a1))
  TEST_CASE(4, a0, 0x99, la a1, tdata; ld a0, 8(a1))

  // ---- hardware A/D ----
  TEST_CASE(5, a0, 0, TEST_PTE(0); andi a0, a0, PTE_A | PTE_D)
  TEST_IN_MODE(6, MPP_S, -1, li a1, T(0); ld a0, 8(a1))
  CHECK_EQ(a0, VALUE(0))
  TEST_CASE(7, a0, PTE_A, TEST_PTE(0); andi a0, a0, PTE_A | PTE_D)
  TEST_IN_MODE(8, MPP_S, -1, li a1, T(0); li a2, 0x55; sd a2, 16(a1))
  TEST_CASE(9, a0, PTE_A | PTE_D, TEST_PTE(0); andi a0, a0, PTE_A | PTE_D)
  TEST_CASE(10, a0, 0x55, la a1, tpages; ld a0, 16(a1))
  // a store to a page whose A is set but D is not sets D
  TEST_CASE(11, a0, PTE_A, TEST_PTE(15); andi a0, a0, PTE_A | PTE_D)
  TEST_IN_MODE(12, MPP_S, -1, li a1, T(15); ld a0, 8(a1); sw a0, 0(a1))
  TEST_CASE(13, a0, PTE_A | PTE_D, TEST_PTE(15); andi a0, a0, PTE_A | PTE_D)

  // ---- permissions, faults taken in M ----
  TEST_IN_MODE(14, MPP_S, -1, li a1, T(1); ld a0, 8(a1))                   // read-only page: read
  CHECK_EQ(a0, VALUE(1))
  TEST_IN_MODE(15, MPP_S, CAUSE_STORE_PAGE, li a1, T(1); sd a0, 8(a1))     // ... write
  CHECK_EQ(a6, T(1) + 8)
  CHECK_EQ(a7, 3)
  CHECK_EQ(t1, 1)
  TEST_CASE(16, a0, VALUE(1), la a1, tpages + 4096; ld a0, 8(a1))          // not written
  TEST_IN_MODE(17, MPP_S, CAUSE_STORE_PAGE, li a1, T(1); li a2, 1; amoadd.d a0, a2, (a1))   // AMOs need W
  TEST_IN_MODE(18, MPP_S, CAUSE_LOAD_PAGE, li a1, T(2); ld a0, 8(a1))      // execute-only page: read
  CHECK_EQ(a6, T(2) + 8)
  TEST_IN_MODE(19, MPP_S, CAUSE_LOAD_PAGE, li a1, T(2); lr.d a0, (a1))
  TEST_IN_MODE(20, MPP_S, CAUSE_LOAD_PAGE, li a1, T(4) + 0x123; lbu a0, 0(a1))   // invalid PTE
  CHECK_EQ(a6, T(4) + 0x123)
  TEST_IN_MODE(21, MPP_S, CAUSE_STORE_PAGE, li a1, T(4); sw a0, 4(a1))
  CHECK_EQ(a6, T(4) + 4)
  TEST_IN_MODE(22, MPP_S, CAUSE_LOAD_PAGE, li a1, T(7); ld a0, 0(a1))      // W without R: reserved
  TEST_IN_MODE(23, MPP_S, CAUSE_STORE_PAGE, li a1, T(7); sd a0, 0(a1))
  TEST_IN_MODE(24, MPP_S, CAUSE_LOAD_PAGE, li a1, T(15) + 0x1000; ld a0, 0(a1))  // PBMT bits set (page 16)
  // ---- execute permission ----
  TEST_IN_MODE(25, MPP_S, -1, li a0, 0; li a1, T(5); jalr a1)              // X page: runs, returns 42
  CHECK_EQ(a0, 42)
  TEST_IN_MODE(26, MPP_S, CAUSE_FETCH_PAGE, li a1, T(6) + 0x10; jalr a1)   // same code, page without X
  CHECK_EQ(a6, T(6) + 0x10)
  CHECK_EQ(t3, T(6) + 0x10)
  TEST_IN_MODE(27, MPP_S, CAUSE_FETCH_PAGE, li a1, T(4); jalr a1)          // invalid page
  CHECK_EQ(a6, T(4))
  TEST_IN_MODE(28, MPP_S, CAUSE_FETCH_PAGE, li a1, T(10); jalr a1)         // U page from S
  TEST_IN_MODE(29, MPP_S, CAUSE_FETCH_PAGE, li a1, MSTATUS_SUM; csrs sstatus, a1; li a1, T(10); jalr a1)  // even with SUM
  li a1, MSTATUS_SUM
  csrc mstatus, a1
  // a 32-bit instruction across two executable pages; one whose second half is unmapped
  TEST_IN_MODE(30, MPP_S, -1, li a0, 0; li a1, T(13) + 0xffe; jalr a1)
  CHECK_EQ(a0, 7)
  TEST_IN_MODE(31, MPP_S, CAUSE_FETCH_PAGE, li a1, T(11) + 0xffe; jalr a1)
  CHECK_EQ(t3, T(11) + 0xffe)
  CHECK_EQ(a6, T(12))

  // ---- SUM and MXR ----
  TEST_IN_MODE(32, MPP_S, CAUSE_LOAD_PAGE, li a1, T(3); ld a0, 8(a1))      // U page from S, SUM = 0
  TEST_IN_MODE(33, MPP_S, CAUSE_STORE_PAGE, li a1, T(3); sd a0, 8(a1))
  TEST_IN_MODE(34, MPP_S, -1, li a1, MSTATUS_SUM; csrs sstatus, a1; li a1, T(3); ld a0, 8(a1); sd a0, 16(a1))
  CHECK_EQ(a0, VALUE(3))
  // clearing SUM takes effect at once (no SFENCE.VMA)
  TEST_IN_MODE(35, MPP_S, CAUSE_LOAD_PAGE, li a1, T(3); ld a0, 8(a1); li a1, MSTATUS_SUM; csrc sstatus, a1; li a1, T(3); ld a0, 8(a1))
  li a1, MSTATUS_SUM
  csrc mstatus, a1
  TEST_IN_MODE(36, MPP_S, -1, li a1, MSTATUS_MXR; csrs sstatus, a1; li a1, T(2); ld a0, 8(a1))   // MXR: X pages readable
  CHECK_EQ(a0, VALUE(2))
  TEST_IN_MODE(37, MPP_S, CAUSE_STORE_PAGE, li a1, T(2); sd a0, 8(a1))     // (MXR is still set) but not writable
  TEST_IN_MODE(38, MPP_S, CAUSE_LOAD_PAGE, li a1, T(2); ld a0, 8(a1); li a1, MSTATUS_MXR; csrc sstatus, a1; li a1, T(2); ld a0, 8(a1))
  li a1, MSTATUS_MXR
  csrc mstatus, a1

  // ---- superpages ----
  li a1, 0x80201238
  li a2, 0x6d656761
  sd a2, 0(a1)
  TEST_IN_MODE(39, MPP_S, -1, li a1, MEGA + 0x1238; ld a0, 0(a1); li a2, 0xabc; li a3, MEGA + 0x1238 + 0x12340; sd a2, 0(a3))
  CHECK_EQ(a0, 0x6d656761)
  TEST_CASE(40, a0, 0xabc, li a1, 0x80201238 + 0x12340; ld a0, 0(a1))
  TEST_IN_MODE(41, MPP_S, CAUSE_LOAD_PAGE, li a1, MEGA_BAD + 8; ld a0, 0(a1))   // misaligned megapage
  CHECK_EQ(a6, MEGA_BAD + 8)
  TEST_IN_MODE(42, MPP_S, CAUSE_STORE_PAGE, li a1, MEGA_BAD; sd a0, 0(a1))
  TEST_IN_MODE(43, MPP_S, CAUSE_LOAD_PAGE, li a1, L0_NONLEAF; ld a0, 0(a1))    // no leaf at level 0
  TEST_IN_MODE(44, MPP_S, -1, ALIAS(a1, tdata, GIGA); ld a0, 0(a1))            // gigapage
  CHECK_EQ(a0, 0x1122334455667788)
  TEST_IN_MODE(45, MPP_S, CAUSE_LOAD_PAGE, li a1, GIGA_BAD; ld a0, 0(a1))      // misaligned gigapage
  TEST_IN_MODE(46, MPP_S, -1, ALIAS(a1, tdata, GIGA_HIGH); ld a0, 0(a1))       // canonical, top of the space
  CHECK_EQ(a0, 0x1122334455667788)

  // ---- non-canonical and unmapped addresses ----
  TEST_IN_MODE(47, MPP_S, CAUSE_LOAD_PAGE, ALIAS(a1, tdata, 0x7fffffffc0000000); ld a0, 0(a1))
  ALIAS(a2, tdata, 0x7fffffffc0000000)
  CHECK_REG(a6, a2)
  TEST_IN_MODE(48, MPP_S, CAUSE_STORE_PAGE, ALIAS(a1, tdata, 0x7fffffffc0000000); sd a0, 0(a1))
  TEST_IN_MODE(49, MPP_S, CAUSE_FETCH_PAGE, ALIAS(a1, xcode, 0x7fffffffc0000000); jalr a1)
  TEST_IN_MODE(50, MPP_S, CAUSE_LOAD_PAGE, li a1, 0x0000004000000000; ld a0, 0(a1))   // bit 38 set, 63..39 clear
  CHECK_EQ(a6, 0x0000004000000000)
  TEST_IN_MODE(51, MPP_S, CAUSE_LOAD_PAGE, ALIAS(a1, tdata, 0x0000008000000000); ld a0, 0(a1))   // valid only in Sv48
  TEST_IN_MODE(52, MPP_S, CAUSE_LOAD_PAGE, li a1, 0x0000001000000000; ld a0, 0(a1))   // canonical, unmapped
  TEST_IN_MODE(53, MPP_S, CAUSE_LOAD_PAGE, li a1, 0xffffffff80000000 - 8; ld a0, 0(a1))
  // an access across a page boundary whose second page faults: page fault, memory untouched
  TEST_IN_MODE(54, MPP_S, CAUSE_STORE_PAGE, li a1, T(1) - 4; li a2, -1; sd a2, 0(a1))   // page 0 RW, page 1 read-only
  TEST_CASE(55, a0, 0, la a1, tpages + 4092; lwu a0, 0(a1))
  TEST_IN_MODE(56, MPP_S, CAUSE_LOAD_PAGE, li a1, T(5) - 2; lw a0, 0(a1))    // page 4 is invalid, page 5 is X-only
  TEST_IN_MODE(57, MPP_S, -1, li a1, T(1) - 4; ld a0, 0(a1))                  // pages 0 and 1 are readable
  CHECK_EQ(a0, 0)

  // ---- SFENCE.VMA after changing a PTE ----
  TEST_IN_MODE(58, MPP_S, -1, li a1, T(8); ld a0, 8(a1))
  CHECK_EQ(a0, VALUE(8))
  TEST_IN_MODE(59, MPP_S, -1, la a1, tpages + 9 * 4096; srli a1, a1, 12; slli a1, a1, 10; ori a1, a1, RWAD; \
    la a2, l0_test; sd a1, 8 * 8(a2); sfence.vma; li a1, T(8); ld a0, 8(a1))
  CHECK_EQ(a0, VALUE(9))
  TEST_IN_MODE(60, MPP_S, -1, la a1, tpages + 8 * 4096; srli a1, a1, 12; slli a1, a1, 10; ori a1, a1, RWAD; \
    la a2, l0_test; sd a1, 8 * 8(a2); li a1, T(8); sfence.vma a1, zero; ld a0, 8(a1))
  CHECK_EQ(a0, VALUE(8))
  // taking away W: after SFENCE.VMA the store faults
  TEST_IN_MODE(61, MPP_S, CAUSE_STORE_PAGE, li a1, T(9); sd zero, 0(a1); la a2, l0_test; ld a3, 9 * 8(a2); andi a3, a3, ~PTE_W; \
    sd a3, 9 * 8(a2); sfence.vma; sd zero, 0(a1))
  // invalidating a page
  TEST_IN_MODE(62, MPP_S, CAUSE_LOAD_PAGE, li a1, T(9); ld a0, 0(a1); la a2, l0_test; sd zero, 9 * 8(a2); sfence.vma zero, zero; ld a0, 0(a1))

  // remapping a code page: after SFENCE.VMA the fetch sees the new page
  TEST_IN_MODE(107, MPP_S, -1, li a0, 0; li a1, T(5); jalr a1)
  CHECK_EQ(a0, 42)
  TEST_IN_MODE(108, MPP_S, -1, la a1, xcode2; srli a1, a1, 12; slli a1, a1, 10; ori a1, a1, PTE_V | PTE_R | PTE_X | PTE_A; \
    la a2, l0_test; sd a1, 5 * 8(a2); sfence.vma; li a0, 0; li a1, T(5); jalr a1)
  CHECK_EQ(a0, 43)
  la a2, xcode
  PTE l0_test, 5, a2, PTE_V | PTE_R | PTE_X | PTE_A
  sfence.vma
  // the same, from one computed-jump site run often enough to be compiled (and to remember
  // where it went): after the remap and SFENCE.VMA it must reach the new page
  TEST_IN_MODE(109, MPP_S, -1, li a1, 300; call call_t5)
  CHECK_EQ(a0, 42)
  TEST_IN_MODE(110, MPP_S, -1, la a1, xcode2; srli a1, a1, 12; slli a1, a1, 10; ori a1, a1, PTE_V | PTE_R | PTE_X | PTE_A; \
    la a2, l0_test; sd a1, 5 * 8(a2); sfence.vma; li a1, 300; call call_t5)
  CHECK_EQ(a0, 43)
  la a2, xcode
  PTE l0_test, 5, a2, PTE_V | PTE_R | PTE_X | PTE_A
  sfence.vma

  // remapping a megapage: SFENCE.VMA with any address inside it drops all of it, also the
  // 4 KiB piece just read through another address
  li a1, 0x80205000
  li a2, 0x6f6c64
  sd a2, 0(a1)                                         // at MEGA + 0x5000 now
  li a1, 0x80405000
  li a2, 0x6e6577
  sd a2, 0(a1)                                         // there once MEGA maps PA 0x80400000
  TEST_IN_MODE(111, MPP_S, -1, li a1, MEGA + 0x5000; ld a0, 0(a1); li a1, 0x80400000; srli a1, a1, 12; slli a1, a1, 10; \
    ori a1, a1, RWAD; la a2, l1_test; sd a1, 8(a2); li a1, MEGA; sfence.vma a1, zero; li a1, MEGA + 0x5000; ld a3, 0(a1))
  CHECK_EQ(a0, 0x6f6c64)
  CHECK_EQ(a3, 0x6e6577)
  li a2, 0x80200000
  PTE l1_test, 1, a2, RWAD
  sfence.vma

  // ---- satp: unsupported modes are ignored ----
  TEST_CASE(63, a0, 0, li a1, 0x5000000000000000; or a1, a1, s1; csrw satp, a1; csrr a0, satp; sub a0, a0, s1)
  TEST_CASE(64, a0, 0, li a1, 0xf000000000000000; csrw satp, a1; csrr a0, satp; sub a0, a0, s1)
  TEST_CASE(65, a0, 0, li a1, 0x1000000000000000; csrw satp, a1; csrr a0, satp; sub a0, a0, s1)
  TEST_IN_MODE(66, MPP_S, -1, li a1, T(1); ld a0, 8(a1))       // translation unchanged
  CHECK_EQ(a0, VALUE(1))

  // ---- MPRV: M-mode loads and stores with the privilege in MPP ----
  li a1, MPP_S | MSTATUS_MPRV
  csrs mstatus, a1
  TEST_CASE(67, a0, VALUE(1), li a1, T(1); ld a0, 8(a1))
  TEST_TRAP(68, CAUSE_STORE_PAGE, li a1, T(1); sd a0, 8(a1))
  li a1, MSTATUS_MPRV
  csrc mstatus, a1           // (the handler's MRET left MPP = U)
  CHECK_EQ(T_TVAL, T(1) + 8)
  CHECK_EQ(T_PREV, 3)
  li a1, MPP_U | MSTATUS_MPRV | MSTATUS_MXR
  li a2, MSTATUS_MPP
  csrc mstatus, a2
  csrs mstatus, a1
  TEST_CASE(69, a0, VALUE(3), li a1, T(3); ld a0, 8(a1))
  TEST_TRAP(70, CAUSE_LOAD_PAGE, li a1, T(1); ld a0, 8(a1))
  li a1, MSTATUS_MPRV | MSTATUS_MXR
  csrc mstatus, a1
  li a1, MPP_S | MSTATUS_MPRV | MSTATUS_MXR
  csrs mstatus, a1
  TEST_CASE(71, a0, VALUE(2), li a1, T(2); ld a0, 8(a1))      // MXR applies to MPRV accesses
  li a1, MSTATUS_MPRV | MSTATUS_MXR | MSTATUS_MPP
  csrc mstatus, a1

  // ---- U-mode ----
  TEST_IN_U(72, -1, la a1, udata; ld a0, 0(a1); li a2, 0x77; sd a2, 8(a1); li a1, T(3); ld a3, 8(a1))
  CHECK_EQ(a0, 0x0123456789abcdef)
  CHECK_EQ(a3, VALUE(3))
  TEST_CASE(73, a0, 0x77, la a1, udata; ld a0, 8(a1))
  TEST_IN_U(74, CAUSE_LOAD_PAGE, la a1, tdata; ld a0, 0(a1))          // S page
  TEST_IN_U(75, CAUSE_STORE_PAGE, la a1, tdata; sd a0, 0(a1))
  TEST_IN_U(76, CAUSE_FETCH_PAGE, la a1, xcode; jalr a1)               // S code
  la a1, xcode
  CHECK_REG(a6, a1)
  TEST_IN_U(77, CAUSE_STORE_PAGE, la a1, 8870b; sw zero, 0(a1))       // U code is not writable
  TEST_IN_U(78, -1, li a0, 0; li a1, T(10); jalr a1)                   // U+X alias of xcode
  CHECK_EQ(a0, 42)
  TEST_IN_U(79, CAUSE_LOAD_PAGE, li a1, T(2); ld a0, 8(a1))            // S X-only page
  TEST_IN_U(80, CAUSE_LOAD_PAGE, li a1, GIGA; ld a0, 0(a1))
  CHECK_EQ(t1, 0)

  // ---- the same faults delegated to S: scause/stval/sepc ----
  li a1, (1 << CAUSE_FETCH_PAGE) | (1 << CAUSE_LOAD_PAGE) | (1 << CAUSE_STORE_PAGE)
  csrw medeleg, a1
  TEST_IN_MODE(81, MPP_S, CAUSE_STORE_PAGE, li a1, T(1) + 0x10; 1: sd a0, 0(a1))
  CHECK_EQ(a7, 1)
  CHECK_EQ(a6, T(1) + 0x10)
  la a1, 1b
  CHECK_REG(t3, a1)
  TEST_CASE(82, a0, CAUSE_STORE_PAGE, csrr a0, scause)
  TEST_CASE(83, a0, T(1) + 0x10, csrr a0, stval)
  TEST_IN_MODE(84, MPP_S, CAUSE_LOAD_PAGE, li a1, T(4) + 0x7f8; ld a0, 0(a1))
  CHECK_EQ(a7, 1)
  CHECK_EQ(a6, T(4) + 0x7f8)
  TEST_IN_MODE(85, MPP_S, CAUSE_FETCH_PAGE, li a1, T(6) + 0x20; jalr a1)
  CHECK_EQ(a7, 1)
  CHECK_EQ(a6, T(6) + 0x20)
  CHECK_EQ(t3, T(6) + 0x20)
  TEST_IN_U(86, CAUSE_LOAD_PAGE, la a1, tdata; ld a0, 0(a1))
  CHECK_EQ(a7, 1)
  CHECK_EQ(t1, 0)
  TEST_IN_U(87, CAUSE_FETCH_PAGE, la a1, xcode + 4; jalr a1)
  CHECK_EQ(a7, 1)
  la a1, xcode + 4
  CHECK_REG(a6, a1)
  csrw medeleg, zero

  // ================= Sv48 =================
  la a0, root48
  srli a0, a0, 12
  li a1, SATP_SV48
  or s1, a0, a1
  csrw satp, s1
  sfence.vma
  TEST_CASE(88, a0, 0, csrr a0, satp; sub a0, a0, s1)
  TEST_IN_MODE(89, MPP_S, -1, la a1, tdata; ld a0, 0(a1))              // identity, one level deeper
  CHECK_EQ(a0, 0x1122334455667788)
  TEST_IN_MODE(90, MPP_S, -1, ALIAS(a1, tdata, 0x0000008000000000); ld a0, 0(a1))   // above 2^39
  CHECK_EQ(a0, 0x1122334455667788)
  TEST_IN_MODE(91, MPP_S, -1, ALIAS(a1, tdata, GIGA); ld a0, 0(a1))
  CHECK_EQ(a0, 0x1122334455667788)
  TEST_IN_MODE(92, MPP_S, -1, li a1, MEGA + 0x1238; ld a0, 0(a1))
  CHECK_EQ(a0, 0x6d656761)
  TEST_IN_MODE(93, MPP_S, CAUSE_STORE_PAGE, li a1, T(1); sd a0, 8(a1))
  CHECK_EQ(a6, T(1) + 8)
  TEST_IN_MODE(94, MPP_S, CAUSE_LOAD_PAGE, li a1, T(2); ld a0, 8(a1))
  TEST_IN_MODE(95, MPP_S, CAUSE_FETCH_PAGE, li a1, T(6); jalr a1)
  TEST_IN_MODE(96, MPP_S, -1, li a0, 0; li a1, T(5); jalr a1)
  CHECK_EQ(a0, 42)
  TEST_IN_MODE(97, MPP_S, CAUSE_LOAD_PAGE, li a1, 0x0000010000000000; ld a0, 0(a1))   // misaligned 512 GiB page
  TEST_IN_MODE(98, MPP_S, CAUSE_LOAD_PAGE, ALIAS(a1, tdata, 0x0001000080000000); ld a0, 0(a1))  // bit 48 set
  TEST_IN_MODE(99, MPP_S, CAUSE_LOAD_PAGE, li a1, 0x0000800000000000; ld a0, 0(a1))   // bit 47 set, 63..48 clear
  CHECK_EQ(a6, 0x0000800000000000)
  TEST_IN_MODE(100, MPP_S, CAUSE_LOAD_PAGE, li a1, 0xffff800000000000; ld a0, 0(a1))  // canonical, unmapped
  TEST_IN_MODE(101, MPP_S, CAUSE_LOAD_PAGE, ALIAS(a1, tdata, GIGA_HIGH); ld a0, 0(a1))  // mapped only in Sv39
  TEST_IN_U(102, -1, li a1, T(3); ld a0, 8(a1))
  CHECK_EQ(a0, VALUE(3))
  TEST_IN_U(103, CAUSE_LOAD_PAGE, la a1, tdata; ld a0, 0(a1))
  TEST_CASE(104, a0, 0, li a1, 0xa000000000000000; or a1, a1, s1; csrw satp, a1; csrr a0, satp; sub a0, a0, s1)   // Sv57: not implemented

  // ---- back to Bare ----
  csrw satp, zero
  sfence.vma
  TEST_IN_MODE(105, MPP_S, CAUSE_STORE_ACCESS, li a1, T(1); sd a0, 0(a1))   // untranslated: nothing at 0x40001000 (QEMU: PCIe window)
  TEST_IN_MODE(106, MPP_S, -1, la a1, tdata; ld a0, 0(a1))
  CHECK_EQ(a0, 0x1122334455667788)

  TEST_PASS

// ---------------------------------------------------------------------------
// Page tables (M-mode, untranslated).
build_tables:
  // test pages: the dword at offset 8 of page i is VALUE(i)
  la a0, tpages
  li a1, 0
1:
  li a2, VALUE(0)
  add a2, a2, a1
  sd a2, 8(a0)
  li a2, 4096
  add a0, a0, a2
  addi a1, a1, 1
  li a2, 17
  bne a1, a2, 1b

  // Sv39 root
  li a2, 0
  PTE root39, 0, a2, RWAD                              // VA 0..1 GiB: devices
  la a2, l1_test
  PTE root39, 1, a2, PTE_V
  la a2, l1_ram
  PTE root39, 2, a2, PTE_V
  li a2, 0x80000000
  PTE root39, 3, a2, RWAD                              // GIGA
  li a2, 0x80200000
  PTE root39, 4, a2, RWAD                              // GIGA_BAD: PPN not 1 GiB-aligned
  li a2, 0x80000000
  PTE root39, 511, a2, RWAD                            // GIGA_HIGH

  // RAM 0x80000000..0x801fffff: 512 identity pages
  la a2, l0_ram
  PTE l1_ram, 0, a2, PTE_V
  la a0, l0_ram
  li a2, 0x80000000
  li a4, 512
  la a5, user_text_start
  la a6, user_text_end
  la a7, user_data_start
  la t3, user_data_end
2:
  li t4, RWXAD
  bltu a2, a5, 3f
  bgeu a2, a6, 3f
  li t4, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A | PTE_D
3:
  bltu a2, a7, 4f
  bgeu a2, t3, 4f
  li t4, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D
4:
  srli t1, a2, 12
  slli t1, t1, 10
  or t1, t1, t4
  sd t1, 0(a0)
  addi a0, a0, 8
  li t1, 4096
  add a2, a2, t1
  addi a4, a4, -1
  bnez a4, 2b

  // VA 0x40000000: test pages (l0_test), megapages, a level-0 non-leaf
  la a2, l0_test
  PTE l1_test, 0, a2, PTE_V
  li a2, 0x80200000
  PTE l1_test, 1, a2, RWAD                             // MEGA
  li a2, 0x80201000
  PTE l1_test, 2, a2, RWAD                             // MEGA_BAD
  la a2, l0_bad
  PTE l1_test, 3, a2, PTE_V                            // L0_NONLEAF ...
  la a2, l0_ram
  PTE l0_bad, 0, a2, PTE_V                             // ... whose level-0 PTE is a pointer

  la a2, tpages
  PTE l0_test, 0, a2, PTE_V | PTE_R | PTE_W            // A = D = 0
  la a2, tpages + 1 * 4096
  PTE l0_test, 1, a2, PTE_V | PTE_R | PTE_A | PTE_D    // read-only
  la a2, tpages + 2 * 4096
  PTE l0_test, 2, a2, PTE_V | PTE_X | PTE_A            // execute-only
  la a2, tpages + 3 * 4096
  PTE l0_test, 3, a2, RWAD | PTE_U                     // user
  // 4: invalid
  la a2, xcode
  PTE l0_test, 5, a2, PTE_V | PTE_R | PTE_X | PTE_A    // code
  PTE l0_test, 6, a2, RWAD                             // the same code without X
  la a2, tpages + 7 * 4096
  PTE l0_test, 7, a2, PTE_V | PTE_W | PTE_A | PTE_D    // W without R (reserved)
  la a2, tpages + 8 * 4096
  PTE l0_test, 8, a2, RWAD
  la a2, tpages + 9 * 4096
  PTE l0_test, 9, a2, RWAD
  la a2, xcode
  PTE l0_test, 10, a2, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A   // user code
  la a2, xpage2
  PTE l0_test, 11, a2, PTE_V | PTE_X | PTE_A           // ends with half an instruction
  // 12: invalid
  la a2, xpage3
  PTE l0_test, 13, a2, PTE_V | PTE_X | PTE_A           // an instruction across 13 and 14
  la a2, xpage3 + 4096
  PTE l0_test, 14, a2, PTE_V | PTE_X | PTE_A
  la a2, tpages + 15 * 4096
  PTE l0_test, 15, a2, PTE_V | PTE_R | PTE_W | PTE_A   // D = 0
  la a2, tpages + 16 * 4096
  PTE l0_test, 16, a2, RWAD | (1 << 61)                // Svpbmt bits: reserved here

  // Sv48 root: [0] reuses the Sv39 root as its level-2 table
  la a2, root39
  PTE root48, 0, a2, PTE_V
  la a2, l2_high
  PTE root48, 1, a2, PTE_V                             // VA 2^39..
  li a2, 0x80000000
  PTE root48, 2, a2, RWAD                              // 512 GiB page, misaligned
  li a2, 0x80000000
  PTE l2_high, 0, a2, RWAD
  ret

  // a1 times: jalr to test page 5 (code), from one site.
call_t5:
  mv t6, ra
1:
  li a2, T(5)
  jalr a2
  addi a1, a1, -1
  bnez a1, 1b
  jr t6

// ---------------------------------------------------------------------------
// Code reached through the test mappings.
  .text
  .balign 4096
xcode:
  li a0, 42
  ret
  .balign 4096
xcode2:
  li a0, 43
  ret
  .balign 4096
xpage2:                 // last two bytes: the first half of `li a0, 7`; the next page is unmapped
  .skip 4094
  .half 0x0513
  .balign 4096
xpage3:                 // `li a0, 7; ret` across the boundary between this page and the next
  .skip 4094
  .half 0x0513
  .half 0x0070
  ret
  .balign 4096

  TEST_DATA
  .align 3
tdata:
  .dword 0x1122334455667788
  .dword 0

  .section .udata, "aw"
udata:
  .dword 0x0123456789abcdef
  .dword 0

  .bss
  .align 12
root39:   .skip 4096
root48:   .skip 4096
l1_ram:   .skip 4096
l0_ram:   .skip 4096
l1_test:  .skip 4096
l0_test:  .skip 4096
l0_bad:   .skip 4096
l2_high:  .skip 4096
tpages:   .skip 17 * 4096
