import type { HartBus } from '../hw/bus.js';
import type { GuestMemory } from '../hw/memory.js';
import { expandCached } from './compressed.js';
import {
  ALL_INTERRUPTS, Csr, Exception, Irq, Mstatus, MSTATUS_HI_FIXED, MSTATUS_WRITABLE, Priv, SSTATUS_MASK,
  SUPERVISOR_INTERRUPTS,
} from './csr.js';
import { executeFp, type FpuHart } from './fpu.js';
import * as I64 from './int64.js';
import { branchOffset, fenceOrdersStoreLoad, jalOffset, Opcode, PAUSE } from './opcode.js';
import { HartState } from './hart-state.js';
import type { Jit } from './jit/jit.js';
import { RunExit } from './jit/translate.js';
import { Access, lastLeafLevel, lastLeafUser, SatpMode, Tlb, TLB_BYTES, TLB_MASK, walkPageTable, WalkFault } from './mmu.js';

/** What a hart needs from the board it sits on, besides the bus. */
export interface HartEnvironment {
  /** The board's time counter (CSR `time`), in timebase ticks. */
  now(): number;
  /** Timebase ticks per second of now(). */
  readonly timebaseHz: number;
  /** Harts on other threads share the memory: FENCEs that x86-64 does not keep by itself become host barriers. */
  readonly concurrent?: boolean;
  /**
   * Firmware services: an `ecall` from S-mode is offered here first (Vessel serves SBI itself).
   * Returns true when handled; the hart then continues after the ecall.
   */
  supervisorEcall?(hart: Hart): boolean;
  /** A trap that would enter M-mode while the host plays the firmware: the board decides what to do. */
  machineTrap?(hart: Hart, cause: number, interrupt: boolean): void;
}

/** Thrown (as this one object) to abandon the current instruction after trap entry. */
class TrapSignal { }
const TRAP = new TrapSignal();

/** int32 indexes into a hart's state slot (see hart-state.ts). */
const PC_LO = HartState.Pc >> 2, PC_HI = PC_LO + 1, RETIRED = HartState.Retired >> 2;
const MSTATUS = HartState.Mstatus >> 2, FETCH_EPOCH = HartState.FetchEpoch >> 2;
/** User pages cached under SUM=1 that Hart.sumPages lists one by one. */
const MAX_SUM_PAGES = 64;
/** The last fetch epoch handed out, to any hart of this thread (see HartState.FetchEpoch). */
let lastFetchEpoch = 0;
const FENCE_CELL = HartState.FenceCell >> 2;
/** PAUSEs in a spin that make the hart yield (see Hart.yielding). */
const PAUSES_BEFORE_YIELD = 64;
const RESERVATION = HartState.Reservation >> 2, RESERVED_LO = HartState.ReservedValue >> 2, RESERVED_HI = RESERVED_LO + 1;
const READ_TLB = HartState.ReadTlb >> 2, WRITE_TLB = HartState.WriteTlb >> 2, EXEC_TLB = HartState.ExecTlb >> 2;
/**
 * Instructions the interpreter runs between interrupt checks. Between checks, the pending
 * interrupts change only by the timer (see timerCheckInterval) or by an instruction, which then
 * sets breakLoop (a CSR write, a device access), so compiled code runs up to the timer check.
 */
const CHUNK = 256;
/**
 * A lower bound of the hart's speed, instructions per second (about the interpreter's on cold
 * code; compiled code runs 10x faster): the timer is compared again before this many could have
 * run until its deadline, so a timer interrupt is late by at most MIN_TIMER_CHECK instructions
 * (~1 us) while the hart runs at least this fast.
 */
const SLOWEST_IPS = 30_000_000;
const MIN_TIMER_CHECK = 256;
/** Far from any deadline the timer is still compared this often (~0.2 ms), and host work (run()'s budget) done. */
const MAX_TIMER_CHECK = 65_536;

const MISA_LO = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 8) | (1 << 12) | (1 << 18) | (1 << 20); // ACDFIMSU
const MEDELEG_WRITABLE = 0xb3ff;
/** funct5 values of the A extension (AMOADD 0, SWAP 1, LR 2, SC 3, XOR 4, OR 8, AND 12, MIN..MAXU 16..28). */
const AMO_FUNCT5 = 0x1111111f;
const FS_DIRTY = 3 << Mstatus.FS_SHIFT;
/** Order in which simultaneously pending interrupts are taken (privileged spec 3.1.9). */
const INTERRUPT_PRIORITY = [Irq.MEI, Irq.MSI, Irq.MTI, Irq.SEI, Irq.SSI, Irq.STI];

/**
 * The value an AMO (funct5 `op`) stores, from the old value (olo, ohi) and the operand
 * (blo, bhi), both sign-extended for .W; null for a funct5 that is no AMO.
 */
function amoResult(op: number, olo: number, ohi: number, blo: number, bhi: number): [number, number] | null {
  switch (op) {
    case 0x01: return [blo, bhi]; // SWAP
    case 0x00: { const lo = (olo + blo) | 0; return [lo, (ohi + bhi + ((lo >>> 0) < (olo >>> 0) ? 1 : 0)) | 0]; }
    case 0x04: return [olo ^ blo, ohi ^ bhi];
    case 0x0c: return [olo & blo, ohi & bhi];
    case 0x08: return [olo | blo, ohi | bhi];
    case 0x10: case 0x14: { // MIN, MAX
      const less = ohi < bhi || (ohi === bhi && (olo >>> 0) < (blo >>> 0));
      return (op === 0x10 ? less : !less) ? [olo, ohi] : [blo, bhi];
    }
    case 0x18: case 0x1c: { // MINU, MAXU
      const less = (ohi >>> 0) < (bhi >>> 0) || (ohi === bhi && (olo >>> 0) < (blo >>> 0));
      return (op === 0x18 ? less : !less) ? [olo, ohi] : [blo, bhi];
    }
    default: return null;
  }
}

/**
 * One RV64GC hart: architectural state and the interpreter.
 *
 * Every 64-bit integer register lives as two int32 halves in `x` (low half at 2*i), which
 * keeps V8 on small-integer arithmetic; see int64.ts. The pc is (pcLo, pcHi) and is only
 * advanced when an instruction completes, so a trap always sees the faulting pc.
 */
export class Hart implements FpuHart {
  /** Integer registers: a view into this hart's slot of the wasm memory, shared with compiled code. */
  readonly x: Int32Array;
  /** Floating-point registers as (lo, hi) int32 halves: also a view into the slot. */
  readonly f: Int32Array;
  pcLo = 0;
  pcHi = 0;
  priv: Priv = Priv.Machine;
  fflags = 0;
  frm = 0;

  // CSR state. Wide (64-bit) CSRs keep lo/hi halves.
  /** mstatus's low word, kept in the state slot where compiled FP loads and stores read FS. */
  get mstatus(): number { return this.state[MSTATUS]; }
  set mstatus(v: number) { this.state[MSTATUS] = v; }
  medeleg = 0;
  mideleg = 0;
  mie = 0;
  /** mip bits written by software (SSIP, STIP, SEIP, MSIP through CLINT writes). */
  mipSw = 0;
  /** mip bits driven by hardware wires (MEIP/SEIP from the PLIC, MTIP/MSIP from the CLINT). */
  mipHw = 0;
  mtvecLo = 0; mtvecHi = 0; stvecLo = 0; stvecHi = 0;
  mepcLo = 0; mepcHi = 0; sepcLo = 0; sepcHi = 0;
  mcauseLo = 0; mcauseHi = 0; scauseLo = 0; scauseHi = 0;
  mtvalLo = 0; mtvalHi = 0; stvalLo = 0; stvalHi = 0;
  mscratchLo = 0; mscratchHi = 0; sscratchLo = 0; sscratchHi = 0;
  satpLo = 0; satpHi = 0;
  mcounteren = 0; scounteren = 0; mcountinhibit = 0;
  menvcfgLo = 0; menvcfgHi = 0; senvcfgLo = 0;
  stimecmpLo = -1; stimecmpHi = -1;
  /** stimecmp as a number of ticks, Infinity when beyond 2^53. */
  private stimecmp = Infinity;
  /** Retired instructions (also reported as cycles). */
  instret = 0;
  /** instret at which run() next compares the clock with stimecmp. */
  private nextTimerCheck = 0;
  /** minstret/mcycle as the guest sees them minus `instret`, which stays monotonic for the run loop. */
  private counterOffset = 0;

  /**
   * The LR reservation: RAM offset of the reserved address, or -1 (LR of anything but RAM
   * reserves nothing). It and the value the LR read live in the state slot, where compiled LR/SC
   * use them too. As in QEMU, SC succeeds only while memory still holds that value, so a store of
   * another value to the reserved address by this hart also makes it fail (the spec lets a
   * hart's own stores go either way) without every store checking the reservation.
   */
  get reservation(): number { return this.state[RESERVATION]; }
  set reservation(ramOffset: number) { this.state[RESERVATION] = ramOffset; }
  /** Set by WFI until an interrupt becomes pending. */
  waiting = false;
  /**
   * Set when the guest spun on PAUSE (Zihintpause) PAUSES_BEFORE_YIELD times: run() returns so
   * the hart's thread can give its core to the hart the guest waits for (a lock holder whose
   * thread is not running), or the next hart on this thread gets its turn.
   */
  yielding = false;
  private pauses = 0;
  /** Asks the run loop to return at the next instruction boundary. */
  private breakLoop = false;

