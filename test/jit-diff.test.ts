/**
 * Differential tests of the JIT (src/cpu/jit) against the interpreter: the same program runs on
 * two machines, one compiling every block it sees and one interpreting; after
 * every return from compiled code to the dispatcher the two harts must hold the same state
 * (registers, pc, privilege, CSRs, FP registers, instret), and at the end the same RAM.
 *
 * Programs: random RV64IMC instruction streams (loads and stores of every width, also misaligned
 * and page-crossing, forward branches and jumps, compressed forms, CSRs, FENCE.I and atomics of
 * both widths) looped so blocks get hot and chain, and the bare-metal ISA test programs.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Machine } from '../src/machine/machine.js';
import type { Hart } from '../src/cpu/hart.js';
import type { JitOptions } from '../src/cpu/jit/jit.js';
import { expandCompressed } from '../src/cpu/compressed.js';
import { Opcode } from '../src/cpu/opcode.js';
import { buildIsaProgram } from './isa-programs.js';

const MEMORY_BYTES = 16 << 20;
const CODE = 0x80000000, DATA = 0x80100000, DATA_BYTES = 8192;
/** Instructions after which a lockstep run is declared runaway. */
const MAX_INSTRUCTIONS = 5_000_000;

// ---- hart state ----

const CSR_FIELDS = [
  'pcLo', 'pcHi', 'priv', 'fflags', 'frm', 'mstatus', 'medeleg', 'mideleg', 'mie', 'mipSw', 'mipHw',
  'mtvecLo', 'mtvecHi', 'stvecLo', 'stvecHi', 'mepcLo', 'mepcHi', 'sepcLo', 'sepcHi', 'mcauseLo', 'mcauseHi',
  'scauseLo', 'scauseHi', 'mtvalLo', 'mtvalHi', 'stvalLo', 'stvalHi', 'mscratchLo', 'mscratchHi',
  'sscratchLo', 'sscratchHi', 'satpLo', 'satpHi', 'mcounteren', 'scounteren', 'menvcfgLo', 'menvcfgHi',
  'senvcfgLo', 'instret', 'reservation', 'waiting',
] as const;

function snapshot(h: Hart): Record<string, number | boolean> {
  const s: Record<string, number | boolean> = {};
  for (const k of CSR_FIELDS) s[k] = h[k] as number | boolean;
  for (let r = 1; r < 32; r++) s[`x${r}`] = Number(h.getReg(r));
  for (let r = 0; r < 64; r++) s[`f${r >> 1}${r & 1 ? 'hi' : 'lo'}`] = h.f[r];
  return s;
}

function differences(a: Record<string, number | boolean>, b: Record<string, number | boolean>): string[] {
  return Object.keys(a).filter((k) => a[k] !== b[k]).map((k) => `${k}: jit ${fmt(a[k])} interpreter ${fmt(b[k])}`);
}
const fmt = (v: number | boolean): string => typeof v === 'number' ? '0x' + BigInt.asUintN(64, BigInt(v)).toString(16) : String(v);

/**
 * Runs `image` on a JIT machine and an interpreter machine in lockstep. The JIT hart runs
 * `budget` instructions at a time (1: one block per step; more: compiled blocks chain); the
 * interpreter then single-steps to the same instret and, when the JIT took a trap after its
 * last retired instruction, through that trap too.
 */
