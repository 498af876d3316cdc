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

const hostMonotonicMs: HostClock = () => performance.now();

export class VirtualClock {
  /** Tick count at the moment `originMs` was sampled. */
  private baseTicks = 0;
  /** Host time (ms) from which ticks are counted. */
  private originMs: number;
  /** The frozen tick count while paused; null while running. */
  private frozen: number | null = null;

  /** `host` is injectable so tests can drive time by hand. */
  constructor(private readonly host: HostClock = hostMonotonicMs) {
    this.originMs = host();
  }

  /** Current tick count. Never decreases except through `set()`. */
  now(): number {
    if (this.frozen !== null) return this.frozen;
    return this.baseTicks + Math.floor((this.host() - this.originMs) * TICKS_PER_MS);
  }

  get paused(): boolean {
    return this.frozen !== null;
  }

  /** Stops the count; host time passing while paused is not seen by the guest. */
  pause(): void {
    if (this.frozen === null) this.frozen = this.now();
  }

  /** Continues counting from where `pause()` stopped. */
  resume(): void {
    if (this.frozen === null) return;
    this.rebase(this.frozen);
    this.frozen = null;
  }

  /** Makes the count read `ticks` now (guest writes to mtime, snapshot restore). */
  set(ticks: number): void {
    if (this.frozen !== null) this.frozen = ticks;
    else this.rebase(ticks);
  }

  /**
   * Host milliseconds until the count reaches `ticks` (0 if already reached, Infinity
   * while paused): how long an idle machine may sleep before a timer deadline.
   */
  msUntil(ticks: number): number {
    if (this.frozen !== null) return Infinity;
    return Math.max(0, (ticks - this.now()) / TICKS_PER_MS);
  }

  private rebase(ticks: number): void {
    this.baseTicks = ticks;
    this.originMs = this.host();
  }
}