  // Translation state, recomputed by updateTranslation().
  private satpMode = SatpMode.Bare;
  private rootPpn = 0;
  private fetchTranslate = false;
  private dataTranslate = false;
  private dataPriv = Priv.Machine;
  /**
   * TLB sets for U, S and untranslated accesses, each holding {read, write, execute}. The
   * interpreter's fast path does not use the third set; compiled code does, so its inline
   * lookup is the same with translation on or off.
   */
  private readonly tlbs: Tlb[][];
  private tlbRead: Tlb;
  private tlbWrite: Tlb;
  private tlbExec: Tlb;
  /**
   * User pages (virtual lo, hi pairs) the data TLBs cached for S-mode accesses while SUM=1
   * (Linux's copy_to_user / copy_from_user): clearing SUM drops just these, so the TLBs (and
   * compiled code's inline lookups) serve user copies and Linux's SUM toggle around every copy
   * costs no full flush. More than MAX_SUM_PAGES: clearing SUM flushes the data TLBs.
   */
  private sumPages: number[] = [];
  /** The RAM page the last fetch came from: (vpnLo, hi) -> offset into RAM. */
  private fetchVpn = -1;
  private fetchHi = 0;
  private fetchBase = 0;

  private readonly mem: GuestMemory;
  private readonly view: DataView;
  private readonly ramBase: number;
  /** ramBase wrapped to int32, for offset arithmetic on 32-bit addresses. */
  private readonly ramBase32: number;
  private readonly ramSize: number;
  /** High half of the last 64-bit load / CSR read. */
  private tmpHi = 0;

  /** This hart's state slot in the wasm memory, as int32s (see hart-state.ts). */
  private readonly state: Int32Array;
  /** Byte offset of that slot in the wasm memory. */
  readonly stateBase: number;
  /** The JIT shared by the board's harts, or null for the interpreter alone. */
  private readonly jit: Jit | null;
  /** RAM pages holding translated code (all zero without a JIT): stores there invalidate it. */
  private readonly codePages: Uint32Array;
  /** RAM as int32s and int64s, for the atomic read-modify-writes of LR/SC and AMOs (other harts may run on other threads). */
  private readonly ram32: Int32Array;
  private readonly ram64: BigInt64Array;
  /** The interpreter returns after a taken branch or jump so the JIT can look up the target. */
  private readonly stopAtJump: boolean;

  constructor(readonly id: number, private readonly bus: HartBus, private readonly env: HartEnvironment, jit?: Jit) {
    const buffer = bus.ram.buffer;
    this.stateBase = bus.ram.hartSlot(id);
    this.state = new Int32Array(buffer, this.stateBase, HartState.Tlbs >> 2);
    this.x = this.state.subarray(0, 64);
    this.x.fill(0);
    this.f = this.state.subarray(HartState.FRegs >> 2, (HartState.FRegs >> 2) + 64);
    this.f.fill(0);
    this.mstatus = 0;
    if (HartState.Tlbs + 9 * TLB_BYTES > HartState.JumpCache) throw new Error('the TLBs overlap the jump cache in the hart slot');
    this.tlbs = [0, 1, 2].map((set) => [0, 1, 2].map((kind) =>
      new Tlb(buffer, this.stateBase + HartState.Tlbs + (set * 3 + kind) * TLB_BYTES)));
    this.jit = jit ?? null;
    this.codePages = jit ? jit.codePages : new Uint32Array(bus.ram.size >>> 12);
    this.ram32 = new Int32Array(buffer, bus.ram.bytes.byteOffset, bus.ram.size >>> 2);
    this.ram64 = new BigInt64Array(buffer, bus.ram.bytes.byteOffset, bus.ram.size >>> 3);
    this.stopAtJump = jit !== undefined;
    jit?.attach(this);
    this.mem = bus.ram;
    this.view = bus.ram.view;
    this.ramBase = bus.ram.base;
    this.ramBase32 = bus.ram.base | 0;
    this.ramSize = bus.ram.size;
    this.tlbRead = this.tlbs[1][Access.Read];
    this.tlbWrite = this.tlbs[1][Access.Write];
    this.tlbExec = this.tlbs[1][Access.Execute];
    this.reservation = -1;
    this.newFetchEpoch();
    this.updateTranslation();
  }

  // ---- register helpers (also used by the SBI and tests) ----

  getReg(r: number): bigint { return I64.toBig(this.x[2 * r], this.x[2 * r + 1]); }
  setReg(r: number, v: bigint): void {
    if (r === 0) return;
    this.x[2 * r] = Number(BigInt.asIntN(32, v));
    this.x[2 * r + 1] = Number(BigInt.asIntN(32, v >> 32n));
  }
  get pc(): bigint { return I64.toBigU(this.pcLo, this.pcHi); }
  set pc(v: bigint) {
    this.pcLo = Number(BigInt.asIntN(32, v));
    this.pcHi = Number(BigInt.asIntN(32, v >> 32n));
  }

  /** Places the hart in S-mode at `entry` the way SBI firmware hands over to a kernel. */
  enterSupervisor(entry: bigint, a0: bigint, a1: bigint): void {
    this.pc = entry;
    this.setReg(10, a0);
    this.setReg(11, a1);
    this.priv = Priv.Supervisor;
    this.satpLo = 0; this.satpHi = 0;
    this.waiting = false;
    this.updateTranslation();
  }

  /** Configures the M-mode state that firmware would leave behind when the host serves SBI. */
  configureHostFirmware(): void {
    // Delegate every exception except ecalls from S/M (those reach the host SBI) to S-mode.
    this.medeleg = MEDELEG_WRITABLE & ~(1 << Exception.EcallFromS);
    this.mideleg = SUPERVISOR_INTERRUPTS;
    this.mcounteren = 7;
    this.menvcfgHi = 0x80000000 | 0; // STCE: Sstc timer enabled for S-mode
    this.mstatus |= (1 << Mstatus.FS_SHIFT); // FS = Initial
  }

  /** Drives a hardware interrupt wire (MEIP, SEIP, MTIP, MSIP). */
  setInterruptLine(irq: Irq, level: boolean): void {
    if (level) this.mipHw |= 1 << irq; else this.mipHw &= ~(1 << irq);
    if (level) { this.waiting = false; this.breakLoop = true; }
  }

  /** Sets a software-writable pending bit (used by SBI IPIs). */
  raiseSoftwareInterrupt(irq: Irq): void {
    this.mipSw |= 1 << irq;
    this.waiting = false;
    this.breakLoop = true;
  }

  /** Writes stimecmp (Sstc, and SBI set_timer). */
  setTimerCompare(lo: number, hi: number): void {
    this.stimecmpLo = lo; this.stimecmpHi = hi;
    this.stimecmp = hi < 0 || hi >= 0x200000 ? Infinity : hi * 4294967296 + (lo >>> 0);
    this.updateTimer();
    this.nextTimerCheck = this.instret;
  }

  /** The one private register a snapshot needs (see hart-snapshot.ts): minstret/mcycle minus instret. */
  get counterBias(): number { return this.counterOffset; }

  /**
   * After a snapshot's registers were written into the public fields: restores the counter
   * bias, recomputes what derives from the CSRs (stimecmp, translation mode and TLB choice) and
   * drops every cached translation.
   */
  afterRestore(counterBias: number): void {
    this.counterOffset = counterBias;
    this.nextTimerCheck = this.instret;
    this.breakLoop = false;
    this.flushTlb();
    this.setTimerCompare(this.stimecmpLo, this.stimecmpHi);
    this.updateTranslation();
  }

  /** Ticks at which this hart's timer fires next (Infinity when none), for the board's sleep. */
  get timerDeadline(): number { return this.stimecmp; }

  /** Sets or clears the comparator's STIP for the time `now` (ticks). */
  private updateTimer(now = this.env.now()): void {
    // Without STCE, STIP is only the software-written bit (mipSw): drop the comparator's.
    if ((this.menvcfgHi & 0x80000000) === 0) { this.mipHw &= ~(1 << Irq.STI); return; }
    if (now >= this.stimecmp) this.mipHw |= 1 << Irq.STI; else this.mipHw &= ~(1 << Irq.STI);
  }

  private pending(): number { return (this.mipSw | this.mipHw) & this.mie; }

  /**
   * Instructions to run before comparing the timer again (reading the host clock costs more than
   * a few hundred instructions): as many as could not reach the timer's deadline even at
   * SLOWEST_IPS, within [MIN_TIMER_CHECK, MAX_TIMER_CHECK], from the time `now` (ticks). A new
   * deadline resets the count.
   */
  private timerCheckInterval(now: number): number {
    if ((this.mipHw & (1 << Irq.STI)) !== 0) return MAX_TIMER_CHECK; // pending already
    const ticks = this.stimecmp - now; // Infinity when no deadline is set
    const insns = Math.floor(ticks * (SLOWEST_IPS / this.env.timebaseHz));
    return Math.max(MIN_TIMER_CHECK, Math.min(MAX_TIMER_CHECK, insns));
  }

  /** True when an enabled-in-mie interrupt is pending (ends WFI regardless of global enables). */
  hasPendingInterrupt(): boolean {
    this.updateTimer();
    return this.pending() !== 0;
  }

  /** Flushes every translation cache of this hart (satp write, sfence.vma, remote fence). */
  flushTlb(): void {
    for (const set of this.tlbs) for (const t of set) t.flush();
    this.sumPages = [];
    this.fetchVpn = -1;
    this.newFetchEpoch();
  }

  /** Flushes the translations of one virtual page (SFENCE.VMA rs1 != x0; any ASID). */
  private flushTlbPage(lo: number, hi: number): void {
    for (const set of this.tlbs) for (const t of set) t.flushPage(lo, hi);
    this.fetchVpn = -1;
    this.newFetchEpoch();
  }

  /** A new HartState.FetchEpoch: whatever was cached about where pcs lead (the JIT's jump cache) no longer holds. */
  newFetchEpoch(): void {
    // (Wrapping takes 2^32 flushes; an epoch is compared for equality only.)
    lastFetchEpoch = (lastFetchEpoch + 1) | 0 || 1;
    this.state[FETCH_EPOCH] = lastFetchEpoch;
  }

