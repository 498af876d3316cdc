/**
 * Which host threads hold translations of which RAM pages, shared by every thread of a VM that
 * runs harts (each with a JIT of its own) and by the thread that runs the devices.
 *
 * A JIT keeps its translations coherent with stores (jit.ts): a page it translated is marked
 * here, no write TLB entry of any hart maps a marked page, so every CPU store to it takes the
 * slow path, which tells the page's owners. With harts on several threads, three messages cross
 * threads, all through this shared memory:
 * - **written**: a store (or DMA) reached a page another thread translated: that thread's bit
 *   for the page is set in its dirty bitmap; it drops the page's translations when it next
 *   drains (between run slices, at FENCE.I, at a remote fence, and before it installs a module),
 *   so stale code runs at most until the guest's own fence protocol says it must not;
 * - **announce**: a thread marked pages it did not own before, so other harts may still hold
 *   write TLB entries for them: it bumps the epoch, and it reads the pages' code only once
 *   every other thread acknowledged that epoch (dropped such entries) or is quiescent (all its
 *   harts asleep or stopped: they acknowledge before running again). A store that slipped
 *   through a stale entry therefore happened before the read, and any later one is seen.
 * - **content versions**: a page's version changes whenever it is written while some thread
 *   holds translations of it, and whenever its last owner lets go (then stores are no longer
 *   seen). A module compiled for one thread is offered to the others (jit.ts `adopt`) with the
 *   versions its pages had when its code was read; a thread that makes itself an owner of the
 *   pages and then finds the same versions knows that the pages stayed watched, settled and
 *   unwritten in between, so the module's code is the memory's.
 *
 * Owners are one bit per thread (thread index & 31) in a uint32 per page; threads that share a
 * bit both get the written message, which costs them a needless drop at most.
 */

/**
 * Control words: [0] the epoch; then per thread, on a cache line of its own (THREAD_WORDS):
 * dirty count, acknowledged epoch, quiescent.
 */
const EPOCH = 0;
const THREAD_WORDS = 16;
const DIRTY_COUNT = 0, ACKED = 1, QUIESCENT = 2;

export interface CodeMapShared {
  readonly owners: SharedArrayBuffer;
  readonly versions: SharedArrayBuffer;
  readonly dirty: SharedArrayBuffer;
  readonly control: SharedArrayBuffer;
  readonly threads: number;
}

export class CodeMap {
  /** Per RAM page, the bits of the threads that hold translations of it (nonzero: code). */
  readonly owners: Uint32Array;
  /** Per RAM page, its content version (see the file comment). */
  private readonly versions: Int32Array;
  readonly threads: number;
  private readonly dirty: Int32Array;
  private readonly control: Int32Array;
  private readonly words: number;
  private readonly seenDirty: Int32Array;

  constructor(readonly shared: CodeMapShared) {
    this.threads = shared.threads;
    this.owners = new Uint32Array(shared.owners);
    this.versions = new Int32Array(shared.versions);
    this.dirty = new Int32Array(shared.dirty);
    this.control = new Int32Array(shared.control);
    this.words = this.dirty.length / this.threads;
    this.seenDirty = new Int32Array(this.threads);
  }

  /** A map for `threads` threads over RAM of `ramPages` 4 KiB pages. */
  static create(ramPages: number, threads: number): CodeMap {
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be at least 1, got ${threads}`);
    const words = Math.ceil(ramPages / 32);
    return new CodeMap({
      owners: new SharedArrayBuffer(ramPages * 4),
      versions: new SharedArrayBuffer(ramPages * 4),
      dirty: new SharedArrayBuffer(words * threads * 4),
      control: new SharedArrayBuffer((THREAD_WORDS + threads * THREAD_WORDS) * 4),
      threads,
    });
  }

  private static bit(thread: number): number { return 1 << (thread & 31); }

  private word(thread: number, field: number): number { return (1 + thread) * THREAD_WORDS + field; }

  /** Marks `page` as translated by `thread`; true when the thread did not hold it before. */
  own(thread: number, page: number): boolean {
    const bit = CodeMap.bit(thread);
    return (Atomics.or(this.owners, page, bit) & bit) === 0;
  }

  disown(thread: number, page: number): void {
    const bit = CodeMap.bit(thread);
    for (;;) {
      const owners = Atomics.load(this.owners, page);
      if ((owners & bit) === 0) return;
      // The version moves before the last owner goes, so a thread that owns the page from
      // then on and reads the version sees the page was unwatched.
      if ((owners & ~bit) === 0) Atomics.add(this.versions, page, 1);
      if (Atomics.compareExchange(this.owners, page, owners, owners & ~bit) === owners) return;
    }
  }

  /** The content version of `page` (see the file comment). */
  version(page: number): number {
    return Atomics.load(this.versions, page);
  }

  owns(thread: number, page: number): boolean {
    return (this.owners[page] & CodeMap.bit(thread)) !== 0;
  }

  /** `page` was written (by a hart of thread `writer`, or by a device when -1): tells its other owners. */
  written(page: number, writer: number): void {
    const owners = Atomics.load(this.owners, page);
    if (owners === 0) return;
    Atomics.add(this.versions, page, 1);
    for (let t = 0; t < this.threads; t++) {
      if (t === writer || (owners & CodeMap.bit(t)) === 0) continue;
      Atomics.or(this.dirty, t * this.words + (page >>> 5), 1 << (page & 31));
      Atomics.add(this.control, this.word(t, DIRTY_COUNT), 1);
    }
  }

  /** Calls `drop` for every page written since the last call, as told to `thread`. */
  drain(thread: number, drop: (page: number) => void): void {
    const count = Atomics.load(this.control, this.word(thread, DIRTY_COUNT));
    if (count === this.seenDirty[thread]) return;
    this.seenDirty[thread] = count;
    const first = thread * this.words;
    for (let w = 0; w < this.words; w++) {
      if (this.dirty[first + w] === 0) continue;
      let bits = Atomics.exchange(this.dirty, first + w, 0);
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits);
        bits &= ~(1 << b);
        drop(w * 32 + b);
      }
    }
  }

  /** `thread` marked pages it did not own: returns the epoch every other thread must acknowledge. */
  announce(): number {
    return Atomics.add(this.control, EPOCH, 1) + 1;
  }

  /** The epoch to acknowledge, when it changed since `thread` last did; else -1. */
  pendingEpoch(thread: number): number {
    const epoch = Atomics.load(this.control, EPOCH);
    return epoch === Atomics.load(this.control, this.word(thread, ACKED)) ? -1 : epoch;
  }

  /** `thread`'s harts hold no write TLB entry for a page marked before `epoch`. */
  acknowledge(thread: number, epoch: number): void {
    Atomics.store(this.control, this.word(thread, ACKED), epoch);
  }

  /**
   * Whether `thread`'s harts run no instruction until they acknowledge (all asleep or stopped).
   * Set before sleeping; cleared on waking, before acknowledging and running.
   */
  setQuiescent(thread: number, quiescent: boolean): void {
    Atomics.store(this.control, this.word(thread, QUIESCENT), quiescent ? 1 : 0);
  }

  /** Whether every thread but `thread` acknowledged `epoch` or is quiescent. */
  settled(thread: number, epoch: number): boolean {
    for (let t = 0; t < this.threads; t++) {
      if (t === thread) continue;
      if (Atomics.load(this.control, this.word(t, QUIESCENT)) === 1) continue;
      if (Atomics.load(this.control, this.word(t, ACKED)) - epoch < 0) return false;
    }
    return true;
  }
}
