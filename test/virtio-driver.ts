// A hand-written virtio driver for device tests: two queues' rings in a small GuestMemory, the
// virtio-mmio transport in front of the device, and the driver's side of the protocol (bring-up,
// posting chains, reading the used rings).
import { GuestMemory } from '../src/hw/memory.js';
import { VIRTQ_DESC_F_NEXT as NEXT } from '../src/devices/virtio/queue.js';
import { Reg, Status, VirtioMmio, type VirtioDevice } from '../src/devices/virtio/mmio.js';

export const BASE = 0x8000_0000;
export const QSIZE = 8;
/** Ring addresses per queue: 0 = receiveq, 1 = transmitq. */
export const RINGS = [
  { desc: BASE + 0x0000, avail: BASE + 0x1000, used: BASE + 0x2000 },
  { desc: BASE + 0x3000, avail: BASE + 0x4000, used: BASE + 0x5000 },
];

/** Ring addresses of queue `i`: RINGS for 0 and 1, then from BASE + 64 KiB (give `ram` room for them). */
export function ringsOf(i: number): { desc: number; avail: number; used: number } {
  if (i < RINGS.length) return RINGS[i];
  const at = BASE + 0x10000 + (i - RINGS.length) * 0x3000;
  return { desc: at, avail: at + 0x1000, used: at + 0x2000 };
}

/**
 * Puts `dev` behind a transport over `ram` bytes of guest memory. `features` are the low 32
 * device feature bits the driver accepts (VERSION_1 is always accepted); transport log lines go
 * to `logs`. Brings the device up unless `bringUp` is false; `queues` (default 2) are set up.
 */
export function driveDevice(dev: VirtioDevice, opts: { features: number; ram?: number; logs?: string[]; bringUp?: boolean; queues?: number }) {
  const queues = opts.queues ?? 2;
  const rings = Array.from({ length: queues }, (_, i) => ringsOf(i));
  const mem = new GuestMemory(BASE, opts.ram ?? (queues > 2 ? 0x10000 + (queues - 2) * 0x3000 : 64 * 1024));
  const irq: boolean[] = [];
  const logs = opts.logs ?? [];
  const t = new VirtioMmio(mem, dev, { set: (l) => irq.push(l) }, (l) => logs.push(l));
  const r = (off: number) => t.read(off, 4);
  const w = (off: number, v: number) => t.write(off, 4, v);
  const bringUp = () => {
    w(Reg.Status, 0);
    w(Reg.Status, Status.Acknowledge | Status.Driver);
    w(Reg.DriverFeaturesSel, 0); w(Reg.DriverFeatures, opts.features);
    w(Reg.DriverFeaturesSel, 1); w(Reg.DriverFeatures, 1);
    w(Reg.Status, Status.Acknowledge | Status.Driver | Status.FeaturesOk);
    rings.forEach((q, i) => {
      w(Reg.QueueSel, i);
      w(Reg.QueueNum, QSIZE);
      w(Reg.QueueDescLow, q.desc); w(Reg.QueueDriverLow, q.avail); w(Reg.QueueDeviceLow, q.used);
      w(Reg.QueueReady, 1);
    });
    w(Reg.Status, Status.Acknowledge | Status.Driver | Status.FeaturesOk | Status.DriverOk);
  };
  if (opts.bringUp ?? true) bringUp();
  const availIdx = rings.map(() => 0);
  /** Posts one chain of `bufs` ([addr, len, flags]) on queue `qi`, descriptors from `first`; notifies unless told not to. */
  const post = (qi: number, first: number, bufs: [number, number, number][], notify = true) => {
    const { desc, avail } = rings[qi];
    bufs.forEach(([addr, len, flags], i) => {
      const at = desc + 16 * (first + i);
      mem.writeU64(at, BigInt(addr)); mem.writeU32(at + 8, len);
      mem.writeU16(at + 12, flags | (i < bufs.length - 1 ? NEXT : 0)); mem.writeU16(at + 14, first + i + 1);
    });
    mem.writeU16(avail + 4 + 2 * (availIdx[qi] % QSIZE), first);
    availIdx[qi] = (availIdx[qi] + 1) & 0xffff;
    mem.writeU16(avail + 2, availIdx[qi]);
    if (notify) w(Reg.QueueNotify, qi);
  };
  const usedIdx = (qi: number) => mem.readU16(rings[qi].used + 2);
  const usedLen = (qi: number, n: number) => mem.readU32(rings[qi].used + 4 + 8 * (n % QSIZE) + 4);
  const usedId = (qi: number, n: number) => mem.readU32(rings[qi].used + 4 + 8 * (n % QSIZE));
  return { mem, t, r, w, irq, logs, bringUp, post, usedIdx, usedLen, usedId };
}
