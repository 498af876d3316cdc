/**
 * The device tree handed to the kernel, modelled on the one QEMU's `virt` machine
 * generates (hw/riscv/virt.c): same node names, compatibles and interrupt wiring, but
 * only for hardware this board really has (no PCI, flash, fw-cfg or PMU).
 */
import { FdtBuilder, u64Cells } from './fdt.js';

export interface BoardDescription {
  /** Harts 0..harts-1. */
  harts: number;
  /** The "riscv,isa" string, e.g. "rv64imafdc_zicsr_zifencei_zihintpause_zba_zbb_zbs_sstc". */
  isa: string;
  /** "riscv,isa-extensions" entries (e.g. "i", "m", "zicsr", "sstc"), read by newer kernels. */
  isaExtensions: string[];
  mmuType: 'riscv,sv39' | 'riscv,sv48';
  memory: { base: number; size: number };
  bootargs: string;
  /** Physical range of the initrd: linux,initrd-start / linux,initrd-end in /chosen. */
  initrd?: { start: number; end: number };
  /** Ticks per second of mtime / the time CSR. */
  timebaseFrequency: number;
  uart: { base: number; size: number; irq: number; clockFrequency: number };
  /** `sources` counts source 0, which does not exist: the guest sees 1..sources-1. */
  plic: { base: number; size: number; sources: number };
  clint: { base: number; size: number };
  /** In the order the guest should discover them (Linux probes in tree order). */
  virtio: { base: number; size: number; irq: number }[];
  test: { base: number; size: number };
  rtc: { base: number; size: number; irq: number };
  /** Bytes for /chosen/rng-seed, which seeds the kernel's RNG at boot. */
  rngSeed?: Uint8Array;
}

/** Local interrupt numbers on each hart's riscv,cpu-intc (the mip/mie bit numbers). */
enum HartIrq {
  MachineSoftware = 3,
  MachineTimer = 7,
  SupervisorExternal = 9,
  MachineExternal = 11,
}

