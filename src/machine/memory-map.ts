/** Physical addresses of the board's parts, as on QEMU's `virt` machine (hw/riscv/virt.c). */
export const VIRT_MEMORY_MAP = {
  test: 0x0010_0000,
  rtc: 0x0010_1000,
  clint: 0x0200_0000,
  plic: 0x0c00_0000,
  uart: 0x1000_0000,
  virtio: 0x1000_1000,
  virtioStride: 0x1000,
  ram: 0x8000_0000,
} as const;

/** PLIC source numbers. */
export const VIRT_IRQ = {
  virtioFirst: 1,
  virtioCount: 8,
  uart: 10,
  rtc: 11,
  plicSources: 96,
} as const;
