/**
 * A 16550A UART as Linux's 8250 driver sees it on QEMU virt ("ns16550a", reg-shift 0,
 * byte-wide registers). Transmission is instantaneous: a byte written to THR goes to
 * `output` at once, so THR/the transmitter always read as empty. Reception has a 16-byte
 * FIFO fed from a host-side queue as the guest drains it, so host input is never lost to
 * overrun (only loopback traffic can overrun).
 *
 * Interrupt sources, highest priority first, as on the real part (and QEMU's serial.c):
 *   line status (overrun etc., ELSI) > character timeout / received data (ERBFI)
 *   > THR empty (ETBEI) > modem status (EDSSI).
 * The 8250 driver relies on the 16550's THR-empty quirks: the interrupt is raised when
 * ETBEI is turned on while THR is empty, cleared by reading IIR while IIR reports it or
 * by writing THR, and raised again when the written byte has left.
 *
 * The character timeout has no timer behind it: host input arrives in bursts, so once
 * the host queue is drained into the FIFO no further character is coming, and data left
 * below the trigger level signals a timeout immediately.
 */
import type { AccessWidth, IrqLine, MmioDevice } from './mmio.js';
import { decodeBytes, encodeBytes, savedBool, savedInt, savedObject, SnapshotStateError } from '../hw/snapshot-state.js';

/** Register offsets (reg-shift 0). The DLAB bit of LCR remaps offsets 0 and 1. */
export enum UartReg {
  /** RBR (read) / THR (write); DLL when DLAB = 1. */
  Data = 0,
  /** IER; DLM when DLAB = 1. */
  Ier = 1,
  /** IIR (read) / FCR (write). */
  IirFcr = 2,
  Lcr = 3,
  Mcr = 4,
  Lsr = 5,
  Msr = 6,
  Scr = 7,
}

export enum Ier {
  ReceivedData = 0x01,
  ThrEmpty = 0x02,
  LineStatus = 0x04,
  ModemStatus = 0x08,
}

/** IIR interrupt identification (bits 0-3) and the FIFOs-enabled flag (bits 6-7). */
export enum Iir {
  NoInterrupt = 0x01,
  ModemStatus = 0x00,
  ThrEmpty = 0x02,
  ReceivedData = 0x04,
  LineStatus = 0x06,
  CharTimeout = 0x0c,
  FifosEnabled = 0xc0,
}

export enum Fcr {
  Enable = 0x01,
  ClearRx = 0x02,
  ClearTx = 0x04,
  DmaMode = 0x08,
  /** Bits 6-7 select the RX trigger level. */
  TriggerMask = 0xc0,
}

export enum Lcr {
  Dlab = 0x80,
}

export enum Mcr {
  Dtr = 0x01,
  Rts = 0x02,
  Out1 = 0x04,
  Out2 = 0x08,
  Loopback = 0x10,
}

export enum Lsr {
  DataReady = 0x01,
  Overrun = 0x02,
  Parity = 0x04,
  Framing = 0x08,
  Break = 0x10,
  ThrEmpty = 0x20,
  TransmitterEmpty = 0x40,
  FifoError = 0x80,
}

export enum Msr {
  DeltaCts = 0x01,
  DeltaDsr = 0x02,
  TrailingEdgeRi = 0x04,
  DeltaDcd = 0x08,
  Cts = 0x10,
  Dsr = 0x20,
  Ri = 0x40,
  Dcd = 0x80,
}

const FIFO_SIZE = 16;
const RX_TRIGGER_LEVELS = [1, 4, 8, 14];
/** LSR bits that raise a line status interrupt and are cleared by reading LSR. */
const LSR_ERRORS = Lsr.Overrun | Lsr.Parity | Lsr.Framing | Lsr.Break;
/** The host console is always connected and ready: carrier, data set ready, clear to send. */
const HOST_MODEM_STATUS = Msr.Dcd | Msr.Dsr | Msr.Cts;
/** Host input beyond this many queued bytes makes canReceive() false. */
const HOST_QUEUE_HIGH_WATER = 64 * 1024;