/** Builds the DTB for `board`. */
export function buildDeviceTree(board: BoardDescription): Uint8Array {
  const base = /^rv(32|64)/.exec(board.isa);
  if (!base) throw new Error(`device tree: ISA string ${JSON.stringify(board.isa)} does not start with rv32/rv64`);
  if (!Number.isInteger(board.harts) || board.harts < 1) throw new RangeError('device tree: need at least one hart');

  let lastPhandle = 0;
  const nextPhandle = () => ++lastPhandle;
  const cpuPhandles = Array.from({ length: board.harts }, nextPhandle);
  const intcPhandles = Array.from({ length: board.harts }, nextPhandle);
  const plicPhandle = nextPhandle();
  const testPhandle = nextPhandle();
  const uartPath = `/soc/${unitName('serial', board.uart.base)}`;

  const fdt = new FdtBuilder();
  fdt.beginNode('');
  fdt.propU32('#address-cells', 2);
  fdt.propU32('#size-cells', 2);
  fdt.propString('compatible', 'riscv-virtio');
  fdt.propString('model', 'riscv-virtio,vessel');

  fdt.beginNode('chosen');
  fdt.propString('bootargs', board.bootargs);
  fdt.propString('stdout-path', uartPath);
  if (board.initrd) {
    fdt.propU64('linux,initrd-start', board.initrd.start);
    fdt.propU64('linux,initrd-end', board.initrd.end);
  }
  if (board.rngSeed) fdt.propBytes('rng-seed', board.rngSeed);
  fdt.endNode();

  fdt.beginNode('aliases');
  fdt.propString('serial0', uartPath);
  fdt.endNode();

  fdt.beginNode(unitName('memory', board.memory.base));
  fdt.propString('device_type', 'memory');
  fdt.propCells('reg', reg(board.memory));
  fdt.endNode();

  fdt.beginNode('cpus');
  fdt.propU32('#address-cells', 1);
  fdt.propU32('#size-cells', 0);
  fdt.propU32('timebase-frequency', board.timebaseFrequency);
  for (let hart = 0; hart < board.harts; hart++) {
    fdt.beginNode(`cpu@${hart}`);
    fdt.propU32('phandle', cpuPhandles[hart]);
    fdt.propString('device_type', 'cpu');
    fdt.propU32('reg', hart);
    fdt.propString('status', 'okay');
    fdt.propString('compatible', 'riscv');
    fdt.propString('riscv,isa', board.isa);
    fdt.propString('riscv,isa-base', `rv${base[1]}i`);
    fdt.propStrings('riscv,isa-extensions', board.isaExtensions);
    fdt.propString('mmu-type', board.mmuType);
    fdt.beginNode('interrupt-controller');
    fdt.propU32('#interrupt-cells', 1);
    // Not in QEMU's tree; dtc warns about an interrupt provider without it.
    fdt.propU32('#address-cells', 0);
    fdt.propEmpty('interrupt-controller');
    fdt.propString('compatible', 'riscv,cpu-intc');
    fdt.propU32('phandle', intcPhandles[hart]);
    fdt.endNode();
    fdt.endNode();
  }
  fdt.beginNode('cpu-map');
  fdt.beginNode('cluster0');
  for (let hart = 0; hart < board.harts; hart++) {
    fdt.beginNode(`core${hart}`);
    fdt.propU32('cpu', cpuPhandles[hart]);
    fdt.endNode();
  }
  fdt.endNode();
  fdt.endNode();
  fdt.endNode(); // cpus

  // syscon-poweroff / syscon-reboot drive the sifive_test register through its regmap.
  for (const [name, value] of [['poweroff', 0x5555], ['reboot', 0x7777]] as const) {
    fdt.beginNode(name);
    fdt.propU32('value', value);
    fdt.propU32('offset', 0);
    fdt.propU32('regmap', testPhandle);
    fdt.propString('compatible', `syscon-${name}`);
    fdt.endNode();
  }

  fdt.beginNode('soc');
  fdt.propU32('#address-cells', 2);
  fdt.propU32('#size-cells', 2);
  fdt.propString('compatible', 'simple-bus');
  fdt.propEmpty('ranges');

  fdt.beginNode(unitName('clint', board.clint.base));
  fdt.propCells('interrupts-extended', perHart(intcPhandles, [HartIrq.MachineSoftware, HartIrq.MachineTimer]));
  fdt.propCells('reg', reg(board.clint));
  fdt.propStrings('compatible', ['sifive,clint0', 'riscv,clint0']);
  fdt.endNode();

  // Context order in interrupts-extended is the PLIC's context numbering: M then S per hart.
  fdt.beginNode(unitName('plic', board.plic.base));
  fdt.propU32('phandle', plicPhandle);
  fdt.propU32('riscv,ndev', board.plic.sources - 1);
  fdt.propCells('reg', reg(board.plic));
  fdt.propCells('interrupts-extended', perHart(intcPhandles, [HartIrq.MachineExternal, HartIrq.SupervisorExternal]));
  fdt.propEmpty('interrupt-controller');
  fdt.propStrings('compatible', ['sifive,plic-1.0.0', 'riscv,plic0']);
  fdt.propU32('#address-cells', 0);
  fdt.propU32('#interrupt-cells', 1);
  fdt.endNode();

  fdt.beginNode(unitName('serial', board.uart.base));
  fdt.propU32('interrupts', board.uart.irq);
  fdt.propU32('interrupt-parent', plicPhandle);
  fdt.propU32('clock-frequency', board.uart.clockFrequency);
  fdt.propCells('reg', reg(board.uart));
  fdt.propString('compatible', 'ns16550a');
  fdt.endNode();

  for (const virtio of board.virtio) {
    fdt.beginNode(unitName('virtio_mmio', virtio.base));
    fdt.propU32('interrupts', virtio.irq);
    fdt.propU32('interrupt-parent', plicPhandle);
    fdt.propCells('reg', reg(virtio));
    fdt.propString('compatible', 'virtio,mmio');
    fdt.endNode();
  }

  fdt.beginNode(unitName('rtc', board.rtc.base));
  fdt.propU32('interrupts', board.rtc.irq);
  fdt.propU32('interrupt-parent', plicPhandle);
  fdt.propCells('reg', reg(board.rtc));
  fdt.propString('compatible', 'google,goldfish-rtc');
  fdt.endNode();

  fdt.beginNode(unitName('test', board.test.base));
  fdt.propU32('phandle', testPhandle);
  fdt.propCells('reg', reg(board.test));
  fdt.propStrings('compatible', ['sifive,test1', 'sifive,test0', 'syscon']);
  fdt.endNode();

  fdt.endNode(); // soc
  fdt.endNode(); // root
  return fdt.finish();
}

/** "name@hexaddress", the unit-address convention. */
function unitName(name: string, address: number): string {
  return `${name}@${address.toString(16)}`;
}

/** A reg entry in the 2-cell address / 2-cell size format of / and /soc. */
function reg(window: { base: number; size: number }): number[] {
  return [...u64Cells(window.base), ...u64Cells(window.size)];
}

/** interrupts-extended cells: for each hart, <intc irq> for every irq in `irqs`. */
function perHart(intcPhandles: number[], irqs: HartIrq[]): number[] {
  return intcPhandles.flatMap((intc) => irqs.flatMap((irq) => [intc, irq]));
}
