/**
 * The shared memory through which a VM's main thread (devices, interrupt controllers, the event
 * loop) and its hart threads talk when each hart runs on a thread of its own (hart-thread.ts,
 * hart-threads.ts): a block of int32 words per hart, a few machine-wide words, each hart's
 * start address for SBI HSM and its retired-instruction count.
 *
 * Every cross-thread event is a word changed with Atomics, followed by a bump of the target's
 * Wake word and Atomics.notify on it; a hart's thread reads Wake before it looks at its words
 * and sleeps with Atomics.wait on that value, so no event is lost between the look and the sleep.
 */
import { Irq } from '../cpu/csr.js';

export const enum HartWord {
  /** Bumped (with a notify) whenever something for this hart changed. */
  Wake = 0,
  /** Interrupt wires driven by the main thread's devices: bits Irq.MEI, SEI, MTI, MSI. */
  Lines = 1,
  /** Supervisor software interrupts sent by other harts (bit Irq.SSI), taken with an exchange. */
  SoftIrq = 2,
  /** The hart's SBI HSM state (sbi.ts HartState). */
  Hsm = 3,
  /** Remote fences asked of this hart (a count), and the count it has completed. */
  FenceReq = 4,
  FenceAck = 5,
  /**
   * 1 while the hart runs no instruction (asleep in WFI, stopped, paused) and will look at its
   * requests before it runs one: a remote fence need not wait for it then.
   */
  Asleep = 6,
  /** The mailbox for calls into the main thread (MailState; the call; its arguments; the answer). */
  Mail = 7,
  MailOp = 8,
  MailA = 9,
  MailB = 10,
  MailC = 11,
  MailD = 12,
  MailResult = 13,
}
/** int32 words per hart: 64 bytes, a cache line, so that harts' threads do not write each other's lines. */
const HART_WORDS = 16;
/** float64s per hart's retired-instruction count: a cache line each. */
const INSTRET_STRIDE = 8;

/** The machine-wide words, after the harts'. */
export const enum MachineWord {
  /** RunState. */
  Run = 0,
  /** Hart threads that stopped for the current pause. */
  Parked = 1,
  /** Hart threads that ended. */
  Ended = 2,
  /** Harts the guest may start (SBI HSM refuses the others): the VM's vCPU allotment. */
  Allotted = 3,
}
const MACHINE_WORDS = 4;

export const enum RunState { Running = 0, Paused = 1, Stopped = 2 }

export const enum MailState { Idle = 0, Request = 1 }

/** Calls a hart thread makes into the main thread. */
export const enum MailOp {
  /** A device load: A = address low, B = high, C = width; answer: the value (MailD: 1 when no device answers). */
  Load = 1,
  /** A device store: A, B = address, C = width, D = value; answer: 1 when a device answered. */
  Store = 2,
  /** SBI system reset: A = type, B = reason. */
  SystemReset = 4,
  /** A trap reached M-mode under the host firmware: A = cause, B = 1 for an interrupt, C, D = pc. */
  MachineTrap = 5,
}

/** The interrupt wires the main thread drives (as a list, and as mip bits). */
export const HARDWARE_WIRES = [Irq.MEI, Irq.SEI, Irq.MTI, Irq.MSI];
export const HARDWARE_LINES = HARDWARE_WIRES.reduce((bits, irq) => bits | (1 << irq), 0);

export class HartControl {
  readonly words: Int32Array;
  /** Per hart: the start address and opaque value of SBI hart_start. */
  readonly starts: BigInt64Array;
  /**
   * Per hart: instructions retired, as its thread last published (at INSTRET_STRIDE: each on a
   * cache line of its own, as every hart thread writes its count after every run slice).
   */
  private readonly instrets: Float64Array;
  private readonly machineBase: number;

  constructor(readonly shared: SharedArrayBuffer, readonly harts: number) {
    const int32s = harts * HART_WORDS + MACHINE_WORDS;
    const startsAt = Math.ceil(int32s * 4 / 8) * 8;
    this.words = new Int32Array(shared, 0, int32s);
    this.starts = new BigInt64Array(shared, startsAt, harts * 2);
    this.instrets = new Float64Array(shared, startsAt + harts * 16, harts * INSTRET_STRIDE);
    this.machineBase = harts * HART_WORDS;
  }

  static create(harts: number): HartControl {
    const int32s = harts * HART_WORDS + MACHINE_WORDS;
    return new HartControl(new SharedArrayBuffer(Math.ceil(int32s * 4 / 8) * 8 + harts * (16 + 8 * INSTRET_STRIDE)), harts);
  }

  instret(id: number): number { return this.instrets[id * INSTRET_STRIDE]; }
  setInstret(id: number, n: number): void { this.instrets[id * INSTRET_STRIDE] = n; }

  /** Index in `words` of hart `id`'s word `w`. */
  at(id: number, w: HartWord): number { return id * HART_WORDS + w; }

  machineAt(w: MachineWord): number { return this.machineBase + w; }

  get(id: number, w: HartWord): number { return Atomics.load(this.words, this.at(id, w)); }

  set(id: number, w: HartWord, value: number): void { Atomics.store(this.words, this.at(id, w), value); }

  get run(): RunState { return Atomics.load(this.words, this.machineAt(MachineWord.Run)); }

  get allotted(): number { return Atomics.load(this.words, this.machineAt(MachineWord.Allotted)); }
  set allotted(n: number) { Atomics.store(this.words, this.machineAt(MachineWord.Allotted), n); }

  wake(id: number): void {
    Atomics.add(this.words, this.at(id, HartWord.Wake), 1);
    Atomics.notify(this.words, this.at(id, HartWord.Wake));
  }

  wakeAll(): void {
    for (let id = 0; id < this.harts; id++) this.wake(id);
  }

  /** Drives interrupt wire `irq` of hart `id`; a raised wire wakes it. */
  setLine(id: number, irq: Irq, level: boolean): void {
    const i = this.at(id, HartWord.Lines);
    if (level) { Atomics.or(this.words, i, 1 << irq); this.wake(id); } else Atomics.and(this.words, i, ~(1 << irq));
  }

  setRun(state: RunState): void {
    Atomics.store(this.words, this.machineAt(MachineWord.Run), state);
    // Parked threads wait on this word (a resume), running and sleeping ones on their Wake words.
    Atomics.notify(this.words, this.machineAt(MachineWord.Run));
    this.wakeAll();
  }
}
