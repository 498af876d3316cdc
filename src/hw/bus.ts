import type { AccessWidth, MmioDevice } from '../devices/mmio.js';
import type { GuestMemory } from './memory.js';

interface Mapping { base: number; end: number; device: MmioDevice }

/** What a hart reaches through the bus: RAM (its own fast path) and device registers. */
export interface HartBus {
  readonly ram: GuestMemory;
  isMmio(pa: number, width: number): boolean;
  loadMmio(pa: number, width: AccessWidth): number | undefined;
  storeMmio(pa: number, width: AccessWidth, value: number): boolean;
}

/**
 * The physical address space: RAM plus memory-mapped devices. The CPU reaches devices only
 * through `loadMmio`/`storeMmio`; RAM accesses are served by the CPU's own fast path over
 * `ram.view` and never come here.
 */
export class Bus implements HartBus {
  private readonly mappings: Mapping[] = [];
  /** Device register accesses by the harts (loads and stores), for the VMM's metrics. */
  mmioAccesses = 0;
  constructor(readonly ram: GuestMemory) {}

  map(base: number, device: MmioDevice): void {
    const end = base + device.size;
    for (const m of this.mappings) {
      if (base < m.end && m.base < end) throw new Error(`${device.name} at 0x${base.toString(16)} overlaps ${m.device.name}`);
    }
    if (base < this.ram.end && this.ram.base < end) throw new Error(`${device.name} overlaps RAM`);
    this.mappings.push({ base, end, device });
  }

  /** Where devices answer: [base, end) of every mapping, for a bus on another thread (hart-thread.ts). */
  get deviceRanges(): { base: number; end: number }[] {
    return this.mappings.map(({ base, end }) => ({ base, end }));
  }

  private find(pa: number, width: number): Mapping | undefined {
    for (const m of this.mappings) if (pa >= m.base && pa + width <= m.end) return m;
    return undefined;
  }

  /** True when a device answers at [pa, pa+width). */
  isMmio(pa: number, width: number): boolean {
    return this.find(pa, width) !== undefined;
  }

  /** Device load of 1, 2 or 4 bytes; 8-byte loads are split by the caller. Returns undefined for no device (access fault). */
  loadMmio(pa: number, width: AccessWidth): number | undefined {
    const m = this.find(pa, width);
    if (!m) return undefined;
    this.mmioAccesses++;
    return m.device.read(pa - m.base, width);
  }

  /** Device store; returns false when no device answers (access fault). */
  storeMmio(pa: number, width: AccessWidth, value: number): boolean {
    const m = this.find(pa, width);
    if (!m) return false;
    this.mmioAccesses++;
    m.device.write(pa - m.base, width, value);
    return true;
  }
}