/** What Uart16550.save() returns: plain JSON. */
export interface UartState {
  ier: number; lcr: number; mcr: number; scr: number; divisor: number; fifoControl: number;
  lineErrors: number; modemStatus: number; thrInterrupt: boolean; irqLevel: boolean;
  /** Receive FIFO contents, oldest first (base64). */
  rx: string;
  /** Host input not yet moved into the FIFO (base64). */
  hostInput: string;
}

export class Uart16550 implements MmioDevice {
  readonly name = 'uart0';
  readonly size = 0x100;

  private ier = 0;
  private lcr = 0;
  private mcr = Mcr.Out2;
  private scr = 0;
  private divisor = 12;
  private fifoControl = 0;
  /** Pending line status error bits (a subset of LSR_ERRORS). */
  private lineErrors = 0;
  private modemStatus: number = HOST_MODEM_STATUS;
  /** The THR-empty interrupt condition, with the acknowledge-by-IIR-read quirk. */
  private thrInterrupt = false;
  private irqLevel = false;

  private readonly rxFifo = new Uint8Array(FIFO_SIZE);
  private rxHead = 0;
  private rxCount = 0;

  private readonly hostQueue = new ByteQueue();

  constructor(
    private readonly irq: IrqLine,
    private readonly output: (byte: number) => void,
  ) {}

  /** Queues host input for the guest; never drops bytes (see canReceive for backpressure). */
  receive(bytes: Uint8Array): void {
    this.hostQueue.push(bytes);
    this.pumpHostInput();
    this.updateIrq();
  }

  /** False once enough input is queued that the caller should pause its source. */
  canReceive(): boolean {
    return this.hostQueue.length < HOST_QUEUE_HIGH_WATER;
  }

  /** The registers, the receive FIFO and queued host input, for a snapshot (docs/SNAPSHOT.md). */
  save(): UartState {
    const pending = new Uint8Array(this.hostQueue.length);
    for (let i = 0; i < pending.length; i++) pending[i] = this.hostQueue.peek(i);
    const rx = new Uint8Array(this.rxCount);
    for (let i = 0; i < rx.length; i++) rx[i] = this.rxFifo[(this.rxHead + i) % FIFO_SIZE];
    return {
      ier: this.ier, lcr: this.lcr, mcr: this.mcr, scr: this.scr, divisor: this.divisor, fifoControl: this.fifoControl,
      lineErrors: this.lineErrors, modemStatus: this.modemStatus, thrInterrupt: this.thrInterrupt, irqLevel: this.irqLevel,
      rx: encodeBytes(rx), hostInput: encodeBytes(pending),
    };
  }

  /** Restores save()'s state; the interrupt line's level is part of it (the PLIC restores its own view). */
  restore(saved: unknown): void {
    const s = savedObject('uart', saved);
    const byte = (k: string): number => savedInt(`uart.${k}`, s[k], 0, 0xff);
    const rx = decodeBytes('uart.rx', s.rx);
    if (rx.length > FIFO_SIZE) throw new SnapshotStateError(`uart.rx: ${rx.length} bytes exceed the ${FIFO_SIZE}-byte FIFO`);
    this.ier = byte('ier'); this.lcr = byte('lcr'); this.mcr = byte('mcr'); this.scr = byte('scr');
    this.divisor = savedInt('uart.divisor', s.divisor, 0, 0xffff);
    this.fifoControl = byte('fifoControl'); this.lineErrors = byte('lineErrors'); this.modemStatus = byte('modemStatus');
    this.thrInterrupt = savedBool('uart.thrInterrupt', s.thrInterrupt);
    this.irqLevel = savedBool('uart.irqLevel', s.irqLevel);
    this.rxFifo.set(rx);
    this.rxHead = 0;
    this.rxCount = rx.length;
    this.hostQueue.clear();
    this.hostQueue.push(decodeBytes('uart.hostInput', s.hostInput));
  }

  /** Wider accesses act on the byte register at `offset` (its value zero-extended). */
  read(offset: number, _width: AccessWidth): number {
    switch (offset) {
      case UartReg.Data:
        return this.dlab ? this.divisor & 0xff : this.readRbr();
      case UartReg.Ier:
        return this.dlab ? this.divisor >> 8 : this.ier;
      case UartReg.IirFcr:
        return this.readIir();
      case UartReg.Lcr:
        return this.lcr;
      case UartReg.Mcr:
        return this.mcr;
      case UartReg.Lsr:
        return this.readLsr();
      case UartReg.Msr:
        return this.readMsr();
      case UartReg.Scr:
        return this.scr;
      default:
        return 0;
    }
  }

