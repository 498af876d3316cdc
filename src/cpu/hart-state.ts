/**
 * Layout of a hart's slot in the wasm memory (see GuestMemory.hartSlot): the state that both the
 * interpreter (through typed-array views) and JIT-compiled code (through plain wasm loads and
 * stores) use, so neither has to copy it to the other. All offsets are bytes from the slot start.
 */
export const enum HartState {
  /** x0..x31, each as (lo, hi) int32 halves: an i64 in little-endian order. */
  Regs = 0,
  /** The pc a compiled block left off at, or of the instruction whose slow path is running (i64). */
  Pc = 256,
  /** Instructions a compiled run had retired before the instruction whose slow path is running (int32). */
  Retired = 264,
  /** Byte offsets (in the wasm memory) of the TLBs for data reads, writes and fetches in the current mode (int32). */
  ReadTlb = 280,
  WriteTlb = 284,
  ExecTlb = 288,
  /** The LR reservation: RAM offset of the reserved address, or -1 (int32). */
  Reservation = 292,
  /** The value the LR read (i64; a word zero-extended): an SC succeeds only while memory holds it. */
  ReservedValue = 296,
  /** mstatus (its low word; compiled FP loads and stores check FS in it). */
  Mstatus = 304,
  /**
   * Changes whenever the fetch translation may have (a TLB flush, a satp write, another fetch
   * TLB set); unique across the harts of this thread, so code that caches where a pc led can
   * check the cached answer still holds (int32, never 0).
   */
  FetchEpoch = 308,
  /** A word the interpreter's FENCE does an atomic add of 0 on: a full host memory barrier (int32). */
  FenceCell = 312,
  /** f0..f31, each an i64 (NaN-boxed singles). */
  FRegs = 512,
  /** First TLB; each takes TLB_BYTES (see mmu.ts). */
  Tlbs = 1024,
  /** After the nine TLBs: the JIT's jump cache for this hart (see JUMP_CACHE_ENTRIES in jit/dispatcher.ts). */
  JumpCache = 1024 + 9 * 98304,
}