  private updateTranslation(): void {
    this.satpMode = (this.satpHi >>> 28) as SatpMode;
    this.rootPpn = (this.satpHi & 0xfff) * 4294967296 + (this.satpLo >>> 0);
    const mprv = (this.mstatus & Mstatus.MPRV) !== 0;
    this.dataPriv = mprv ? ((this.mstatus >>> Mstatus.MPP_SHIFT) & 3) as Priv : this.priv;
    const on = this.satpMode !== SatpMode.Bare;
    this.fetchTranslate = on && this.priv !== Priv.Machine;
    this.dataTranslate = on && this.dataPriv !== Priv.Machine;
    const fetchSet = this.tlbs[!this.fetchTranslate ? 2 : this.priv === Priv.User ? 0 : 1];
    const dataSet = this.tlbs[!this.dataTranslate ? 2 : this.dataPriv === Priv.User ? 0 : 1];
    this.tlbRead = dataSet[Access.Read];
    this.tlbWrite = dataSet[Access.Write];
    if (this.tlbExec !== fetchSet[Access.Execute]) this.newFetchEpoch();
    this.tlbExec = fetchSet[Access.Execute];
    this.state[READ_TLB] = this.tlbRead.byteOffset;
    this.state[WRITE_TLB] = this.tlbWrite.byteOffset;
    this.state[EXEC_TLB] = this.tlbExec.byteOffset;
    this.fetchVpn = -1;
  }

  /** The RAM offset the fetch TLB maps virtual pc (lo, hi) to now, or -1 (not cached or not RAM). */
  fetchRamOffset(lo: number, hi: number): number { return this.tlbExec.ramOffsetOf(lo, hi); }

  /** Makes the write TLBs miss on RAM page `ramOffset` (it now holds translated code). */
  forgetWritablePage(ramOffset: number): void {
    for (const set of this.tlbs) set[Access.Write].forget(ramOffset);
  }

  /** Drops every write TLB entry that maps a page of translated code (another thread's JIT began to own some: CodeMap). */
  forgetCodePages(): void {
    for (const set of this.tlbs) set[Access.Write].forgetPages(this.codePages);
  }

  /** Drops translations of code that other threads' harts or devices wrote (FENCE.I, a remote fence). */
  syncCode(): void {
    this.jit?.drain();
  }

  // ---- traps ----

  /** Raises a synchronous exception for the current instruction and abandons it. */
  private raise(cause: Exception, tvalLo: number, tvalHi: number): never {
    this.enterTrap(cause, false, tvalLo, tvalHi);
    throw TRAP;
  }
  private illegal(insn: number): never {
    // mtval holds the instruction as stored: a compressed one that was expanded before it
    // turned out illegal (c.fld with FS = Off, say) is reported as its own 16 bits.
    if ((insn & 3) === 3) {
      const raw = this.fetch(this.pcLo, this.pcHi);
      if ((raw & 3) !== 3) insn = raw & 0xffff;
    }
    return this.raise(Exception.IllegalInstruction, insn, 0);
  }

  private enterTrap(cause: number, interrupt: boolean, tvalLo: number, tvalHi: number): void {
    const deleg = interrupt ? this.mideleg : this.medeleg;
    const causeHi = interrupt ? 0x80000000 | 0 : 0;
    if (this.priv !== Priv.Machine && ((deleg >>> cause) & 1) !== 0) {
      this.scauseLo = cause; this.scauseHi = causeHi;
      this.sepcLo = this.pcLo; this.sepcHi = this.pcHi;
      this.stvalLo = tvalLo; this.stvalHi = tvalHi;
      let s = this.mstatus & ~(Mstatus.SPIE | Mstatus.SPP);
      if (s & Mstatus.SIE) s |= Mstatus.SPIE;
      if (this.priv === Priv.Supervisor) s |= Mstatus.SPP;
      this.mstatus = s & ~Mstatus.SIE;
      this.priv = Priv.Supervisor;
      this.jumpToVector(this.stvecLo, this.stvecHi, cause, interrupt);
    } else {
      if (this.env.machineTrap) {
        this.env.machineTrap(this, cause, interrupt);
        return;
      }
      this.mcauseLo = cause; this.mcauseHi = causeHi;
      this.mepcLo = this.pcLo; this.mepcHi = this.pcHi;
      this.mtvalLo = tvalLo; this.mtvalHi = tvalHi;
      let s = this.mstatus & ~(Mstatus.MPIE | Mstatus.MPP);
      if (s & Mstatus.MIE) s |= Mstatus.MPIE;
      s |= this.priv << Mstatus.MPP_SHIFT;
      this.mstatus = s & ~Mstatus.MIE;
      this.priv = Priv.Machine;
      this.jumpToVector(this.mtvecLo, this.mtvecHi, cause, interrupt);
    }
    this.reservation = -1;
    this.updateTranslation();
  }

  private jumpToVector(lo: number, hi: number, cause: number, interrupt: boolean): void {
    const base = lo & ~3;
    const offset = interrupt && (lo & 3) === 1 ? 4 * cause : 0;
    const nlo = (base + offset) | 0;
    this.pcHi = ((nlo >>> 0) < (base >>> 0) ? hi + 1 : hi) | 0;
    this.pcLo = nlo;
  }

  /** Takes the highest-priority enabled pending interrupt, if any. Returns true when taken. */
  private takeInterrupt(): boolean {
    const pending = this.pending();
    if (pending === 0) return false;
    const mie = this.priv !== Priv.Machine || (this.mstatus & Mstatus.MIE) !== 0;
    let enabled = mie ? pending & ~this.mideleg : 0;
    if (enabled === 0) {
      const sie = this.priv === Priv.User || (this.priv === Priv.Supervisor && (this.mstatus & Mstatus.SIE) !== 0);
      enabled = sie ? pending & this.mideleg : 0;
    }
    if (enabled === 0) return false;
    for (const irq of INTERRUPT_PRIORITY) {
      if (enabled & (1 << irq)) {
        this.waiting = false;
        this.enterTrap(irq, true, 0, 0);
        return true;
      }
    }
    return false;
  }

  // ---- memory access ----

  /**
   * The fast path of a data access: the RAM offset of [va, va+width) when the translation is
   * cached (or off) and the access stays inside one page of RAM; -1 sends the caller to the
   * full path (page walk, page-crossing, MMIO, faults).
   */
  private ramOffset(lo: number, hi: number, width: number, tlb: Tlb): number {
    if ((lo & 0xfff) > 0x1000 - width) return -1;
    if (!this.dataTranslate) {
      if (hi !== 0) return -1;
      // RAM starts at 2^31 and is at most 2 GiB, so this difference is exact in int32.
      const off = (lo - this.ramBase32) | 0;
      return off >= 0 && off + width <= this.ramSize ? off : -1;
    }
    return tlb.ramOffsetOf(lo, hi);
  }

  private translate(lo: number, hi: number, access: Access): number {
    const translateOn = access === Access.Execute ? this.fetchTranslate : this.dataTranslate;
    const tlb = access === Access.Read ? this.tlbRead : access === Access.Write ? this.tlbWrite : this.tlbExec;
    if (!translateOn) {
      const pa = hi === 0 ? lo >>> 0 : hi * 4294967296 + (lo >>> 0);
      // Identity entries for compiled code's inline lookups (the interpreter does not need them).
      this.fillTlb(tlb, lo, hi, pa, access);
      return pa;
    }
    const i = (lo >>> 12) & TLB_MASK, t = tlb.entries;
    if (t[i << 2] === (lo & ~0xfff) && t[(i << 2) + 1] === hi) return tlb.page[i] + (lo & 0xfff);
    const other = tlb.other(lo, hi);
    if (other >= 0) return other + (lo & 0xfff);
    const priv = access === Access.Execute ? this.priv : this.dataPriv;
    const pa = walkPageTable(this.mem, this.satpMode, this.rootPpn, lo, hi, access, priv,
      (this.mstatus & Mstatus.SUM) !== 0, (this.mstatus & Mstatus.MXR) !== 0);
    if (pa < 0) {
      const cause = pa === WalkFault.Access
        ? [Exception.LoadAccessFault, Exception.StoreAccessFault, Exception.InstructionAccessFault][access]
        : [Exception.LoadPageFault, Exception.StorePageFault, Exception.InstructionPageFault][access];
      this.raise(cause, lo, hi);
    }
    // A user page reached from S-mode (the walk allowed it: SUM=1) is cached until SUM is cleared.
    if (priv === Priv.Supervisor && access !== Access.Execute && lastLeafUser && this.sumPages.length < 2 * MAX_SUM_PAGES) {
      this.sumPages.push(lo, hi);
    }
    this.fillTlb(tlb, lo, hi, pa, access);
    if (lastLeafLevel > 0) tlb.holdsSuperpage(lo, hi, lastLeafLevel);
    return pa;
  }

  /**
   * Caches a translation. Only RAM pages go where the fast paths look: a hit there means "RAM at
   * ramOffset", which keeps them (and compiled code's inline lookups) to the tag compare. Stores
   * to a page of translated code must reach storePhys, which invalidates it, so write TLBs keep
   * such pages, like device pages, in the other set.
   */
  private fillTlb(tlb: Tlb, lo: number, hi: number, pa: number, access: Access): void {
    const pageAddr = pa - (lo & 0xfff), pageOff = pageAddr - this.ramBase;
    if (pageOff < 0 || pageOff >= this.ramSize || (access === Access.Write && this.codePages[pageOff >>> 12] !== 0)) {
      tlb.fillOther(lo, hi, pageAddr);
    } else {
      tlb.fill(lo, hi, pageAddr, pageOff | 0);
    }
  }

  private accessFault(access: Access, lo: number, hi: number): never {
    return this.raise(access === Access.Read ? Exception.LoadAccessFault : Exception.StoreAccessFault, lo, hi);
  }

