/**
 * The board's time base: a counter ticking at 10 MHz (the `timebase-frequency` in the
 * device tree), derived from the host's monotonic clock. `mtime`, `time`/`rdtime` and the
 * Sstc comparators all read it.
 *
 * The count is a plain JS number: at 10 MHz it stays an exact integer (< 2^53) for
 * about 28 years of guest time, and a number is far cheaper to read than a BigInt.
 */

/** Ticks per second of the board's timer. */
export const TIMEBASE_FREQUENCY = 10_000_000;

const TICKS_PER_MS = TIMEBASE_FREQUENCY / 1000;

/** Host monotonic time in milliseconds (fractional). */
export type HostClock = () => number;

/**
 * The same monotonic time on every thread: performance.now() counts from each thread's own
 * origin, so it is taken from the process's origin (performance.timeOrigin) instead.
 */
const TIME_ORIGIN = performance.timeOrigin;
const hostMonotonicMs: HostClock = () => TIME_ORIGIN + performance.now();

/** Float64 fields of the shared state: the tick count at `ORIGIN`, the host time counted from, and the frozen count (NaN while running). */
const BASE = 0, ORIGIN = 1, FROZEN = 2;

/**
 * The count lives in a SharedArrayBuffer so that harts on other threads read the same clock
 * (VirtualClock.attach); only the thread that made it changes it (pause, resume, set), under a
 * sequence count that readers retry on.
 */
export class VirtualClock {
  /** The state: BASE, ORIGIN and FROZEN as float64s, then the sequence count (int32, odd while changing). */
  readonly shared: SharedArrayBuffer;
  private readonly fields: Float64Array;
  private readonly seq: Int32Array;

  /** `host` is injectable so tests can drive time by hand. */
  constructor(private readonly host: HostClock = hostMonotonicMs, shared?: SharedArrayBuffer) {
    this.shared = shared ?? new SharedArrayBuffer(32);
    this.fields = new Float64Array(this.shared, 0, 3);
    this.seq = new Int32Array(this.shared, 24, 1);
    if (!shared) {
      this.fields[BASE] = 0;
      this.fields[ORIGIN] = host();
      this.fields[FROZEN] = NaN;
    }
  }

  /** A reader of a clock made on another thread (its `shared`), for harts on worker threads. */
  static attach(shared: SharedArrayBuffer): VirtualClock {
    return new VirtualClock(hostMonotonicMs, shared);
  }

  /** Current tick count. Never decreases except through `set()`. */
  now(): number {
    for (;;) {
      const seq = Atomics.load(this.seq, 0);
      if ((seq & 1) !== 0) continue;
      const frozen = this.fields[FROZEN];
      const ticks = frozen === frozen ? frozen : this.fields[BASE] + Math.floor((this.host() - this.fields[ORIGIN]) * TICKS_PER_MS);
      if (Atomics.load(this.seq, 0) === seq) return ticks;
    }
  }

  get paused(): boolean {
    return !Number.isNaN(this.fields[FROZEN]);
  }

  /** Stops the count; host time passing while paused is not seen by the guest. */
  pause(): void {
    if (!this.paused) this.write(this.fields[BASE], this.fields[ORIGIN], this.now());
  }

  /** Continues counting from where `pause()` stopped. */
  resume(): void {
    if (!this.paused) return;
    this.write(this.fields[FROZEN], this.host(), NaN);
  }

  /** Makes the count read `ticks` now (guest writes to mtime, snapshot restore). */
  set(ticks: number): void {
    if (this.paused) this.write(this.fields[BASE], this.fields[ORIGIN], ticks);
    else this.write(ticks, this.host(), NaN);
  }

  /**
   * Host milliseconds until the count reaches `ticks` (0 if already reached, Infinity
   * while paused): how long an idle machine may sleep before a timer deadline.
   */
  msUntil(ticks: number): number {
    if (this.paused) return Infinity;
    return Math.max(0, (ticks - this.now()) / TICKS_PER_MS);
  }

  private write(base: number, origin: number, frozen: number): void {
    Atomics.add(this.seq, 0, 1);
    this.fields[BASE] = base;
    this.fields[ORIGIN] = origin;
    this.fields[FROZEN] = frozen;
    Atomics.add(this.seq, 0, 1);
  }
}
