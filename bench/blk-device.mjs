// The device side of virtio-blk alone, without a guest: requests built in a GuestMemory and sent
// through the virtio-mmio transport to a 256 MiB image, as Linux sends them (a 1 MiB request is
// an indirect table of 256 separate 4 KiB pages), and the CPU time this process spends per
// request (user + system: robust against other load, unlike wall time). For an A/B, run it
// against two builds:
//
//   node bench/blk-device.mjs [REPO_ROOT_WITH_dist]      # default: this checkout
import { fileURLToPath } from 'node:url';
const root = process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url));
const { GuestMemory } = await import(`${root}/dist/src/hw/memory.js`);
const { Reg, Status, VirtioMmio } = await import(`${root}/dist/src/devices/virtio/mmio.js`);
const { VirtioBlk } = await import(`${root}/dist/src/devices/virtio/blk.js`);
import fs from 'node:fs';
const BASE = 0x80000000, QSIZE = 256;
const DESC = BASE, AVAIL = BASE + 0x2000, USED = BASE + 0x4000, IND = BASE + 0x8000, HDR = BASE + 0x10000, STATUS = BASE + 0x10100, DATA = BASE + 0x100000;
const file = `${(await import('node:os')).tmpdir()}/vessel-blk-device-bench.img`;
if (!fs.existsSync(file)) fs.writeFileSync(file, Buffer.alloc(256 << 20, 0x5a));
const blk = new VirtioBlk({ path: file });
const mem = new GuestMemory(BASE, 64 << 20);
const t = new VirtioMmio(mem, blk, { set() {} }, () => {});
const w = (off, v) => t.write(off, 4, v);
w(Reg.Status, Status.Acknowledge | Status.Driver);
w(Reg.DriverFeaturesSel, 1); w(Reg.DriverFeatures, 1); // VERSION_1
w(Reg.DriverFeaturesSel, 0); w(Reg.DriverFeatures, 1 << 28); // INDIRECT
w(Reg.Status, Status.Acknowledge | Status.Driver | Status.FeaturesOk);
w(Reg.QueueNum, QSIZE); w(Reg.QueueDescLow, DESC); w(Reg.QueueDriverLow, AVAIL); w(Reg.QueueDeviceLow, USED); w(Reg.QueueReady, 1);
w(Reg.Status, Status.Acknowledge | Status.Driver | Status.FeaturesOk | Status.DriverOk);
let avail = 0;
function req(type, sector, pages) {
  mem.writeU32(HDR, type); mem.writeU64(HDR + 8, BigInt(sector));
  const descs = [[HDR, 16, 0]];
  for (let i = 0; i < pages; i++) descs.push([DATA + i * 8192, 4096, type === 0 ? 2 : 0]); // non-contiguous pages
  descs.push([STATUS, 1, 2]);
  descs.forEach(([a, l, f], i) => { const at = IND + 16 * i; mem.writeU64(at, BigInt(a)); mem.writeU32(at + 8, l); mem.writeU16(at + 12, f | (i < descs.length - 1 ? 1 : 0)); mem.writeU16(at + 14, i + 1); });
  mem.writeU64(DESC, BigInt(IND)); mem.writeU32(DESC + 8, 16 * descs.length); mem.writeU16(DESC + 12, 4);
  mem.writeU16(AVAIL + 4 + 2 * (avail % QSIZE), 0); avail = (avail + 1) & 0xffff; mem.writeU16(AVAIL + 2, avail);
  w(Reg.QueueNotify, 0);
  if (mem.readU8(STATUS) !== 0) throw new Error('status ' + mem.readU8(STATUS));
}
for (const [label, type, pages, n] of [['read 1 MiB', 0, 256, 400], ['write 1 MiB', 1, 256, 400], ['read 4 KiB', 0, 1, 20000]]) {
  for (let i = 0; i < 20; i++) req(type, (i * 2048) % 400000, pages);
  const c0 = process.cpuUsage(); const t0 = performance.now();
  for (let i = 0; i < n; i++) req(type, (i * 2048) % 200000, pages);
  const c = process.cpuUsage(c0); const wall = performance.now() - t0;
  console.log(`${label}: ${((c.user + c.system) / n).toFixed(1)} us CPU per request (user ${(c.user / n).toFixed(1)}, sys ${(c.system / n).toFixed(1)}), wall ${(1000 * wall / n).toFixed(1)} us`);
}
blk.close();
fs.rmSync(file, { force: true });