  write(offset: number, _width: AccessWidth, value: number): void {
    value &= 0xff;
    switch (offset) {
      case UartReg.Data:
        if (this.dlab) this.divisor = (this.divisor & 0xff00) | value;
        else this.writeThr(value);
        break;
      case UartReg.Ier:
        if (this.dlab) this.divisor = (this.divisor & 0xff) | (value << 8);
        else this.writeIer(value);
        break;
      case UartReg.IirFcr:
        this.writeFcr(value);
        break;
      case UartReg.Lcr:
        this.lcr = value;
        break;
      case UartReg.Mcr:
        this.writeMcr(value);
        break;
      case UartReg.Scr:
        this.scr = value;
        break;
      // LSR and MSR writes (factory test) are ignored, as are offsets past the registers.
    }
  }

  private get dlab(): boolean {
    return (this.lcr & Lcr.Dlab) !== 0;
  }

  private get fifoEnabled(): boolean {
    return (this.fifoControl & Fcr.Enable) !== 0;
  }

  private get loopback(): boolean {
    return (this.mcr & Mcr.Loopback) !== 0;
  }

  /** Without FIFOs the receiver is a single holding register. */
  private get rxCapacity(): number {
    return this.fifoEnabled ? FIFO_SIZE : 1;
  }

  private get rxTriggerLevel(): number {
    return RX_TRIGGER_LEVELS[(this.fifoControl & Fcr.TriggerMask) >> 6];
  }

  private readRbr(): number {
    if (this.rxCount === 0) return 0;
    const byte = this.rxFifo[this.rxHead];
    this.rxHead = (this.rxHead + 1) % FIFO_SIZE;
    this.rxCount--;
    this.pumpHostInput();
    this.updateIrq();
    return byte;
  }

  private writeThr(byte: number): void {
    if (this.loopback) this.pushRx(byte);
    else this.output(byte);
    // The byte has left at once, so THR is empty again: the interrupt is (re)raised.
    this.thrInterrupt = true;
    this.updateIrq();
  }

  private writeIer(value: number): void {
    const ier = value & 0x0f;
    const changed = ier ^ this.ier;
    this.ier = ier;
    // Turning ETBEI on with THR empty raises THRE even if an IIR read had acknowledged
    // it; the 8250 driver's startup test and its transmit kick depend on this.
    if (changed & Ier.ThrEmpty) this.thrInterrupt = (ier & Ier.ThrEmpty) !== 0;
    this.updateIrq();
  }

  private readIir(): number {
    const id = this.interruptId();
    // Reading IIR while it reports THR empty acknowledges that interrupt.
    if (id === Iir.ThrEmpty) {
      this.thrInterrupt = false;
      this.updateIrq();
    }
    return id | (this.fifoEnabled ? Iir.FifosEnabled : 0);
  }

  private writeFcr(value: number): void {
    // Enabling or disabling the FIFOs also clears them.
    if ((value ^ this.fifoControl) & Fcr.Enable) value |= Fcr.ClearRx | Fcr.ClearTx;
    if (value & Fcr.ClearRx) {
      this.rxHead = 0;
      this.rxCount = 0;
    }
    if (value & Fcr.ClearTx) this.thrInterrupt = true;
    this.fifoControl = value & (Fcr.Enable | Fcr.DmaMode | Fcr.TriggerMask);
    this.pumpHostInput();
    this.updateIrq();
  }

  private readLsr(): number {
    const lsr =
      (this.rxCount > 0 ? Lsr.DataReady : 0) | this.lineErrors | Lsr.ThrEmpty | Lsr.TransmitterEmpty;
    if (this.lineErrors !== 0) {
      this.lineErrors = 0;
      this.updateIrq();
    }
    return lsr;
  }

  private readMsr(): number {
    const msr = this.modemStatus;
    if (msr & 0x0f) {
      this.modemStatus &= 0xf0;
      this.updateIrq();
    }
    return msr;
  }