  /** Loads `width` bytes (1, 2, 4, 8) zero-extended; the high half of an 8-byte load is left in tmpHi. */
  private loadPhys(pa: number, width: number, lo: number, hi: number): number {
    const off = pa - this.ramBase;
    if (off >= 0 && off + width <= this.ramSize) {
      switch (width) {
        case 1: return this.view.getUint8(off);
        case 2: return this.view.getUint16(off, true);
        case 4: return this.view.getInt32(off, true);
        default: this.tmpHi = this.view.getInt32(off + 4, true); return this.view.getInt32(off, true);
      }
    }
    if ((pa & (width - 1)) !== 0) this.accessFault(Access.Read, lo, hi);
    if (width === 8) {
      const l = this.bus.loadMmio(pa, 4), h = this.bus.loadMmio(pa + 4, 4);
      if (l === undefined || h === undefined) this.accessFault(Access.Read, lo, hi);
      this.tmpHi = h | 0;
      return l | 0;
    }
    const v = this.bus.loadMmio(pa, width as 1 | 2 | 4);
    if (v === undefined) this.accessFault(Access.Read, lo, hi);
    return v | 0;
  }

  private storePhys(pa: number, width: number, vlo: number, vhi: number, lo: number, hi: number): void {
    const off = pa - this.ramBase;
    if (off >= 0 && off + width <= this.ramSize) {
      switch (width) {
        case 1: this.view.setUint8(off, vlo); break;
        case 2: this.view.setUint16(off, vlo, true); break;
        case 4: this.view.setInt32(off, vlo, true); break;
        default: this.view.setInt32(off, vlo, true); this.view.setInt32(off + 4, vhi, true);
      }
      if (this.codePages[off >>> 12] !== 0) this.storeToCode(off);
      return;
    }
    if ((pa & (width - 1)) !== 0) this.accessFault(Access.Write, lo, hi);
    const ok = width === 8
      ? this.bus.storeMmio(pa, 4, vlo) && this.bus.storeMmio(pa + 4, 4, vhi)
      : this.bus.storeMmio(pa, width as 1 | 2 | 4, vlo & (width === 4 ? -1 : (1 << (8 * width)) - 1));
    if (!ok) this.accessFault(Access.Write, lo, hi);
    this.breakLoop = true; // a device may have raised an interrupt
  }

  /** Virtual load; misaligned accesses that cross a page are split into bytes. */
  private load(lo: number, hi: number, width: number): number {
    if ((lo & 0xfff) > 0x1000 - width) return this.loadCrossing(lo, hi, width);
    return this.loadPhys(this.translate(lo, hi, Access.Read), width, lo, hi);
  }

  private loadCrossing(lo: number, hi: number, width: number): number {
    let vlo = 0, vhi = 0;
    for (let i = 0; i < width; i++) {
      const alo = (lo + i) | 0, ahi = (alo >>> 0) < (lo >>> 0) ? (hi + 1) | 0 : hi;
      const b = this.loadPhys(this.translate(alo, ahi, Access.Read), 1, alo, ahi);
      if (i < 4) vlo |= b << (8 * i); else vhi |= b << (8 * (i - 4));
    }
    this.tmpHi = vhi;
    return vlo;
  }

  private store(lo: number, hi: number, width: number, vlo: number, vhi: number): void {
    if ((lo & 0xfff) > 0x1000 - width) {
      // Translate every byte first so a fault leaves memory untouched.
      const pas: number[] = [];
      for (let i = 0; i < width; i++) {
        const alo = (lo + i) | 0, ahi = (alo >>> 0) < (lo >>> 0) ? (hi + 1) | 0 : hi;
        pas.push(this.translate(alo, ahi, Access.Write));
      }
      for (let i = 0; i < width; i++) {
        const b = i < 4 ? (vlo >>> (8 * i)) & 0xff : (vhi >>> (8 * (i - 4))) & 0xff;
        this.storePhys(pas[i], 1, b, 0, lo, hi);
      }
      return;
    }
    this.storePhys(this.translate(lo, hi, Access.Write), width, vlo, vhi, lo, hi);
  }

  /** Fetches the instruction at pc (raw, possibly a 16-bit parcel zero-extended). */
  private fetch(lo: number, hi: number): number {
    const vpn = lo >>> 12;
    if (vpn !== this.fetchVpn || hi !== this.fetchHi) {
      // Translate the pc itself, not its page, so that a page fault reports the pc in tval.
      const pa = this.translate(lo, hi, Access.Execute) - (lo & 0xfff);
      const off = pa - this.ramBase;
      if (off < 0 || off >= this.ramSize) this.raise(Exception.InstructionAccessFault, lo, hi);
      this.fetchVpn = vpn; this.fetchHi = hi; this.fetchBase = off | 0; // int32: see ramOffset()
    }
    const pageOff = lo & 0xfff;
    const off = this.fetchBase + pageOff;
    if (pageOff <= 0xffc) return this.view.getInt32(off, true);
    const low = this.view.getUint16(off, true);
    if ((low & 3) !== 3) return low;
    const nlo = (lo + 2) | 0, nhi = (nlo >>> 0) < (lo >>> 0) ? (hi + 1) | 0 : hi;
    const pa2 = this.translate(nlo, nhi, Access.Execute);
    const off2 = pa2 - this.ramBase;
    if (off2 < 0 || off2 >= this.ramSize) this.raise(Exception.InstructionAccessFault, nlo, nhi);
    return low | (this.view.getUint16(off2, true) << 16);
  }

  // ---- CSRs ----

  private counterAllowed(bit: number): boolean {
    if (this.priv === Priv.Machine) return true;
    if (((this.mcounteren >>> bit) & 1) === 0) return false;
    return this.priv === Priv.Supervisor || ((this.scounteren >>> bit) & 1) !== 0;
  }

  private fsOff(): boolean { return (this.mstatus & Mstatus.FS) === 0; }

  /** Reads a CSR: returns the low half and leaves the high half in tmpHi; undefined when illegal. */
  private readCsr(csr: number): number | undefined {
    this.tmpHi = 0;
    switch (csr) {
      case Csr.fflags: if (this.fsOff()) return undefined; return this.fflags;
      case Csr.frm: if (this.fsOff()) return undefined; return this.frm;
      case Csr.fcsr: if (this.fsOff()) return undefined; return (this.frm << 5) | this.fflags;
      case Csr.cycle: case Csr.instret:
        if (!this.counterAllowed(csr & 3)) return undefined;
        return this.counter(this.instret + this.counterOffset);
      case Csr.time:
        if (!this.counterAllowed(1)) return undefined;
        return this.counter(this.env.now());
      case Csr.mcycle: case Csr.minstret: return this.counter(this.instret + this.counterOffset);
      case Csr.sstatus: return this.readStatus(SSTATUS_MASK, 0x2);
      case Csr.mstatus: return this.readStatus(-1, MSTATUS_HI_FIXED);
      case Csr.sie: return this.mie & this.mideleg;
      case Csr.mie: return this.mie;
      case Csr.sip: this.updateTimer(); return (this.mipSw | this.mipHw) & this.mideleg;
      case Csr.mip: this.updateTimer(); return this.mipSw | this.mipHw;
      case Csr.stvec: this.tmpHi = this.stvecHi; return this.stvecLo;
      case Csr.mtvec: this.tmpHi = this.mtvecHi; return this.mtvecLo;
      case Csr.scounteren: return this.scounteren;
      case Csr.mcounteren: return this.mcounteren;
      case Csr.senvcfg: return this.senvcfgLo;
      case Csr.menvcfg: this.tmpHi = this.menvcfgHi; return this.menvcfgLo;
      case Csr.sscratch: this.tmpHi = this.sscratchHi; return this.sscratchLo;
      case Csr.mscratch: this.tmpHi = this.mscratchHi; return this.mscratchLo;
      case Csr.sepc: this.tmpHi = this.sepcHi; return this.sepcLo;
      case Csr.mepc: this.tmpHi = this.mepcHi; return this.mepcLo;
      case Csr.scause: this.tmpHi = this.scauseHi; return this.scauseLo;
      case Csr.mcause: this.tmpHi = this.mcauseHi; return this.mcauseLo;
      case Csr.stval: this.tmpHi = this.stvalHi; return this.stvalLo;
      case Csr.mtval: this.tmpHi = this.mtvalHi; return this.mtvalLo;
      case Csr.stimecmp:
        if (this.priv === Priv.Supervisor && ((this.menvcfgHi & 0x80000000) === 0 || (this.mcounteren & 2) === 0)) return undefined;
        this.tmpHi = this.stimecmpHi; return this.stimecmpLo;
      case Csr.satp:
        if (this.priv === Priv.Supervisor && (this.mstatus & Mstatus.TVM)) return undefined;
        this.tmpHi = this.satpHi; return this.satpLo;
      case Csr.misa: this.tmpHi = 0x80000000 | 0; return MISA_LO;
      case Csr.medeleg: return this.medeleg;
      case Csr.mideleg: return this.mideleg;
      case Csr.mhartid: return this.id;
      case Csr.mvendorid: case Csr.marchid: case Csr.mimpid: case Csr.mconfigptr: return 0;
      case Csr.mcountinhibit: return this.mcountinhibit;
      case Csr.tselect: case Csr.tdata1: return 0;
      default:
        if (csr >= Csr.pmpcfg0 && csr < Csr.pmpcfg0 + 16) return 0;
        if (csr >= Csr.pmpaddr0 && csr < Csr.pmpaddr0 + 64) return 0;
        if (csr >= 0xb03 && csr <= 0xb1f) return 0;  // mhpmcounter3..31: not implemented, read zero
        if (csr >= 0x323 && csr <= 0x33f) return 0;  // mhpmevent3..31
        if (csr >= 0xc03 && csr <= 0xc1f) return this.counterAllowed(csr & 31) ? 0 : undefined;
        return undefined;
    }
  }

