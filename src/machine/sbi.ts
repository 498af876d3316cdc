import type { Hart } from '../cpu/hart.js';

/** SBI extension IDs (SBI spec v2.0, chapter 3 onwards). */
export enum SbiExtension {
  Base = 0x10, Time = 0x54494d45, Ipi = 0x735049, Rfence = 0x52464e43, Hsm = 0x48534d,
  Srst = 0x53525354, Dbcn = 0x4442434e,
}

export enum SbiError {
  Success = 0, Failed = -1, NotSupported = -2, InvalidParam = -3, Denied = -4, InvalidAddress = -5,
  AlreadyAvailable = -6, AlreadyStarted = -7, AlreadyStopped = -8,
}

export enum HartState { Started = 0, Stopped = 1, StartPending = 2, StopPending = 3, Suspended = 4 }

export enum ResetType { Shutdown = 0, ColdReboot = 1, WarmReboot = 2 }

/** What stops the machine when a trap would enter M-mode, which Vessel's firmware does not handle. */
export function unhandledTrapMessage(hart: number, cause: number, interrupt: boolean, pc: bigint): string {
  return `hart ${hart}: ${interrupt ? 'interrupt' : 'exception'} ${cause} reached M-mode at pc 0x${pc.toString(16)}, which Vessel's firmware does not handle`;
}

/** SBI implementation ID: not a registered one; identifies Vessel in `sbi_get_impl_id`. */
const VESSEL_IMPL_ID = 0x5653;
const SPEC_VERSION = (2 << 24) | 0;

/** What the SBI needs from the board. */
export interface SbiPlatform {
  readonly hartCount: number;
  hartState(id: number): HartState;
  /**
   * Starts stopped hart `id`: Success, AlreadyAvailable when it was not stopped (another hart
   * started it first), or Failed when the hart is beyond the VM's allotment of vCPUs.
   */
  startHart(id: number, startAddr: bigint, opaque: bigint): SbiError;
  stopHart(id: number): void;
  /** Raises the supervisor software interrupt (SSIP) of hart `id`. */
  sendIpi(id: number): void;
  /**
   * Flushes the address translations and makes stores to code visible to instruction fetch on
   * the harts `ids` (remote SFENCE.VMA and FENCE.I): done on every one of them when this returns.
   */
  remoteFence(ids: number[]): void;
  systemReset(type: ResetType, reason: number): void;
  consoleWrite(bytes: Uint8Array): void;
  consoleRead(max: number): Uint8Array;
  /** Reads guest physical memory; throws GuestMemoryError when out of range. */
  readPhys(addr: number, len: number): Uint8Array;
  writePhys(addr: number, data: Uint8Array): void;
}

/**
 * The Supervisor Binary Interface served by the host, in place of OpenSBI: the guest kernel's
 * `ecall`s from S-mode arrive here (a7 = extension, a6 = function, a0..a5 = arguments) and
 * return an error in a0 and a value in a1.
 */
export class Sbi {
  constructor(private readonly platform: SbiPlatform) {}

  handle(hart: Hart): boolean {
    const eid = Number(BigInt.asUintN(32, hart.getReg(17)));
    const fid = Number(BigInt.asUintN(32, hart.getReg(16)));
    const a = (i: number): bigint => BigInt.asUintN(64, hart.getReg(10 + i));
    let [error, value] = [SbiError.NotSupported as number, 0n];
    switch (eid) {
      case SbiExtension.Base: [error, value] = this.base(fid, a(0)); break;
      case SbiExtension.Time:
        if (fid === 0) {
          const t = a(0);
          hart.setTimerCompare(Number(BigInt.asIntN(32, t)), Number(BigInt.asIntN(32, t >> 32n)));
          error = SbiError.Success;
        }
        break;
      case SbiExtension.Ipi:
        if (fid === 0) error = this.forHarts(a(0), a(1), (ids) => ids.forEach((id) => this.platform.sendIpi(id)));
        break;
      case SbiExtension.Rfence:
        // Remote fences flush every translation of the targets (and apply stores to code made on
        // other threads, see src/cpu/jit/code-map.ts); complete on every target when this returns.
        if (fid <= 2) error = this.forHarts(a(0), a(1), (ids) => this.platform.remoteFence(ids));
        break;
      case SbiExtension.Hsm: [error, value] = this.hsm(hart, fid, a(0), a(1), a(2)); break;
      case SbiExtension.Srst:
        if (fid === 0) {
          const type = Number(a(0)), reason = Number(a(1));
          if (type > ResetType.WarmReboot) { error = SbiError.InvalidParam; break; }
          this.platform.systemReset(type as ResetType, reason);
          error = SbiError.Success;
        }
        break;
      case SbiExtension.Dbcn: [error, value] = this.debugConsole(fid, a(0), a(1), a(2)); break;
    }
    hart.setReg(10, BigInt(error));
    hart.setReg(11, value);
    return true;
  }

