/**
 * The contract between the bus and every memory-mapped device.
 *
 * The CPU never sees a device object: it issues loads and stores to the bus, and the bus
 * routes those that fall in a device's window here, with the offset relative to the window.
 * 8-byte accesses are split by the bus into two 4-byte accesses (low word first), which is
 * what the devices on this board (all 32-bit register files) expect.
 */
export type AccessWidth = 1 | 2 | 4;

export interface MmioDevice {
  /** Short name for logs, e.g. "uart0". */
  readonly name: string;
  /** Size of the register window in bytes. */
  readonly size: number;
  /** Returns the register value, zero-extended to `width` bytes (unsigned). */
  read(offset: number, width: AccessWidth): number;
  /** `value` holds the low `width` bytes of the store. */
  write(offset: number, width: AccessWidth, value: number): void;
}

/** A level-triggered interrupt wire from a device to an interrupt controller. */
export interface IrqLine {
  set(level: boolean): void;
}