  private counter(v: number): number {
    this.tmpHi = Math.floor(v / 4294967296) | 0;
    return v | 0;
  }

  private readStatus(mask: number, fixedHi: number): number {
    const dirty = (this.mstatus & Mstatus.FS) === Mstatus.FS;
    this.tmpHi = fixedHi | (dirty ? 0x80000000 | 0 : 0);
    return this.mstatus & mask;
  }

  /**
   * Writes a CSR; returns false when the write is illegal. Sets breakLoop when the write may make
   * an interrupt deliverable or changes how addresses translate.
   */
  private writeCsr(csr: number, lo: number, hi: number): boolean {
    switch (csr) {
      case Csr.fflags: if (this.fsOff()) return false; this.fflags = lo & 0x1f; this.mstatus |= FS_DIRTY; return true;
      case Csr.frm: if (this.fsOff()) return false; this.frm = lo & 7; this.mstatus |= FS_DIRTY; return true;
      case Csr.fcsr:
        if (this.fsOff()) return false;
        this.fflags = lo & 0x1f; this.frm = (lo >>> 5) & 7; this.mstatus |= FS_DIRTY; return true;
      case Csr.sstatus: this.writeStatus((this.mstatus & ~SSTATUS_MASK) | (lo & SSTATUS_MASK)); return true;
      case Csr.mstatus: this.writeStatus((this.mstatus & ~MSTATUS_WRITABLE) | (lo & MSTATUS_WRITABLE)); return true;
      case Csr.sie: this.mie = (this.mie & ~this.mideleg) | (lo & this.mideleg); this.breakLoop = true; return true;
      case Csr.mie: this.mie = lo & ALL_INTERRUPTS; this.breakLoop = true; return true;
      case Csr.sip:
        this.mipSw = (this.mipSw & ~(1 << Irq.SSI)) | (lo & this.mideleg & (1 << Irq.SSI));
        this.breakLoop = true;
        return true;
      case Csr.mip: {
        const writable = (1 << Irq.SSI) | (1 << Irq.SEI) | ((this.menvcfgHi & 0x80000000) ? 0 : 1 << Irq.STI);
        this.mipSw = (this.mipSw & ~writable) | (lo & writable);
        this.breakLoop = true;
        return true;
      }
      case Csr.stvec: this.stvecLo = (lo & 3) >= 2 ? lo & ~3 : lo; this.stvecHi = hi; return true;
      case Csr.mtvec: this.mtvecLo = (lo & 3) >= 2 ? lo & ~3 : lo; this.mtvecHi = hi; return true;
      case Csr.scounteren: this.scounteren = lo; return true;
      case Csr.mcounteren: this.mcounteren = lo; return true;
      case Csr.senvcfg: this.senvcfgLo = lo & 1; return true;
      case Csr.menvcfg:
        this.menvcfgLo = lo & 1; this.menvcfgHi = hi & (0x80000000 | 0);
        this.updateTimer();
        this.breakLoop = true;
        return true;
      case Csr.sscratch: this.sscratchLo = lo; this.sscratchHi = hi; return true;
      case Csr.mscratch: this.mscratchLo = lo; this.mscratchHi = hi; return true;
      case Csr.sepc: this.sepcLo = lo & ~1; this.sepcHi = hi; return true;
      case Csr.mepc: this.mepcLo = lo & ~1; this.mepcHi = hi; return true;
      case Csr.scause: this.scauseLo = lo; this.scauseHi = hi; return true;
      case Csr.mcause: this.mcauseLo = lo; this.mcauseHi = hi; return true;
      case Csr.stval: this.stvalLo = lo; this.stvalHi = hi; return true;
      case Csr.mtval: this.mtvalLo = lo; this.mtvalHi = hi; return true;
      case Csr.stimecmp:
        if (this.priv === Priv.Supervisor && ((this.menvcfgHi & 0x80000000) === 0 || (this.mcounteren & 2) === 0)) return false;
        this.setTimerCompare(lo, hi); this.breakLoop = true; return true;
      case Csr.satp: {
        if (this.priv === Priv.Supervisor && (this.mstatus & Mstatus.TVM)) return false;
        const mode = hi >>> 28;
        if (mode !== SatpMode.Bare && mode !== SatpMode.Sv39 && mode !== SatpMode.Sv48) return true; // WARL: ignored
        this.satpLo = lo; this.satpHi = hi;
        this.flushTlb();
        this.updateTranslation();
        this.breakLoop = true;
        return true;
      }
      case Csr.medeleg: this.medeleg = lo & MEDELEG_WRITABLE; return true;
      case Csr.mideleg: this.mideleg = lo & SUPERVISOR_INTERRUPTS; this.breakLoop = true; return true;
      case Csr.mcycle: case Csr.minstret:
        // The write replaces this instruction's own increment: the next instruction reads the value.
        this.counterOffset = (hi >>> 0) * 4294967296 + (lo >>> 0) - this.instret - 1;
        return true;
      case Csr.misa: return true; // WARL: the extensions cannot be switched off
      case Csr.mcountinhibit: this.mcountinhibit = lo; return true;
      case Csr.tselect: case Csr.tdata1: return true;
      default:
        if (csr >= Csr.pmpcfg0 && csr < Csr.pmpcfg0 + 16) return true;
        if (csr >= Csr.pmpaddr0 && csr < Csr.pmpaddr0 + 64) return true;
        if (csr >= 0xb03 && csr <= 0xb1f) return true;
        if (csr >= 0x323 && csr <= 0x33f) return true;
        return false;
    }
  }

  /** SUM was cleared: S-mode may no longer reach the user pages cached while it was set. */
  private dropSumPages(): void {
    const pages = this.sumPages;
    for (const set of this.tlbs) {
      for (const t of [set[Access.Read], set[Access.Write]]) {
        if (pages.length >= 2 * MAX_SUM_PAGES) t.flush(); // (the list stopped at its limit)
        else for (let i = 0; i < pages.length; i += 2) t.flushPage(pages[i], pages[i + 1]);
      }
    }
    this.sumPages = [];
  }

  private writeStatus(v: number): void {
    if (((v >>> Mstatus.MPP_SHIFT) & 3) === 2) v &= ~Mstatus.MPP; // reserved MPP value: WARL to U
    const changed = this.mstatus ^ v;
    // Newly enabled interrupts are taken before the next instruction; a new translation mode
    // must reach compiled code, which holds the TLB choice for a whole run.
    if ((v & changed & (Mstatus.SIE | Mstatus.MIE)) !== 0 || (changed & (Mstatus.MPRV | Mstatus.MPP | Mstatus.SUM | Mstatus.MXR)) !== 0) {
      this.breakLoop = true;
    }
    this.mstatus = v;
    if (changed & Mstatus.MXR) for (const set of this.tlbs) set[Access.Read].flush();
    if ((changed & Mstatus.SUM) !== 0 && (v & Mstatus.SUM) === 0) this.dropSumPages();
    if (changed & (Mstatus.MPRV | Mstatus.MPP | Mstatus.SUM | Mstatus.MXR)) this.updateTranslation();
  }

  // ---- the interpreter ----

  /**
   * Runs up to `budget` instructions; returns early on WFI with nothing pending or when a device
   * access asks for attention. Returns the number of instructions retired.
   */
  run(budget: number): number {
    const start = this.instret;
    if (this.waiting) {
      if (!this.hasPendingInterrupt()) return 0;
      this.waiting = false;
    }
    const jit = this.jit;
    this.yielding = false;
    while (this.instret - start < budget && !this.waiting && !this.yielding) {
      if (this.instret >= this.nextTimerCheck) {
        const now = this.env.now();
        this.updateTimer(now);
        this.nextTimerCheck = this.instret + this.timerCheckInterval(now);
      }
      this.takeInterrupt();
      this.breakLoop = false;
      try {
        const chunk = Math.min(this.nextTimerCheck - this.instret, budget - (this.instret - start));
        if (jit) this.dispatch(jit, this.instret + chunk); else this.execute(Math.min(CHUNK, chunk));
      } catch (e) {
        if (e !== TRAP) throw e;
      }
    }
    return this.instret - start;
  }

  /**
   * With the JIT: runs compiled blocks and, where there are none, the interpreter up to the
   * next taken jump (whose target is looked up next), until instret reaches `end` or something
   * asks for an interrupt check. Compiled code runs only between whole instructions of the
   * interpreter, on the same state, so a trap in either leaves the hart as the interpreter would.
   */
  private dispatch(jit: Jit, end: number): void {
    const state = this.state;
    jit.current = this;
    while (this.instret < end && !this.breakLoop && !this.waiting) {
      const pcLo = this.pcLo, pcHi = this.pcHi;
      if ((pcLo >>> 12) !== this.fetchVpn || pcHi !== this.fetchHi) this.fetch(pcLo, pcHi);
      const ramOff = this.fetchBase + (pcLo & 0xfff);
      const block = jit.lookup(ramOff, pcLo, pcHi);
      if (block < 0) {
        this.execute(end - this.instret);
        jit.interpreted(ramOff, pcLo, pcHi);
        continue;
      }
      let result: number;
      try {
        result = jit.enter(block, end - this.instret, this.stateBase);
      } catch (e) {
        if (e === TRAP) this.instret += state[RETIRED];
        throw e;
      }
      this.instret += result >>> 2;
      this.pcLo = state[PC_LO]; this.pcHi = state[PC_HI];
      // Compiled code stopped at an instruction it does not translate: the interpreter runs it.
      if ((result & RunExit.Interpret) !== 0) this.execute(1);
    }
  }

  // ---- entry points for compiled code (src/cpu/jit) ----

  /** The pc of the instruction whose slow path compiled code is calling, as the trap code expects. */
  private syncFromCompiled(): void {
    this.pcLo = this.state[PC_LO]; this.pcHi = this.state[PC_HI];
  }