async function lockstep(image: Uint8Array, name: string, budget: number,
  jit: JitOptions & { threshold: number } = { threshold: 0, batch: 1 }): Promise<{ steps: number; blocks: number }> {
  const make = (j: false | typeof jit): Machine => new Machine({
    cpus: 1, memoryBytes: MEMORY_BYTES, boot: { kind: 'elf', image, name }, onConsoleOutput: () => {},
    // On this thread: a lockstep run is synchronous, and compiled code must appear while it runs.
    jit: j === false ? false : { background: false, ...j },
  });
  const withJit = make(jit), reference = make(false);
  const jh = withJit.harts[0], rh = reference.harts[0];
  let steps = 0;
  while (!withJit.stopped) {
    jh.run(budget);
    steps++;
    while (rh.instret < jh.instret && !reference.stopped) rh.step();
    let a = snapshot(jh), b = snapshot(rh);
    let diff = differences(a, b);
    if (diff.length > 0 && !reference.stopped) {
      const before = b;
      rh.step(); // the JIT may have entered a trap after its last retired instruction
      b = snapshot(rh);
      const again = differences(a, b);
      if (rh.instret !== jh.instret || again.length > 0) {
        diff = differences(a, before);
      } else {
        diff = [];
      }
      a = snapshot(jh);
    }
    if (diff.length > 0) {
      assert.fail(`${name}: after step ${steps} (instret ${jh.instret}, budget ${budget}) the JIT and the interpreter differ:\n  ${diff.join('\n  ')}`);
    }
    if (jh.instret > MAX_INSTRUCTIONS) assert.fail(`${name}: still running after ${MAX_INSTRUCTIONS} instructions`);
  }
  assert.deepEqual(withJit.stopped, { kind: 'poweroff', code: 0 }, `${name}: the program failed under the JIT`);
  // The interpreter reaches the same poweroff store.
  while (!reference.stopped && rh.instret <= jh.instret + 1) rh.step();
  assert.deepEqual(reference.stopped, withJit.stopped, `${name}: the interpreter did not stop the same way`);
  assert.ok(Buffer.compare(withJit.memory.bytes, reference.memory.bytes) === 0, `${name}: RAM differs at the end`);
  const blocks = withJit.jit!.stats.blocks;
  // With a threshold, a program too short to heat a batch of blocks compiles nothing (the caller checks the total).
  if (jit.threshold === 0) assert.ok(blocks > 0, `${name}: nothing was compiled`);
  return { steps, blocks };
}

// ---- random programs ----

const r = (f7: number, rs2: number, rs1: number, f3: number, rd: number, op: number): number =>
  ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const i = (imm: number, rs1: number, f3: number, rd: number, op: number): number =>
  (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const s = (imm: number, rs2: number, rs1: number, f3: number, op: number): number =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | op) >>> 0;