  private writeMcr(value: number): void {
    this.mcr = value & 0x1f;
    this.setModemLines(this.loopback ? loopbackModemStatus(this.mcr) : HOST_MODEM_STATUS);
    // Leaving loopback reconnects the receiver to the host.
    this.pumpHostInput();
    this.updateIrq();
  }

  /** Sets the modem status lines, latching the delta bits for the ones that changed. */
  private setModemLines(lines: number): void {
    const old = this.modemStatus;
    const changed = (old ^ lines) & 0xf0;
    let deltas = old & 0x0f;
    if (changed & Msr.Cts) deltas |= Msr.DeltaCts;
    if (changed & Msr.Dsr) deltas |= Msr.DeltaDsr;
    if (changed & Msr.Dcd) deltas |= Msr.DeltaDcd;
    if (old & Msr.Ri && !(lines & Msr.Ri)) deltas |= Msr.TrailingEdgeRi;
    this.modemStatus = lines | deltas;
  }

  private pushRx(byte: number): void {
    if (this.rxCount >= this.rxCapacity) {
      this.lineErrors |= Lsr.Overrun;
      return;
    }
    this.rxFifo[(this.rxHead + this.rxCount) % FIFO_SIZE] = byte;
    this.rxCount++;
  }

  /** Moves queued host input into the receiver while it has room. */
  private pumpHostInput(): void {
    if (this.loopback) return;
    while (this.hostQueue.length > 0 && this.rxCount < this.rxCapacity) {
      this.pushRx(this.hostQueue.shift());
    }
  }

  /** The highest-priority pending interrupt, as IIR bits 0-3. */
  private interruptId(): Iir {
    if (this.ier & Ier.LineStatus && this.lineErrors !== 0) return Iir.LineStatus;
    if (this.ier & Ier.ReceivedData && this.rxCount > 0) {
      if (!this.fifoEnabled || this.rxCount >= this.rxTriggerLevel) return Iir.ReceivedData;
      return Iir.CharTimeout;
    }
    if (this.ier & Ier.ThrEmpty && this.thrInterrupt) return Iir.ThrEmpty;
    if (this.ier & Ier.ModemStatus && this.modemStatus & 0x0f) return Iir.ModemStatus;
    return Iir.NoInterrupt;
  }

  private updateIrq(): void {
    const level = this.interruptId() !== Iir.NoInterrupt;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq.set(level);
    }
  }
}

/** In loopback the modem outputs drive the inputs: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD. */
function loopbackModemStatus(mcr: number): number {
  return (
    (mcr & Mcr.Rts ? Msr.Cts : 0) |
    (mcr & Mcr.Dtr ? Msr.Dsr : 0) |
    (mcr & Mcr.Out1 ? Msr.Ri : 0) |
    (mcr & Mcr.Out2 ? Msr.Dcd : 0)
  );
}

/** An unbounded FIFO of bytes in a ring buffer that doubles when full. */
class ByteQueue {
  private buffer = new Uint8Array(256);
  private head = 0;
  length = 0;

  push(bytes: Uint8Array): void {
    if (this.length + bytes.length > this.buffer.length) this.grow(this.length + bytes.length);
    const capacity = this.buffer.length;
    const tail = (this.head + this.length) % capacity;
    const firstPart = Math.min(bytes.length, capacity - tail);
    this.buffer.set(bytes.subarray(0, firstPart), tail);
    this.buffer.set(bytes.subarray(firstPart), 0);
    this.length += bytes.length;
  }

  /** The byte `i` places from the oldest, without removing it. */
  peek(i: number): number {
    return this.buffer[(this.head + i) % this.buffer.length];
  }

  clear(): void {
    this.head = 0;
    this.length = 0;
  }

  /** Removes and returns the oldest byte; the queue must not be empty. */
  shift(): number {
    const byte = this.buffer[this.head];
    this.head = (this.head + 1) % this.buffer.length;
    this.length--;
    return byte;
  }

  private grow(needed: number): void {
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    for (let i = 0; i < this.length; i++) grown[i] = this.buffer[(this.head + i) % this.buffer.length];
    this.buffer = grown;
    this.head = 0;
  }
}