  /**
   * Runs the instruction at the state's pc (`length` bytes long) with the interpreter, for
   * compiled code (CSRs, atomics, floating point, privileged instructions). Returns 1 when
   * compiled code must stop after it, with the next pc in the state: the instruction jumped or
   * trapped-and-returned (xRET, ECALL), waits (WFI), or asked for an interrupt check or a new
   * translation (breakLoop). A trap propagates as from the other helpers.
   */
  compiledInterpret(length: number): number {
    this.syncFromCompiled();
    const pcLo = this.pcLo, pcHi = this.pcHi, base = this.instret;
    // Counter CSRs read (and minstret writes set) the count of this very instruction.
    this.instret = base + this.state[RETIRED];
    try {
      this.execute(1);
    } finally {
      this.instret = base;
    }
    this.state[PC_LO] = this.pcLo; this.state[PC_HI] = this.pcHi;
    const nextLo = (pcLo + length) | 0;
    const sequential = this.pcLo === nextLo && this.pcHi === ((nextLo >>> 0) < (pcLo >>> 0) ? (pcHi + 1) | 0 : pcHi);
    return sequential && !this.breakLoop && !this.waiting ? 0 : 1;
  }

  /** A store reached RAM page `off >>> 12`, which holds translated code. */
  private storeToCode(off: number): void {
    this.jit?.invalidatePage(off >>> 12);
    this.breakLoop = true; // compiled code that is running stops after this instruction
  }

  /** Executes one instruction with the interpreter, taking its trap if it raises one (tests, debuggers). */
  step(): void {
    try {
      this.execute(1);
    } catch (e) {
      if (e !== TRAP) throw e;
    }
  }


  /** Executes up to n instructions without checking interrupts. */
  private execute(n: number): void {
    const x = this.x, view = this.view;
    for (let i = 0; i < n; i++) {
      const pcLo = this.pcLo, pcHi = this.pcHi;
      const pageOff = pcLo & 0xfff;
      let insn = (pcLo >>> 12) === this.fetchVpn && pcHi === this.fetchHi && pageOff <= 0xffc
        ? view.getInt32(this.fetchBase + pageOff, true) : this.fetch(pcLo, pcHi);
      let ilen = 4;
      if ((insn & 3) !== 3) {
        const half = insn & 0xffff;
        insn = expandCached(half);
        if (insn === 0) this.illegal(half);
        ilen = 2;
      }
      let nextLo = (pcLo + ilen) | 0;
      let nextHi = (nextLo >>> 0) < (pcLo >>> 0) ? (pcHi + 1) | 0 : pcHi;
      const rd = (insn >>> 7) & 31, d = rd << 1;
      const s1 = ((insn >>> 15) & 31) << 1, s2 = ((insn >>> 20) & 31) << 1;
      const f3 = (insn >>> 12) & 7;
      switch ((insn >>> 2) & 31) { // major opcode without its 0b11 suffix: a dense jump table
        case Opcode.Load: { // LOAD
          const imm = insn >> 20, alo = x[s1];
          const lo = (alo + imm) | 0;
          const hi = (x[s1 + 1] + (imm >> 31) + ((lo >>> 0) < (alo >>> 0) ? 1 : 0)) | 0;
          let vlo: number, vhi: number;
          const off = this.ramOffset(lo, hi, 1 << (f3 & 3), this.tlbRead);
          if (off >= 0) {
            switch (f3) {
              case 0: vlo = view.getInt8(off); vhi = vlo >> 31; break;
              case 1: vlo = view.getInt16(off, true); vhi = vlo >> 31; break;
              case 2: vlo = view.getInt32(off, true); vhi = vlo >> 31; break;
              case 3: vlo = view.getInt32(off, true); vhi = view.getInt32(off + 4, true); break;
              case 4: vlo = view.getUint8(off); vhi = 0; break;
              case 5: vlo = view.getUint16(off, true); vhi = 0; break;
              case 6: vlo = view.getInt32(off, true); vhi = 0; break;
              default: this.illegal(insn);
            }
            x[d] = vlo; x[d + 1] = vhi;
            break;
          }
          this.loadSlow(insn, d, f3, lo, hi);
          break;
        }
        case Opcode.LoadFp: this.loadFp(insn, d, s1, f3); break;
        case Opcode.MiscMem: // MISC-MEM: FENCE, FENCE.I (translated code is kept coherent with every store, see jit.ts)
          if (f3 > 1) this.illegal(insn);
          if (f3 === 0 && this.env.concurrent && fenceOrdersStoreLoad(insn)) Atomics.add(this.state, FENCE_CELL, 0); // a locked instruction: a full host barrier
          if (insn === PAUSE && ++this.pauses >= PAUSES_BEFORE_YIELD) { this.pauses = 0; this.yielding = true; this.breakLoop = true; }
          // FENCE.I: code stored by harts on other threads must be seen from here on.
          if (f3 === 1 && this.env.concurrent) { this.jit?.drain(); this.breakLoop = true; }
          break;
        case Opcode.OpImm: { // OP-IMM
          const imm = insn >> 20, alo = x[s1], ahi = x[s1 + 1];
          switch (f3) {
            case 0: { const lo = (alo + imm) | 0; x[d + 1] = (ahi + (imm >> 31) + ((lo >>> 0) < (alo >>> 0) ? 1 : 0)) | 0; x[d] = lo; break; }
            case 1: { // SLLI, inline (hot; V8 will not inline the helper here)
              if ((imm >>> 6) & 0x3f) this.illegal(insn);
              const sh = imm & 63;
              if (sh === 0) { x[d] = alo; x[d + 1] = ahi; } else if (sh < 32) { x[d + 1] = (ahi << sh) | (alo >>> (32 - sh)); x[d] = alo << sh; } else { x[d + 1] = alo << (sh - 32); x[d] = 0; }
              break;
            }
            case 2: x[d] = (ahi < (imm >> 31) || (ahi === (imm >> 31) && (alo >>> 0) < (imm >>> 0))) ? 1 : 0; x[d + 1] = 0; break;
            case 3: {
              const bhi = imm >> 31;
              x[d] = ((ahi >>> 0) < (bhi >>> 0) || (ahi === bhi && (alo >>> 0) < (imm >>> 0))) ? 1 : 0; x[d + 1] = 0; break;
            }
            case 4: x[d] = alo ^ imm; x[d + 1] = ahi ^ (imm >> 31); break;
            case 5: {
              const f6 = (insn >>> 26) & 0x3f, sh = imm & 63;
              if (f6 !== 0 && f6 !== 0x10) this.illegal(insn);
              // SRLI / SRAI, inline like SLLI.
              if (sh === 0) { x[d] = alo; x[d + 1] = ahi; } else if (sh < 32) {
                x[d] = (alo >>> sh) | (ahi << (32 - sh)); x[d + 1] = f6 === 0 ? ahi >>> sh : ahi >> sh;
              } else {
                x[d] = f6 === 0 ? ahi >>> (sh - 32) : ahi >> (sh - 32); x[d + 1] = f6 === 0 ? 0 : ahi >> 31;
              }
              break;
            }
            case 6: x[d] = alo | imm; x[d + 1] = ahi | (imm >> 31); break;
            default: x[d] = alo & imm; x[d + 1] = ahi & (imm >> 31); break;
          }
          break;
        }
        case Opcode.Auipc: { // AUIPC
          const imm = insn & ~0xfff;
          const lo = (pcLo + imm) | 0;
          x[d + 1] = (pcHi + (imm >> 31) + ((lo >>> 0) < (pcLo >>> 0) ? 1 : 0)) | 0; x[d] = lo;
          break;
        }
        case Opcode.OpImm32: { // OP-IMM-32
          const imm = insn >> 20, a = x[s1];
          let r: number;
          switch (f3) {
            case 0: r = (a + imm) | 0; break;
            case 1: if ((insn >>> 25) !== 0) this.illegal(insn); r = a << (imm & 31); break;
            case 5: {
              const f7 = insn >>> 25;
              if (f7 === 0) r = a >>> (imm & 31); else if (f7 === 0x20) r = a >> (imm & 31); else this.illegal(insn);
              r |= 0;
              break;
            }
            default: this.illegal(insn);
          }
          x[d] = r; x[d + 1] = r >> 31;
          break;
        }
        case Opcode.Store: { // STORE
          const imm = ((insn >> 25) << 5) | ((insn >>> 7) & 0x1f), alo = x[s1];
          const lo = (alo + imm) | 0;
          const hi = (x[s1 + 1] + (imm >> 31) + ((lo >>> 0) < (alo >>> 0) ? 1 : 0)) | 0;
          if (f3 > 3) this.illegal(insn);
          const off = this.ramOffset(lo, hi, 1 << f3, this.tlbWrite);
          // Untranslated stores bypass the write TLB, which keeps code pages out of the fast path.
          if (off >= 0 && (this.dataTranslate || this.codePages[off >>> 12] === 0)) {
            switch (f3) {
              case 0: view.setInt8(off, x[s2]); break;
              case 1: view.setInt16(off, x[s2], true); break;
              case 2: view.setInt32(off, x[s2], true); break;
              default: view.setInt32(off, x[s2], true); view.setInt32(off + 4, x[s2 + 1], true);
            }
            break;
          }
          this.store(lo, hi, 1 << f3, x[s2], x[s2 + 1]);
          break;
        }
        case Opcode.StoreFp: this.storeFp(insn, s1, s2, f3); break;
        case Opcode.Amo: this.atomic(insn, d, s1, s2, f3); break;
        case Opcode.Op: { // inline: V8 will not inline a method this size, and OP is hot
          const f7 = insn >>> 25;
          if (f7 === 1) { this.mulDiv(f3, d, s1, s2); break; }
          const alo = x[s1], ahi = x[s1 + 1], blo = x[s2], bhi = x[s2 + 1];
          if (f7 === 0) {
            switch (f3) {
              case 0: { const lo = (alo + blo) | 0; x[d + 1] = (ahi + bhi + ((lo >>> 0) < (alo >>> 0) ? 1 : 0)) | 0; x[d] = lo; break; }
              case 1: this.shiftLeft(d, alo, ahi, blo & 63); break;
              case 2: x[d] = (ahi < bhi || (ahi === bhi && (alo >>> 0) < (blo >>> 0))) ? 1 : 0; x[d + 1] = 0; break;
              case 3: x[d] = ((ahi >>> 0) < (bhi >>> 0) || (ahi === bhi && (alo >>> 0) < (blo >>> 0))) ? 1 : 0; x[d + 1] = 0; break;
              case 4: x[d] = alo ^ blo; x[d + 1] = ahi ^ bhi; break;
              case 5: this.shiftRight(d, alo, ahi, blo & 63); break;
              case 6: x[d] = alo | blo; x[d + 1] = ahi | bhi; break;
              default: x[d] = alo & blo; x[d + 1] = ahi & bhi; break;
            }
          } else if (f7 === 0x20 && f3 === 0) {
            const lo = (alo - blo) | 0;
            x[d + 1] = (ahi - bhi - ((alo >>> 0) < (blo >>> 0) ? 1 : 0)) | 0; x[d] = lo;
          } else if (f7 === 0x20 && f3 === 5) {
            this.shiftRightArith(d, alo, ahi, blo & 63);
          } else {
            this.illegal(insn);
          }
          break;
        }
        case Opcode.Lui: x[d] = insn & ~0xfff; x[d + 1] = x[d] >> 31; break; // LUI
        case Opcode.Op32: {
          const f7 = insn >>> 25, a = x[s1], b = x[s2];
          let r: number;
          if (f7 === 1) r = this.mulDivWord(insn, f3, a, b);
          else if (f7 === 0 && f3 === 0) r = (a + b) | 0;
          else if (f7 === 0x20 && f3 === 0) r = (a - b) | 0;
          else if (f7 === 0 && f3 === 1) r = a << (b & 31);
          else if (f7 === 0 && f3 === 5) r = (a >>> (b & 31)) | 0;
          else if (f7 === 0x20 && f3 === 5) r = a >> (b & 31);
          else this.illegal(insn);
          x[d] = r; x[d + 1] = r >> 31;
          break;
        }
        case Opcode.Madd: case Opcode.Msub: case Opcode.Nmsub: case Opcode.Nmadd: case Opcode.OpFp:
          if (this.fsOff() || !executeFp(this, insn)) this.illegal(insn);
          this.mstatus |= FS_DIRTY;
          break;
        case Opcode.Branch: { // BRANCH
          const alo = x[s1], ahi = x[s1 + 1], blo = x[s2], bhi = x[s2 + 1];
          let taken: boolean;
          switch (f3) {
            case 0: taken = alo === blo && ahi === bhi; break;
            case 1: taken = alo !== blo || ahi !== bhi; break;
            case 4: taken = ahi < bhi || (ahi === bhi && (alo >>> 0) < (blo >>> 0)); break;
            case 5: taken = ahi > bhi || (ahi === bhi && (alo >>> 0) >= (blo >>> 0)); break;
            case 6: taken = (ahi >>> 0) < (bhi >>> 0) || (ahi === bhi && (alo >>> 0) < (blo >>> 0)); break;
            case 7: taken = (ahi >>> 0) > (bhi >>> 0) || (ahi === bhi && (alo >>> 0) >= (blo >>> 0)); break;
            default: this.illegal(insn);
          }
          if (taken) {
            const imm = branchOffset(insn);
            nextLo = (pcLo + imm) | 0;
            nextHi = (pcHi + (imm >> 31) + ((nextLo >>> 0) < (pcLo >>> 0) ? 1 : 0)) | 0;
            if (this.stopAtJump) n = 0;
          }
          break;
        }
        case Opcode.Jalr: { // JALR
          if (f3 !== 0) this.illegal(insn);
          const imm = insn >> 20, alo = x[s1];
          const lo = (alo + imm) | 0;
          const hi = (x[s1 + 1] + (imm >> 31) + ((lo >>> 0) < (alo >>> 0) ? 1 : 0)) | 0;
          x[d] = nextLo; x[d + 1] = nextHi;
          nextLo = lo & ~1; nextHi = hi;
          if (this.stopAtJump) n = 0;
          break;
        }
        case Opcode.Jal: { // JAL
          const imm = jalOffset(insn);
          x[d] = nextLo; x[d + 1] = nextHi;
          nextLo = (pcLo + imm) | 0;
          nextHi = (pcHi + (imm >> 31) + ((nextLo >>> 0) < (pcLo >>> 0) ? 1 : 0)) | 0;
          if (this.stopAtJump) n = 0;
          break;
        }
        case Opcode.System: { // SYSTEM
          if (f3 === 0) {
            const target = this.system(insn);
            if (target) { nextLo = this.pcLo; nextHi = this.pcHi; }
          } else {
            this.csrInstruction(insn, d, s1, f3);
          }
          break;
        }
        default: this.illegal(insn);
      }
      x[0] = 0; x[1] = 0;
      this.pcLo = nextLo; this.pcHi = nextHi;
      this.instret++;
      if (this.breakLoop || this.waiting) return;
    }
  }

