/**
 * Instruction-level tests: the RISC-V assembly programs in test/isa/*.S, built with the Debian
 * cross toolchain and run bare-metal on a Machine (every hart starts in M-mode at the ELF
 * entry). A program powers off through sifive_test with exit code 0 when all of its cases
 * pass, or with the number of the first failing case. See test/isa/vessel_test.h.
 *
 * A program may ask for more harts with a line `// vessel-test: cpus=N`.
 * VESSEL_ISA_ONLY=name[,name] runs only those programs (file names without .S).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Machine } from '../src/machine/machine.js';
import type { Hart } from '../src/cpu/hart.js';
import { findIsaDir } from './isa-programs.js';

const CC = 'riscv64-linux-gnu-gcc';
const ADDR2LINE = 'riscv64-linux-gnu-addr2line';
const MEMORY_BYTES = 32 << 20;
/** Wall-clock limit per program; they all finish in well under a second when correct. */
const TIMEOUT_MS = 20_000;

const ISA_DIR = findIsaDir();
const onlyList = process.env.VESSEL_ISA_ONLY?.split(',').filter((s) => s.length > 0) ?? [];
const only = onlyList.length > 0 ? onlyList : undefined;
const SOURCES = readdirSync(ISA_DIR)
  .filter((f) => f.endsWith('.S'))
  .filter((f) => !only || only.includes(basename(f, '.S')))
  .sort();
const tmp = mkdtempSync(join(tmpdir(), 'vessel-isa-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function build(src: string): string {
  const out = join(tmp, basename(src, '.S') + '.elf');
  const cc = spawnSync(CC, ['-march=rv64gc', '-mabi=lp64d', '-nostdlib', '-nostartfiles', '-static', '-g',
    '-Wl,--build-id=none', '-T', join(ISA_DIR, 'link.ld'), '-I', ISA_DIR, '-o', out, src], { encoding: 'utf8' });
  if (cc.error) {
    assert.fail(`${CC} could not be run (${cc.error.message}): run \`bash test/setup.sh\` (installs gcc-riscv64-linux-gnu)`);
  }
  assert.equal(cc.status, 0, `${CC} failed on ${basename(src)}:\n${cc.stderr}`);
  return out;
}

const CAUSES: Record<number, string> = {
  0: 'instruction address misaligned', 1: 'instruction access fault', 2: 'illegal instruction', 3: 'breakpoint',
  4: 'load address misaligned', 5: 'load access fault', 6: 'store/AMO address misaligned', 7: 'store/AMO access fault',
  8: 'ecall from U', 9: 'ecall from S', 11: 'ecall from M', 12: 'instruction page fault', 13: 'load page fault',
  15: 'store/AMO page fault',
};

const hex = (v: bigint): string => '0x' + BigInt.asUintN(64, v).toString(16);

function causeName(lo: number, hi: number): string {
  if (hi < 0) return `interrupt ${lo}`;
  return `${CAUSES[lo] ?? 'exception'} (${lo})`;
}

/** The source line(s) that start case `n` in `src`. */
function caseSource(src: string, n: number): string {
  const lines = readFileSync(src, 'utf8').split('\n');
  const re = new RegExp(`(\\(\\s*${n}\\s*,|TESTNUM\\s*,\\s*${n}\\b)`);
  const hits = lines.flatMap((l, i) => (re.test(l) ? [`  ${basename(src)}:${i + 1}: ${l.trim()}`] : []));
  return hits.length > 0 ? hits.slice(0, 3).join('\n') : `  (no line in ${basename(src)} starts case ${n})`;
}

function where(elf: string, addr: bigint): string {
  const r = spawnSync(ADDR2LINE, ['-e', elf, hex(addr)], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().replace(/^.*\//, '') : '?';
}

function describeHart(h: Hart, elf: string): string {
  const reg = (i: number): bigint => h.getReg(i);
  const marker = Number(reg(20)); // s4
  const what = marker === 0xf00 ? `value mismatch: found x14=${hex(reg(14))}, expected x7=${hex(reg(7))}`
    : marker === 0xbad ? 'unexpected trap (see mcause, or scause when it came from the S handler)'
      : `did not exit (s4=${hex(reg(20))})`;
  return [
    `  hart ${h.id}: ${what}; now in privilege ${h.priv}`,
    `  mcause=${causeName(h.mcauseLo, h.mcauseHi)} mepc=${hex(BigInt(h.mepcLo >>> 0) | (BigInt(h.mepcHi >>> 0) << 32n))} ` +
      `(${where(elf, BigInt(h.mepcLo >>> 0) | (BigInt(h.mepcHi >>> 0) << 32n))}) mtval=${hex(BigInt(h.mtvalLo >>> 0) | (BigInt(h.mtvalHi >>> 0) << 32n))}`,
    `  scause=${causeName(h.scauseLo, h.scauseHi)} sepc=${hex(BigInt(h.sepcLo >>> 0) | (BigInt(h.sepcHi >>> 0) << 32n))} ` +
      `stval=${hex(BigInt(h.stvalLo >>> 0) | (BigInt(h.stvalHi >>> 0) << 32n))}`,
    `  last trap record: from priv ${reg(21)} to ${reg(22)}, epc=${hex(reg(23))}, cause=${hex(reg(24))}, tval=${hex(reg(25))}`,
  ].join('\n');
}

for (const file of SOURCES) {
  const src = join(ISA_DIR, file);
  test(`isa: ${basename(file, '.S')}`, async () => {
    const elf = build(src);
    const text = readFileSync(src, 'utf8');
    const cpus = Number(/vessel-test:\s*cpus=(\d+)/.exec(text)?.[1] ?? 1);
    const machine = new Machine({
      cpus,
      memoryBytes: MEMORY_BYTES,
      boot: { kind: 'elf', image: readFileSync(elf), name: file },
      onConsoleOutput: () => {},
    });
    const timer = setTimeout(() => machine.stop({ kind: 'error', message: `timed out after ${TIMEOUT_MS} ms` }), TIMEOUT_MS);
    const result = await machine.run();
    clearTimeout(timer);
    if (result.kind === 'poweroff' && result.code === 0) return;
    const harts = machine.harts.map((h) => describeHart(h, elf) + `\n  pc=${hex(h.pc)} (${where(elf, h.pc)}) gp=${h.getReg(3)}`);
    if (result.kind === 'poweroff') {
      const n = result.code;
      assert.fail(`${file}: case ${n === 0xfffe ? '(before the first case)' : n} failed\n${caseSource(src, n)}\n${harts.join('\n')}`);
    }
    assert.fail(`${file}: machine stopped with ${JSON.stringify(result)}\n${harts.join('\n')}`);
  });
}
