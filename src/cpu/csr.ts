/** CSR addresses this hart implements (RISC-V privileged spec, table 2.2-2.6). */
export enum Csr {
  fflags = 0x001, frm = 0x002, fcsr = 0x003,
  cycle = 0xc00, time = 0xc01, instret = 0xc02,
  sstatus = 0x100, sie = 0x104, stvec = 0x105, scounteren = 0x106, senvcfg = 0x10a,
  sscratch = 0x140, sepc = 0x141, scause = 0x142, stval = 0x143, sip = 0x144,
  stimecmp = 0x14d, satp = 0x180,
  mvendorid = 0xf11, marchid = 0xf12, mimpid = 0xf13, mhartid = 0xf14, mconfigptr = 0xf15,
  mstatus = 0x300, misa = 0x301, medeleg = 0x302, mideleg = 0x303, mie = 0x304, mtvec = 0x305,
  mcounteren = 0x306, menvcfg = 0x30a, mcountinhibit = 0x320,
  mscratch = 0x340, mepc = 0x341, mcause = 0x342, mtval = 0x343, mip = 0x344,
  pmpcfg0 = 0x3a0, pmpaddr0 = 0x3b0,
  mcycle = 0xb00, minstret = 0xb02,
  tselect = 0x7a0, tdata1 = 0x7a1,
}

/** Privilege levels as encoded in mstatus.MPP. */
export enum Priv { User = 0, Supervisor = 1, Machine = 3 }

/** mstatus bits (low word). */
export const enum Mstatus {
  SIE = 1 << 1, MIE = 1 << 3, SPIE = 1 << 5, MPIE = 1 << 7, SPP = 1 << 8,
  MPP_SHIFT = 11, MPP = 3 << 11, FS_SHIFT = 13, FS = 3 << 13,
  MPRV = 1 << 17, SUM = 1 << 18, MXR = 1 << 19, TVM = 1 << 20, TW = 1 << 21, TSR = 1 << 22,
}

/** Bits of mstatus (low word) that software can write; the rest are read-only zero or fixed. */
export const MSTATUS_WRITABLE = Mstatus.SIE | Mstatus.MIE | Mstatus.SPIE | Mstatus.MPIE | Mstatus.SPP |
  Mstatus.MPP | Mstatus.FS | Mstatus.MPRV | Mstatus.SUM | Mstatus.MXR | Mstatus.TVM | Mstatus.TW | Mstatus.TSR;
/** The subset of mstatus visible through sstatus. */
export const SSTATUS_MASK = Mstatus.SIE | Mstatus.SPIE | Mstatus.SPP | Mstatus.FS | Mstatus.SUM | Mstatus.MXR;
/** mstatus high word: UXL = SXL = 2 (64-bit), fixed. SD (bit 63) is computed from FS. */
export const MSTATUS_HI_FIXED = 0xa;

/** Interrupt numbers (mip/mie bit positions). */
export const enum Irq { SSI = 1, MSI = 3, STI = 5, MTI = 7, SEI = 9, MEI = 11 }
export const SUPERVISOR_INTERRUPTS = (1 << Irq.SSI) | (1 << Irq.STI) | (1 << Irq.SEI);
export const ALL_INTERRUPTS = SUPERVISOR_INTERRUPTS | (1 << Irq.MSI) | (1 << Irq.MTI) | (1 << Irq.MEI);

/** Synchronous exception causes. */
export enum Exception {
  InstructionMisaligned = 0, InstructionAccessFault = 1, IllegalInstruction = 2, Breakpoint = 3,
  LoadMisaligned = 4, LoadAccessFault = 5, StoreMisaligned = 6, StoreAccessFault = 7,
  EcallFromU = 8, EcallFromS = 9, EcallFromM = 11,
  InstructionPageFault = 12, LoadPageFault = 13, StorePageFault = 15,
}