  /** Loads that miss the RAM fast path: page walk, page-crossing, MMIO, faults. */
  private loadSlow(insn: number, d: number, f3: number, lo: number, hi: number): void {
    const vlo = this.loadExtended(insn, f3, lo, hi);
    this.x[d] = vlo; this.x[d + 1] = this.tmpHi;
  }

  /** LOAD funct3 `f3` through the full path; returns the low half, the high half in tmpHi. */
  private loadExtended(insn: number, f3: number, lo: number, hi: number): number {
    let vlo: number, vhi: number;
    switch (f3) {
      case 0: vlo = (this.load(lo, hi, 1) << 24) >> 24; vhi = vlo >> 31; break;
      case 1: vlo = (this.load(lo, hi, 2) << 16) >> 16; vhi = vlo >> 31; break;
      case 2: vlo = this.load(lo, hi, 4); vhi = vlo >> 31; break;
      case 3: vlo = this.load(lo, hi, 8); vhi = this.tmpHi; break;
      case 4: vlo = this.load(lo, hi, 1) & 0xff; vhi = 0; break;
      case 5: vlo = this.load(lo, hi, 2) & 0xffff; vhi = 0; break;
      case 6: vlo = this.load(lo, hi, 4); vhi = 0; break;
      default: this.illegal(insn);
    }
    this.tmpHi = vhi;
    return vlo;
  }

  /** FLW/FLD: a single is NaN-boxed (upper half all ones). */
  private loadFp(insn: number, d: number, s1: number, f3: number): void {
    if (this.fsOff() || (f3 !== 2 && f3 !== 3)) this.illegal(insn);
    const imm = insn >> 20, alo = this.x[s1];
    const lo = (alo + imm) | 0;
    const hi = (this.x[s1 + 1] + (imm >> 31) + ((lo >>> 0) < (alo >>> 0) ? 1 : 0)) | 0;
    if (f3 === 2) { this.f[d] = this.load(lo, hi, 4); this.f[d + 1] = -1; } else { this.f[d] = this.load(lo, hi, 8); this.f[d + 1] = this.tmpHi; }
    this.mstatus |= FS_DIRTY;
  }

  /** FSW/FSD. */
  private storeFp(insn: number, s1: number, s2: number, f3: number): void {
    if (this.fsOff() || (f3 !== 2 && f3 !== 3)) this.illegal(insn);
    const imm = ((insn >> 25) << 5) | ((insn >>> 7) & 0x1f), alo = this.x[s1];
    const lo = (alo + imm) | 0;
    const hi = (this.x[s1 + 1] + (imm >> 31) + ((lo >>> 0) < (alo >>> 0) ? 1 : 0)) | 0;
    this.store(lo, hi, 1 << f3, this.f[s2], this.f[s2 + 1]);
  }

  private shiftLeft(d: number, lo: number, hi: number, s: number): void {
    if (s === 0) { this.x[d] = lo; this.x[d + 1] = hi; } else if (s < 32) { this.x[d + 1] = (hi << s) | (lo >>> (32 - s)); this.x[d] = lo << s; } else { this.x[d + 1] = lo << (s - 32); this.x[d] = 0; }
  }
  private shiftRight(d: number, lo: number, hi: number, s: number): void {
    if (s === 0) { this.x[d] = lo; this.x[d + 1] = hi; } else if (s < 32) { this.x[d] = (lo >>> s) | (hi << (32 - s)); this.x[d + 1] = hi >>> s; } else { this.x[d] = hi >>> (s - 32); this.x[d + 1] = 0; }
  }
  private shiftRightArith(d: number, lo: number, hi: number, s: number): void {
    if (s === 0) { this.x[d] = lo; this.x[d + 1] = hi; } else if (s < 32) { this.x[d] = (lo >>> s) | (hi << (32 - s)); this.x[d + 1] = hi >> s; } else { this.x[d] = hi >> (s - 32); this.x[d + 1] = hi >> 31; }
  }

  /** M extension, 64-bit: MUL, MULH[S][U], DIV[U], REM[U]. */
  private mulDiv(f3: number, d: number, s1: number, s2: number): void {
    const x = this.x;
    const alo = x[s1], ahi = x[s1 + 1], blo = x[s2], bhi = x[s2 + 1];
    let lo: number;
    switch (f3) {
      case 0: lo = I64.mul(alo, ahi, blo, bhi); break;
      case 1: lo = I64.mulh(alo, ahi, blo, bhi); break;
      case 2: lo = I64.mulhsu(alo, ahi, blo, bhi); break;
      case 3: lo = I64.mulhu(alo, ahi, blo, bhi); break;
      case 4: lo = I64.div(alo, ahi, blo, bhi); break;
      case 5: lo = I64.divu(alo, ahi, blo, bhi); break;
      case 6: lo = I64.rem(alo, ahi, blo, bhi); break;
      default: lo = I64.remu(alo, ahi, blo, bhi); break;
    }
    x[d] = lo; x[d + 1] = I64.hi64;
  }