  private base(fid: number, arg: bigint): [number, bigint] {
    switch (fid) {
      case 0: return [SbiError.Success, BigInt(SPEC_VERSION)];
      case 1: return [SbiError.Success, BigInt(VESSEL_IMPL_ID)];
      case 2: return [SbiError.Success, 1n];
      case 3: return [SbiError.Success, Object.values(SbiExtension).includes(Number(arg)) ? 1n : 0n];
      case 4: case 5: case 6: return [SbiError.Success, 0n];
      default: return [SbiError.NotSupported, 0n];
    }
  }

  /** Applies `fn` to the ids of the harts selected by (hart_mask, hart_mask_base); base = -1 means all. */
  private forHarts(mask: bigint, base: bigint, fn: (ids: number[]) => void): SbiError {
    const count = this.platform.hartCount;
    if (base === (1n << 64n) - 1n) { fn([...Array(count).keys()]); return SbiError.Success; }
    const ids: number[] = [];
    for (let bit = 0n; bit < 64n; bit++) {
      if (((mask >> bit) & 1n) === 0n) continue;
      const id = base + bit;
      if (id >= BigInt(count)) return SbiError.InvalidParam;
      ids.push(Number(id));
    }
    fn(ids);
    return SbiError.Success;
  }

  private hsm(hart: Hart, fid: number, a0: bigint, a1: bigint, a2: bigint): [number, bigint] {
    const n = this.platform.hartCount;
    switch (fid) {
      case 0: { // hart_start(hartid, start_addr, opaque)
        if (a0 >= BigInt(n)) return [SbiError.InvalidParam, 0n];
        if (this.platform.hartState(Number(a0)) !== HartState.Stopped) return [SbiError.AlreadyAvailable, 0n];
        return [this.platform.startHart(Number(a0), a1, a2), 0n];
      }
      case 1: this.platform.stopHart(hart.id); return [SbiError.Success, 0n];
      case 2:
        if (a0 >= BigInt(n)) return [SbiError.InvalidParam, 0n];
        return [SbiError.Success, BigInt(this.platform.hartState(Number(a0)))];
      case 3: // hart_suspend: only the retentive default suspend (behaves as WFI)
        if (a0 !== 0n) return [SbiError.NotSupported, 0n];
        hart.waiting = !hart.hasPendingInterrupt();
        return [SbiError.Success, 0n];
      default: return [SbiError.NotSupported, 0n];
    }
  }

  private debugConsole(fid: number, a0: bigint, a1: bigint, a2: bigint): [number, bigint] {
    const addr = (lo: bigint, hi: bigint): number => Number(lo | (hi << 64n));
    try {
      switch (fid) {
        case 0: { // console_write(num_bytes, base_lo, base_hi)
          const len = Number(a0);
          this.platform.consoleWrite(this.platform.readPhys(addr(a1, a2), len).slice());
          return [SbiError.Success, BigInt(len)];
        }
        case 1: { // console_read(num_bytes, base_lo, base_hi)
          const target = addr(a1, a2);
          this.platform.readPhys(target, Number(a0)); // validates the whole buffer first
          const data = this.platform.consoleRead(Number(a0));
          this.platform.writePhys(target, data);
          return [SbiError.Success, BigInt(data.length)];
        }
        case 2: this.platform.consoleWrite(Uint8Array.of(Number(a0 & 0xffn))); return [SbiError.Success, 0n];
        default: return [SbiError.NotSupported, 0n];
      }
    } catch {
      return [SbiError.InvalidParam, 0n];
    }
  }
}
