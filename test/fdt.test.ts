import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FdtBuilder } from '../src/machine/fdt.js';
import { buildDeviceTree, type BoardDescription } from '../src/machine/device-tree.js';

/** Decompiles a blob with the real dtc; returns its source and whatever it printed on stderr. */
function decompile(blob: Uint8Array): { dts: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'vessel-fdt-'));
  try {
    const file = join(dir, 'board.dtb');
    writeFileSync(file, blob);
    const result = spawnSync('dtc', ['-I', 'dtb', '-O', 'dts', file], { encoding: 'utf8' });
    assert.equal(result.status, 0, `dtc failed: ${result.stderr}`);
    return { dts: result.stdout, stderr: result.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The text of one node's body in dtc output: from "name {" to its matching "};". */
function nodeBody(dts: string, name: string): string {
  const start = dts.indexOf(`\t${name} {`);
  assert.notEqual(start, -1, `node ${name} not found`);
  let depth = 0;
  for (let i = dts.indexOf('{', start); i < dts.length; i++) {
    if (dts[i] === '{') depth++;
    if (dts[i] === '}' && --depth === 0) return dts.slice(start, i + 1);
  }
  throw new Error(`node ${name} not closed`);
}

const board: BoardDescription = {
  harts: 2,
  isa: 'rv64imafdc_zicsr_zifencei_zihintpause_zba_zbb_zbs_sstc',
  isaExtensions: ['i', 'm', 'a', 'f', 'd', 'c', 'zicsr', 'zifencei', 'zihintpause', 'zba', 'zbb', 'zbs', 'sstc'],
  mmuType: 'riscv,sv39',
  memory: { base: 0x8000_0000, size: 0x1_0000_0000 },
  bootargs: 'console=ttyS0 earlycon quiet',
  initrd: { start: 0x8800_0000, end: 0x8812_3456 },
  timebaseFrequency: 10_000_000,
  uart: { base: 0x1000_0000, size: 0x100, irq: 10, clockFrequency: 3_686_400 },
  plic: { base: 0x0c00_0000, size: 0x60_0000, sources: 96 },
  clint: { base: 0x0200_0000, size: 0x1_0000 },
  virtio: [
    { base: 0x1000_1000, size: 0x1000, irq: 1 },
    { base: 0x1000_2000, size: 0x1000, irq: 2 },
  ],
  test: { base: 0x10_0000, size: 0x1000 },
  rtc: { base: 0x10_1000, size: 0x1000, irq: 11 },
};

test('the board device tree decompiles with dtc without warnings', () => {
  const { stderr } = decompile(buildDeviceTree(board));
  assert.equal(stderr, '');
});

test('cpus: isa strings, mmu, timebase and per-hart interrupt controllers', () => {
  const { dts } = decompile(buildDeviceTree(board));
  const cpus = nodeBody(dts, 'cpus');
  assert.match(cpus, /timebase-frequency = <0x989680>;/);
  for (const hart of [0, 1]) {
    const cpu = nodeBody(cpus, `cpu@${hart}`);
    assert.match(cpu, new RegExp(`reg = <0x0?${hart}>;`));
    assert.match(cpu, /device_type = "cpu";/);
    assert.match(cpu, /status = "okay";/);
    assert.match(cpu, /riscv,isa = "rv64imafdc_zicsr_zifencei_zihintpause_zba_zbb_zbs_sstc";/);
    assert.match(cpu, /riscv,isa-base = "rv64i";/);
    assert.match(cpu, /riscv,isa-extensions = "i\\0m\\0a\\0f\\0d\\0c\\0zicsr\\0zifencei\\0zihintpause\\0zba\\0zbb\\0zbs\\0sstc";/);
    assert.match(cpu, /mmu-type = "riscv,sv39";/);
    const intc = nodeBody(cpu, 'interrupt-controller');
    assert.match(intc, /compatible = "riscv,cpu-intc";/);
    assert.match(intc, /#interrupt-cells = <0x01>;/);
    assert.match(intc, /\tinterrupt-controller;/);
  }
  assert.match(nodeBody(cpus, 'cpu-map'), /core1 \{\s*cpu = <0x\w+>;/);
});

test('PLIC and CLINT are wired to each hart\'s intc as on QEMU virt', () => {
  const { dts } = decompile(buildDeviceTree(board));
  const intcPhandles = [0, 1].map((hart) => {
    const intc = nodeBody(nodeBody(dts, `cpu@${hart}`), 'interrupt-controller');
    return /phandle = <(0x\w+)>;/.exec(intc)![1];
  });
  assert.notEqual(intcPhandles[0], intcPhandles[1]);
  const [a, b] = intcPhandles;
  const cell = (phandle: string, irq: string) => `${phandle} ${irq}`;

  const plic = nodeBody(dts, 'plic@c000000');
  assert.match(plic, /compatible = "sifive,plic-1.0.0\\0riscv,plic0";/);
  assert.match(plic, /riscv,ndev = <0x5f>;/);
  assert.match(plic, /reg = <0x00 0xc000000 0x00 0x600000>;/);
  assert.match(plic, /#interrupt-cells = <0x01>;/);
  assert.match(plic, /\tinterrupt-controller;/);
  const plicIrqs = /interrupts-extended = <([^>]*)>;/.exec(plic)![1];
  assert.equal(plicIrqs, [cell(a, '0x0b'), cell(a, '0x09'), cell(b, '0x0b'), cell(b, '0x09')].join(' '));

  const clint = nodeBody(dts, 'clint@2000000');
  assert.match(clint, /compatible = "sifive,clint0\\0riscv,clint0";/);
  const clintIrqs = /interrupts-extended = <([^>]*)>;/.exec(clint)![1];
  assert.equal(clintIrqs, [cell(a, '0x03'), cell(a, '0x07'), cell(b, '0x03'), cell(b, '0x07')].join(' '));

  // Every device interrupt goes to the PLIC's phandle.
  const plicPhandle = /phandle = <(0x\w+)>;/.exec(plic)![1];
  for (const node of ['serial@10000000', 'virtio_mmio@10001000', 'virtio_mmio@10002000', 'rtc@101000']) {
    assert.match(nodeBody(dts, node), new RegExp(`interrupt-parent = <${plicPhandle}>;`));
  }
});

test('chosen, memory and devices carry the board description', () => {
  const { dts } = decompile(buildDeviceTree(board));
  const chosen = nodeBody(dts, 'chosen');
  assert.match(chosen, /bootargs = "console=ttyS0 earlycon quiet";/);
  assert.match(chosen, /stdout-path = "\/soc\/serial@10000000";/);
  assert.match(chosen, /linux,initrd-start = <0x00 0x88000000>;/);
  assert.match(chosen, /linux,initrd-end = <0x00 0x88123456>;/);
  assert.match(nodeBody(dts, 'aliases'), /serial0 = "\/soc\/serial@10000000";/);

  const memory = nodeBody(dts, 'memory@80000000');
  assert.match(memory, /device_type = "memory";/);
  assert.match(memory, /reg = <0x00 0x80000000 0x01 0x00>;/);

  const uart = nodeBody(dts, 'serial@10000000');
  assert.match(uart, /compatible = "ns16550a";/);
  assert.match(uart, /interrupts = <0x0a>;/);
  assert.match(uart, /reg = <0x00 0x10000000 0x00 0x100>;/);

  const virtio2 = nodeBody(dts, 'virtio_mmio@10002000');
  assert.match(virtio2, /compatible = "virtio,mmio";/);
  assert.match(virtio2, /interrupts = <0x02>;/);
  assert.ok(dts.indexOf('virtio_mmio@10001000') < dts.indexOf('virtio_mmio@10002000'), 'virtio nodes keep board order');

  assert.match(nodeBody(dts, 'rtc@101000'), /compatible = "google,goldfish-rtc";/);
  const testDevice = nodeBody(dts, 'test@100000');
  assert.match(testDevice, /compatible = "sifive,test1\\0sifive,test0\\0syscon";/);
  const testPhandle = /phandle = <(0x\w+)>;/.exec(testDevice)![1];
  const poweroff = nodeBody(dts, 'poweroff');
  assert.match(poweroff, /compatible = "syscon-poweroff";/);
  assert.match(poweroff, /value = <0x5555>;/);
  assert.match(poweroff, new RegExp(`regmap = <${testPhandle}>;`));
  const reboot = nodeBody(dts, 'reboot');
  assert.match(reboot, /compatible = "syscon-reboot";/);
  assert.match(reboot, /value = <0x7777>;/);

  for (const absent of ['pci', 'flash', 'fw-cfg', 'pmu']) assert.doesNotMatch(dts, new RegExp(`\\t${absent}[@ ]`));
});

test('chosen has no initrd properties without an initrd, and carries an rng-seed when given', () => {
  const { dts } = decompile(buildDeviceTree({ ...board, initrd: undefined, rngSeed: new Uint8Array([1, 2, 3, 4]) }));
  const chosen = nodeBody(dts, 'chosen');
  assert.doesNotMatch(chosen, /initrd/);
  assert.match(chosen, /rng-seed = <0x1020304>;/);
});

test('FdtBuilder: header, reservation map, alignment and shared property names', () => {
  const fdt = new FdtBuilder();
  fdt.beginNode('');
  fdt.propU32('#address-cells', 2);
  fdt.beginNode('a');
  fdt.propString('compatible', 'x');
  fdt.propBytes('odd', new Uint8Array([0xaa, 0xbb, 0xcc]));
  fdt.endNode();
  fdt.beginNode('b');
  fdt.propString('compatible', 'yz');
  fdt.propU64('big', 0x1_2345_6789n);
  fdt.propEmpty('flag');
  fdt.endNode();
  fdt.endNode();
  const blob = fdt.finish();
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const header = Array.from({ length: 10 }, (_, i) => view.getUint32(i * 4));
  const [magic, totalSize, offStruct, offStrings, offRsvmap, version, lastComp, bootCpu, sizeStrings, sizeStruct] =
    header;
  assert.equal(magic, 0xd00dfeed);
  assert.equal(totalSize, blob.length);
  assert.equal(version, 17);
  assert.equal(lastComp, 16);
  assert.equal(bootCpu, 0);
  assert.equal(offRsvmap % 8, 0);
  assert.equal(offStruct % 4, 0);
  assert.equal(offStrings, offStruct + sizeStruct);
  assert.equal(offStrings + sizeStrings, totalSize);
  // The reservation map holds just the terminating zero entry.
  assert.deepEqual([...blob.subarray(offRsvmap, offRsvmap + 16)], new Array(16).fill(0));
  // The structure block ends with FDT_END.
  assert.equal(view.getUint32(offStruct + sizeStruct - 4), 9);
  // "compatible" is stored once although two nodes use it.
  const strings = new TextDecoder().decode(blob.subarray(offStrings, offStrings + sizeStrings));
  assert.equal(strings.split('\0').filter((s) => s === 'compatible').length, 1);
  assert.equal(strings, '#address-cells\0compatible\0odd\0big\0flag\0');

  const { dts, stderr } = decompile(blob);
  assert.equal(stderr, '');
  assert.match(dts, /odd = \[aa bb cc\];/);
  assert.match(dts, /big = <0x01 0x23456789>;/);
  assert.match(dts, /\tflag;/);
});

test('FdtBuilder rejects malformed trees', () => {
  const unclosed = new FdtBuilder();
  unclosed.beginNode('');
  unclosed.beginNode('child');
  assert.throws(() => unclosed.finish());

  const late = new FdtBuilder();
  late.beginNode('');
  late.beginNode('child');
  late.endNode();
  assert.throws(() => late.propU32('too-late', 1), /after a subnode/);

  assert.throws(() => new FdtBuilder().endNode());
  assert.throws(() => new FdtBuilder().beginNode('named-root'));
  const cells = new FdtBuilder();
  cells.beginNode('');
  assert.throws(() => cells.propU32('x', 2 ** 32));
  assert.throws(() => cells.propU64('x', -1));
  assert.throws(() => cells.propString('x', 'a\0b'));
});