  /** M extension, 32-bit (the W forms); the caller sign-extends the result. */
  private mulDivWord(insn: number, f3: number, a: number, b: number): number {
    switch (f3) {
      case 0: return Math.imul(a, b);
      case 4: return I64.divw(a, b);
      case 5: return I64.divuw(a, b);
      case 6: return I64.remw(a, b);
      case 7: return I64.remuw(a, b);
      default: return this.illegal(insn);
    }
  }

  /** A extension: LR/SC and AMOs, 32- and 64-bit. */
  private atomic(insn: number, d: number, s1: number, s2: number, f3: number): void {
    if (f3 !== 2 && f3 !== 3) this.illegal(insn);
    const x = this.x;
    const width = f3 === 2 ? 4 : 8;
    const lo = x[s1], hi = x[s1 + 1];
    const op = insn >>> 27;
    if (((AMO_FUNCT5 >>> op) & 1) === 0) this.illegal(insn);
    if ((lo & (width - 1)) !== 0) {
      this.raise(op === 2 ? Exception.LoadMisaligned : Exception.StoreMisaligned, lo, hi);
    }
    if (op === 2) { // LR
      if (((insn >>> 20) & 31) !== 0) this.illegal(insn);
      const pa = this.translate(lo, hi, Access.Read);
      const v = this.loadPhys(pa, width, lo, hi);
      x[d] = v; x[d + 1] = width === 4 ? v >> 31 : this.tmpHi;
      const off = pa - this.ramBase;
      this.reservation = off >= 0 && off < this.ramSize ? off : -1;
      this.state[RESERVED_LO] = v; this.state[RESERVED_HI] = width === 4 ? 0 : this.tmpHi;
      return;
    }
    const pa = this.translate(lo, hi, Access.Write);
    const off = pa - this.ramBase;
    const inRam = off >= 0 && off + width <= this.ramSize;
    if (op === 3) { // SC
      // It succeeds while the reservation holds and memory still has the value the LR read: with
      // harts on other threads as one compare-and-swap (QEMU's approach), so a store by one of
      // them in between makes it fail.
      let ok = this.reservation >= 0 && this.reservation === off && inRam;
      this.reservation = -1;
      if (ok && !this.env.concurrent) {
        const v = this.loadPhys(pa, width, lo, hi);
        ok = v === this.state[RESERVED_LO] && (width === 4 || this.tmpHi === this.state[RESERVED_HI]);
        if (ok) this.storePhys(pa, width, x[s2], x[s2 + 1], lo, hi);
      } else if (ok) {
        const expectLo = this.state[RESERVED_LO], expectHi = this.state[RESERVED_HI];
        if (width === 4) ok = Atomics.compareExchange(this.ram32, off >>> 2, expectLo, x[s2]) === expectLo;
        else {
          const expect = I64.toBig(expectLo, expectHi);
          ok = Atomics.compareExchange(this.ram64, off >>> 3, expect, I64.toBig(x[s2], x[s2 + 1])) === expect;
        }
        if (ok && this.codePages[off >>> 12] !== 0) this.storeToCode(off);
      }
      x[d] = ok ? 0 : 1; x[d + 1] = 0;
      return;
    }
    // An AMO where nothing answers is a store/AMO access fault, not the load fault of its read half.
    if (!inRam && !this.bus.isMmio(pa, width)) this.accessFault(Access.Write, lo, hi);
    const blo = x[s2], bhi = width === 4 ? x[s2] >> 31 : x[s2 + 1];
    if (inRam && this.env.concurrent) {
      // Atomic on RAM for harts on other threads: a compare-and-swap loop around the operation
      // (on one thread, the plain read and write below are atomic already).
      for (;;) {
        let olo: number, ohi: number, old64 = 0n;
        if (width === 4) { olo = Atomics.load(this.ram32, off >>> 2); ohi = olo >> 31; } else {
          old64 = Atomics.load(this.ram64, off >>> 3);
          olo = Number(BigInt.asIntN(32, old64)); ohi = Number(old64 >> 32n);
        }
        const r = amoResult(op, olo, ohi, blo, bhi);
        if (r === null) this.illegal(insn);
        const swapped = width === 4
          ? Atomics.compareExchange(this.ram32, off >>> 2, olo, r[0]) === olo
          : Atomics.compareExchange(this.ram64, off >>> 3, old64, I64.toBig(r[0], r[1])) === old64;
        if (!swapped) continue;
        if (this.codePages[off >>> 12] !== 0) this.storeToCode(off);
        x[d] = olo; x[d + 1] = ohi;
        return;
      }
    }
    const olo = this.loadPhys(pa, width, lo, hi);
    const ohi = width === 4 ? olo >> 31 : this.tmpHi;
    const r = amoResult(op, olo, ohi, blo, bhi);
    if (r === null) this.illegal(insn);
    this.storePhys(pa, width, r[0], r[1], lo, hi);
    x[d] = olo; x[d + 1] = ohi;
  }

  /** ECALL, EBREAK, xRET, WFI, SFENCE.VMA. Returns true when it set the pc itself. */
  private system(insn: number): boolean {
    switch (insn) {
      case 0x00000073: { // ECALL
        if (this.priv === Priv.Supervisor && this.env.supervisorEcall?.(this)) return false;
        const cause = this.priv === Priv.User ? Exception.EcallFromU
          : this.priv === Priv.Supervisor ? Exception.EcallFromS : Exception.EcallFromM;
        return this.raise(cause, 0, 0);
      }
      case 0x00100073: return this.raise(Exception.Breakpoint, this.pcLo, this.pcHi);
      case 0x10200073: { // SRET
        if (this.priv === Priv.User || (this.priv === Priv.Supervisor && (this.mstatus & Mstatus.TSR))) this.illegal(insn);
        let s = this.mstatus;
        const spp = (s & Mstatus.SPP) ? Priv.Supervisor : Priv.User;
        s = (s & Mstatus.SPIE) ? s | Mstatus.SIE : s & ~Mstatus.SIE;
        s = (s | Mstatus.SPIE) & ~(Mstatus.SPP | Mstatus.MPRV);
        this.mstatus = s;
        this.priv = spp;
        this.pcLo = this.sepcLo; this.pcHi = this.sepcHi;
        this.afterPrivChange();
        return true;
      }
      case 0x30200073: { // MRET
        if (this.priv !== Priv.Machine) this.illegal(insn);
        let s = this.mstatus;
        const mpp = ((s >>> Mstatus.MPP_SHIFT) & 3) as Priv;
        s = (s & Mstatus.MPIE) ? s | Mstatus.MIE : s & ~Mstatus.MIE;
        s = (s | Mstatus.MPIE) & ~Mstatus.MPP;
        if (mpp !== Priv.Machine) s &= ~Mstatus.MPRV;
        this.mstatus = s;
        this.priv = mpp;
        this.pcLo = this.mepcLo; this.pcHi = this.mepcHi;
        this.afterPrivChange();
        return true;
      }
      case 0x10500073: // WFI
        if (this.priv === Priv.User || (this.priv === Priv.Supervisor && (this.mstatus & Mstatus.TW))) this.illegal(insn);
        if (!this.hasPendingInterrupt()) this.waiting = true;
        return false;
      default:
        if ((insn >>> 25) === 0x09 && ((insn >>> 7) & 31) === 0) { // SFENCE.VMA
          if (this.priv === Priv.User || (this.priv === Priv.Supervisor && (this.mstatus & Mstatus.TVM))) this.illegal(insn);
          const rs1 = (insn >>> 15) & 31;
          const lo = this.x[2 * rs1], hi = this.x[2 * rs1 + 1];
          if (rs1 === 0) this.flushTlb(); else this.flushTlbPage(lo, hi);
          // Compiled code chains within its page without looking at the TLB: stop it when the
          // mapping of that page may have changed.
          if (rs1 === 0 || ((lo >>> 12) === (this.pcLo >>> 12) && hi === this.pcHi)) this.breakLoop = true;
          return false;
        }
        return this.illegal(insn);
    }
  }

  private afterPrivChange(): void {
    this.reservation = -1;
    this.breakLoop = true; // newly enabled interrupts are taken before the next instruction
    this.updateTranslation();
  }

  private csrInstruction(insn: number, d: number, s1: number, f3: number): void {
    const csr = insn >>> 20;
    const rs1 = s1 >> 1;
    if ((f3 & 3) === 0 || this.priv < ((csr >>> 8) & 3)) this.illegal(insn); // funct3 4 is reserved
    const imm = f3 >= 5;
    const srcLo = imm ? rs1 : this.x[s1], srcHi = imm ? 0 : this.x[s1 + 1];
    const kind = f3 & 3; // 1 RW, 2 RS, 3 RC
    const writes = kind === 1 || rs1 !== 0;
    if (writes && (csr >>> 10) === 3) this.illegal(insn);
    let oldLo = 0, oldHi = 0;
    if (kind !== 1 || d !== 0) {
      const v = this.readCsr(csr);
      if (v === undefined) this.illegal(insn);
      oldLo = v; oldHi = this.tmpHi;
    } else if (this.readCsr(csr) === undefined) {
      this.illegal(insn);
    }
    if (writes) {
      let lo = srcLo, hi = srcHi;
      if (kind === 2) { lo = oldLo | srcLo; hi = oldHi | srcHi; } else if (kind === 3) { lo = oldLo & ~srcLo; hi = oldHi & ~srcHi; }
      if (!this.writeCsr(csr, lo, hi)) this.illegal(insn);
    }
    this.x[d] = oldLo; this.x[d + 1] = oldHi;
  }
}
