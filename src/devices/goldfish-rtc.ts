/**
 * Goldfish RTC ("google,goldfish-rtc"): a 64-bit nanosecond wall clock plus one alarm.
 * Reading TIME_LOW latches the high word, so TIME_LOW then TIME_HIGH is one consistent
 * 64-bit read (the order Linux uses). Writing TIME_HIGH/TIME_LOW moves the guest's clock
 * by an offset from the host's. Writing ALARM_LOW arms the alarm for ALARM_HIGH:ALARM_LOW;
 * when it expires, ALARM_STATUS drops to 0 and the interrupt is pending, raised on the
 * line while IRQ_ENABLED is 1, until CLEAR_INTERRUPT.
 *
 * Only aligned 32-bit accesses are honoured, as on QEMU.
 */
import type { AccessWidth, IrqLine, MmioDevice } from './mmio.js';
import { savedBool, savedObject, SnapshotStateError } from '../hw/snapshot-state.js';

export enum RtcReg {
  TimeLow = 0x00,
  TimeHigh = 0x04,
  AlarmLow = 0x08,
  AlarmHigh = 0x0c,
  IrqEnabled = 0x10,
  ClearAlarm = 0x14,
  AlarmStatus = 0x18,
  ClearInterrupt = 0x1c,
}

/** Host wall-clock time in nanoseconds since the Unix epoch. */
export type WallClock = () => bigint;

/** Date.now() anchored once, then advanced by the monotonic clock for ns resolution. */
function hostWallClock(): WallClock {
  const anchor = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  return () => anchor + process.hrtime.bigint();
}

/** setTimeout's limit; longer alarms are re-armed in steps. */
const MAX_TIMER_MS = 0x7fff_ffff;

const MASK_32 = 0xffff_ffffn;

/** What GoldfishRtc.save() returns; the 64-bit nanosecond values as decimal strings. */
export interface RtcState { offsetNs: string; alarmNs: string; alarmArmed: boolean; irqEnabled: boolean; irqPending: boolean; irqLevel: boolean }

export class GoldfishRtc implements MmioDevice {
  readonly name = 'rtc';
  readonly size = 0x1000;

  /** Guest time minus host time, changed by guest writes to TIME_*. */
  private offsetNs = 0n;
  private latchedHigh = 0;
  private alarmNs = 0n;
  private alarmTimer: NodeJS.Timeout | null = null;
  private irqEnabled = false;
  private irqPending = false;
  private irqLevel = false;

  constructor(
    private readonly irq: IrqLine,
    private readonly hostNow: WallClock = hostWallClock(),
  ) {}

  /**
   * The guest's offset from host wall-clock time, the alarm and the interrupt state, for a
   * snapshot. Like a real RTC, guest wall time keeps following the host's across a restore.
   */
  save(): RtcState {
    return { offsetNs: this.offsetNs.toString(), alarmNs: this.alarmNs.toString(), alarmArmed: this.alarmTimer !== null, irqEnabled: this.irqEnabled, irqPending: this.irqPending, irqLevel: this.irqLevel };
  }

  restore(saved: unknown): void {
    const s = savedObject('rtc', saved);
    const big = (k: string): bigint => {
      const v = s[k];
      if (typeof v !== 'string' || !/^-?\d{1,20}$/.test(v)) throw new SnapshotStateError(`rtc.${k}: ${String(v)} is not an integer`);
      return BigInt(v);
    };
    this.offsetNs = big('offsetNs');
    this.alarmNs = big('alarmNs');
    this.irqEnabled = savedBool('rtc.irqEnabled', s.irqEnabled);
    this.irqPending = savedBool('rtc.irqPending', s.irqPending);
    this.irqLevel = savedBool('rtc.irqLevel', s.irqLevel);
    this.cancelAlarm();
    if (savedBool('rtc.alarmArmed', s.alarmArmed)) this.armAlarm();
  }

  read(offset: number, width: AccessWidth): number {
    if (width !== 4) return 0;
    switch (offset) {
      case RtcReg.TimeLow: {
        const now = this.now();
        this.latchedHigh = Number(now >> 32n);
        return Number(now & MASK_32);
      }
      case RtcReg.TimeHigh:
        return this.latchedHigh;
      case RtcReg.AlarmLow:
        return Number(this.alarmNs & MASK_32);
      case RtcReg.AlarmHigh:
        return Number((this.alarmNs >> 32n) & MASK_32);
      case RtcReg.IrqEnabled:
        return this.irqEnabled ? 1 : 0;
      case RtcReg.AlarmStatus:
        return this.alarmTimer !== null ? 1 : 0;
      default:
        return 0;
    }
  }

  write(offset: number, width: AccessWidth, value: number): void {
    if (width !== 4) return;
    const word = BigInt(value >>> 0);
    switch (offset) {
      case RtcReg.TimeLow:
        this.setTime((this.now() & ~MASK_32) | word);
        break;
      case RtcReg.TimeHigh:
        this.setTime((this.now() & MASK_32) | (word << 32n));
        break;
      case RtcReg.AlarmLow:
        this.alarmNs = (this.alarmNs & ~MASK_32) | word;
        this.armAlarm();
        break;
      case RtcReg.AlarmHigh:
        this.alarmNs = (this.alarmNs & MASK_32) | (word << 32n);
        break;
      case RtcReg.IrqEnabled:
        this.irqEnabled = (value & 1) !== 0;
        this.updateIrq();
        break;
      case RtcReg.ClearAlarm:
        this.cancelAlarm();
        break;
      case RtcReg.ClearInterrupt:
        this.irqPending = false;
        this.updateIrq();
        break;
    }
  }

  /** Guest time in nanoseconds. */
  private now(): bigint {
    return this.hostNow() + this.offsetNs;
  }

  private setTime(ns: bigint): void {
    this.offsetNs = ns - this.hostNow();
    // The alarm is in guest time, so its distance from now changed.
    if (this.alarmTimer !== null) this.armAlarm();
  }

  private armAlarm(): void {
    this.cancelAlarm();
    const remainingNs = this.alarmNs - this.now();
    if (remainingNs <= 0n) {
      this.fireAlarm();
      return;
    }
    const ms = Number((remainingNs + 999_999n) / 1_000_000n);
    // The timer must not keep the host process alive on its own.
    this.alarmTimer = setTimeout(() => {
      this.alarmTimer = null;
      this.armAlarm();
    }, Math.min(ms, MAX_TIMER_MS)).unref();
  }

  private cancelAlarm(): void {
    if (this.alarmTimer !== null) clearTimeout(this.alarmTimer);
    this.alarmTimer = null;
  }

  private fireAlarm(): void {
    this.irqPending = true;
    this.updateIrq();
  }

  private updateIrq(): void {
    const level = this.irqPending && this.irqEnabled;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq.set(level);
    }
  }
}