const b = (imm: number, rs2: number, rs1: number, f3: number): number =>
  ((((imm >> 12) & 1) << 31) | (((imm >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) |
    (((imm >> 1) & 0xf) << 8) | (((imm >> 11) & 1) << 7) | 0x63) >>> 0;
const j = (imm: number, rd: number): number =>
  ((((imm >> 20) & 1) << 31) | (((imm >> 1) & 0x3ff) << 21) | (((imm >> 11) & 1) << 20) | (((imm >> 12) & 0xff) << 12) | (rd << 7) | 0x6f) >>> 0;

/** The data base register (points into the data pages) and the loop counter; never random destinations. */
const BASE = 5, COUNTER = 6;

/** A 32-bit or 16-bit instruction, or a forward branch/jump resolved after layout. */
type Item = { word: number; size: 2 | 4 } | { branch: (offset: number) => number; skip: number };

/** A small deterministic PRNG (mulberry32), so a failing seed reproduces. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBody(rand: () => number, count: number): Item[] {
  const int = (n: number): number => Math.floor(rand() * n);
  const pick = <T>(xs: T[]): T => xs[int(xs.length)];
  const rd = (): number => { let x: number; do x = int(32); while (x === BASE || x === COUNTER); return x; };
  const rs = (): number => int(32);
  const imm12 = (): number => pick([0, 1, -1, 2047, -2048, int(4096) - 2048, int(64)]);
  const dataOffset = (width: number): number => pick([int(4096) - 2048, 0x3ff - int(8), -int(16) * width]); // 0x400 - base lands on the page boundary
  const items: Item[] = [];
  while (items.length < count) {
    const k = int(100);
    if (k < 22) { // OP
      const [f7, f3] = pick([[0, 0], [0x20, 0], [0, 1], [0, 2], [0, 3], [0, 4], [0, 5], [0x20, 5], [0, 6], [0, 7],
        [1, 0], [1, 1], [1, 2], [1, 3], [1, 4], [1, 5], [1, 6], [1, 7]]);
      items.push({ word: r(f7, rs(), rs(), f3, rd(), 0x33), size: 4 });
    } else if (k < 32) { // OP-32
      const [f7, f3] = pick([[0, 0], [0x20, 0], [0, 1], [0, 5], [0x20, 5], [1, 0], [1, 4], [1, 5], [1, 6], [1, 7]]);
      items.push({ word: r(f7, rs(), rs(), f3, rd(), 0x3b), size: 4 });
    } else if (k < 46) { // OP-IMM, OP-IMM-32
      const f3 = pick([0, 1, 2, 3, 4, 5, 6, 7]);
      if (rand() < 0.7) {
        const imm = f3 === 1 ? int(64) : f3 === 5 ? int(64) | (rand() < 0.5 ? 0x400 : 0) : imm12();
        items.push({ word: i(imm, rs(), f3, rd(), 0x13), size: 4 });
      } else {
        const f = pick([0, 1, 5]);
        const imm = f === 0 ? imm12() : int(32) | (f === 5 && rand() < 0.5 ? 0x400 : 0);
        items.push({ word: i(imm, rs(), f, rd(), 0x1b), size: 4 });
      }
    } else if (k < 50) { // LUI, AUIPC
      items.push({ word: ((int(1 << 20) << 12) | (rd() << 7) | (rand() < 0.5 ? 0x37 : 0x17)) >>> 0, size: 4 });
    } else if (k < 60) { // loads
      const f3 = pick([0, 1, 2, 3, 4, 5, 6]);
      items.push({ word: i(dataOffset(1 << (f3 & 3)), BASE, f3, rd(), 0x03), size: 4 });
    } else if (k < 70) { // stores
      const f3 = pick([0, 1, 2, 3]);
      items.push({ word: s(dataOffset(1 << f3), rs(), BASE, f3, 0x23), size: 4 });
    } else if (k < 78) { // forward conditional branch over 1-3 items
      const f3 = pick([0, 1, 4, 5, 6, 7]), a = rs(), c = rs();
      items.push({ branch: (off) => b(off, c, a, f3), skip: 1 + int(3) });
    } else if (k < 80) { // forward JAL with a link
      const link = rd();
      items.push({ branch: (off) => j(off, link), skip: 1 + int(2) });
    } else if (k < 95) { // compressed: random 16-bit patterns that expand to ALU operations
      let c: number, e: number;
      do {
        c = int(0x10000);
        e = (c & 3) !== 3 ? expandCompressed(c) : 0;
      } while (e === 0 || ![Opcode.OpImm, Opcode.OpImm32, Opcode.Op, Opcode.Op32, Opcode.Lui].includes((e >>> 2) & 31) ||
        [BASE, COUNTER].includes((e >>> 7) & 31));
      items.push({ word: c, size: 2 });
    } else { // CSRs, fences, atomics: run by the interpreter for compiled code, or by its fast paths
      const which = int(5);
      if (which === 0) items.push({ word: i(0x340, rs(), 1, rd(), 0x73), size: 4 }); // csrrw rd, mscratch, rs
      else if (which === 1) items.push({ word: i(0, 0, 1, 0, 0x0f), size: 4 }); // fence.i
      else if (which === 2) { // an AMO on the base address: ADD SWAP XOR OR AND MIN MAXU, word or doubleword
        items.push({ word: r(pick([0, 1, 4, 8, 12, 16, 28]) << 2, rs(), BASE, pick([2, 3]), rd(), 0x2f), size: 4 });
      } else if (which === 3) { // lr / sc on the base address (sometimes of different widths)
        items.push({ word: (r(0, 0, BASE, pick([2, 3]), rd(), 0x2f) | (2 << 27)) >>> 0, size: 4 });
        items.push({ word: (r(0, rs(), BASE, pick([2, 3]), rd(), 0x2f) | (3 << 27)) >>> 0, size: 4 });
      } else items.push({ word: i(0, 0, 0, 0, 0x0f) | (0xff << 20), size: 4 }); // fence rw,rw
    }
  }
  return items;
}

/** Lays out prologue, `iterations` x body, epilogue; returns code bytes. */
function assemble(body: Item[], iterations: number): Uint8Array {
  const words: { word: number; size: number }[] = [];
  const emit = (word: number, size = 4): void => { words.push({ word, size }); };
  emit((0x100 << 12) | (BASE << 7) | 0x17); // auipc base, 0x100: base = DATA (this is the first instruction)
  // mtvec = the failure exit at the end (no random instruction should trap).
  const failAt = (): number => words.reduce((n, w) => n + w.size, 0);
  const mtvecFixup = words.length;
  emit(0); // auipc x7, 0 + addi x7, x7, fail: patched below
  emit(0);
  emit(i(0x305, 7, 1, 0, 0x73)); // csrrw x0, mtvec, x7
  for (let x = 1; x < 32; x++) if (x !== BASE) emit(i(8 * x, BASE, 3, x, 0x03)); // ld x, 8x(base)
  emit(i(0x600, BASE, 0, BASE, 0x13)); emit(i(0x600, BASE, 0, BASE, 0x13)); // base = DATA + 0xc00
  emit(i(iterations, 0, 0, COUNTER, 0x13));
  // Body, with forward branches resolved against the real sizes.
  const bodyStart = words.length;
  const sizes = body.map((it) => ('word' in it ? it.size : 4));
  const at: number[] = [];
  let off = 0;
  for (const sz of sizes) { at.push(off); off += sz; }
  at.push(off);
  body.forEach((it, n) => {
    if ('word' in it) emit(it.word, it.size);
    else emit(it.branch(at[Math.min(n + 1 + it.skip, body.length)] - at[n]));
  });
  // Loop: addi counter, -1; bne counter, x0, body
  emit(i(-1, COUNTER, 0, COUNTER, 0x13));
  emit(b(-(off + 4), 0, COUNTER, 1));
  void bodyStart;
  // Power off: sifive_test at 0x100000 <- 0x5555
  emit((0x100 << 12) | (7 << 7) | 0x37);
  emit((0x5 << 12) | (8 << 7) | 0x37);
  emit(i(0x555, 8, 0, 8, 0x13));
  emit(s(0, 8, 7, 2, 0x23));
  emit(j(0, 0));
  // The failure exit: sifive_test <- (1 << 16) | 0x3333.
  const fail = failAt();
  emit((0x100 << 12) | (7 << 7) | 0x37);
  emit((0x13 << 12) | (8 << 7) | 0x37);
  emit(i(0x333, 8, 0, 8, 0x13));
  emit(s(0, 8, 7, 2, 0x23));
  emit(j(0, 0));
  words[mtvecFixup] = { word: (7 << 7) | 0x17, size: 4 }; // auipc x7, 0
  words[mtvecFixup + 1] = { word: i(fail - 4, 7, 0, 7, 0x13), size: 4 }; // addi x7, x7, fail (from the auipc at 4)
  const bytes = new Uint8Array(words.reduce((n, w) => n + w.size, 0));
  const dv = new DataView(bytes.buffer);
  let p = 0;
  for (const w of words) {
    if (w.size === 4) dv.setUint32(p, w.word, true); else dv.setUint16(p, w.word, true);
    p += w.size;
  }
  return bytes;
}

/** A static ELF64 RISC-V executable with two PT_LOAD segments (code, data). */
function elf(code: Uint8Array, data: Uint8Array): Uint8Array {
  const ehsize = 64, phentsize = 56, phnum = 2;
  const codeOff = ehsize + phentsize * phnum, dataOff = codeOff + code.length;
  const out = new Uint8Array(dataOff + data.length);
  const dv = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  dv.setUint16(16, 2, true); dv.setUint16(18, 243, true); dv.setUint32(20, 1, true);
  dv.setBigUint64(24, BigInt(CODE), true); dv.setBigUint64(32, BigInt(ehsize), true);
  dv.setUint16(52, ehsize, true); dv.setUint16(54, phentsize, true); dv.setUint16(56, phnum, true);
  const ph = (n: number, off: number, addr: number, size: number): void => {
    const p = ehsize + n * phentsize;
    dv.setUint32(p, 1, true); dv.setUint32(p + 4, 7, true);
    dv.setBigUint64(p + 8, BigInt(off), true); dv.setBigUint64(p + 16, BigInt(addr), true);
    dv.setBigUint64(p + 24, BigInt(addr), true); dv.setBigUint64(p + 32, BigInt(size), true);
    dv.setBigUint64(p + 40, BigInt(size), true);
  };
  ph(0, codeOff, CODE, code.length);
  ph(1, dataOff, DATA, data.length);
  out.set(code, codeOff);
  out.set(data, dataOff);
  return out;
}

function randomProgram(seed: number): Uint8Array {
  const rand = prng(seed);
  const body = randomBody(rand, 20 + Math.floor(rand() * 150));
  const data = new Uint8Array(DATA_BYTES);
  for (let n = 0; n < data.length; n++) data[n] = Math.floor(rand() * 256);
  return elf(assemble(body, 2 + Math.floor(rand() * 6)), data);
}

/**
 * Seeds of the random programs: a fresh base per run (printed with any failure, and settable
 * with VESSEL_JIT_DIFF_SEED to reproduce one), 40 programs per mode.
 */
const SEED_BASE = Number(process.env.VESSEL_JIT_DIFF_SEED ?? Math.floor(Math.random() * 2 ** 31));
const PROGRAMS = process.env.VESSEL_JIT_DIFF_SEED ? 1 : 40;

test('jit-diff: random RV64IMC streams, state compared after every block', async () => {
  for (let n = 0; n < PROGRAMS; n++) {
    const seed = (SEED_BASE + n) % 2 ** 31;
    await lockstep(randomProgram(seed), `random program (VESSEL_JIT_DIFF_SEED=${seed})`, 1);
  }
});

test('jit-diff: random streams with chained blocks (budget 64, batches of 4)', async () => {
  let compiled = 0;
  for (let n = 0; n < PROGRAMS; n++) {
    const seed = (SEED_BASE + n) % 2 ** 31;
    const { blocks } = await lockstep(randomProgram(seed), `random program (VESSEL_JIT_DIFF_SEED=${seed})`, 64, { threshold: 1, batch: 4, patience: 8 });
    if (blocks > 0) compiled++;
  }
  // Most programs loop long enough to compile and chain blocks.
  assert.ok(compiled >= Math.floor(PROGRAMS / 2), `only ${compiled} of ${PROGRAMS} programs compiled anything`);
});

// ---- ISA test programs ----

const tmp = mkdtempSync(join(tmpdir(), 'vessel-jit-diff-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Programs that depend on the host clock (timer interrupts, `time`) or run several harts cannot run in lockstep. */
const LOCKSTEP_PROGRAMS = ['rv64i', 'rv64m', 'rvc', 'rv64a', 'mmu', 'traps', 'fp', 'smc', 'writeback'];

for (const name of LOCKSTEP_PROGRAMS) {
  test(`jit-diff: isa program ${name}`, async () => {
    const image = readFileSync(buildIsaProgram(name, tmp));
    await lockstep(image, name, 1, { threshold: 0, batch: 1 }); // every block compiled before it first runs
    await lockstep(image, name, 64, { threshold: 1, batch: 8, patience: 64 });
  });
}
