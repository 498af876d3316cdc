/**
 * FPU tests: reference vectors from the host's IEEE hardware (test/fpu-vectors/gen.c,
 * compiled with gcc at test time) plus hand-written RISC-V specific cases.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { executeFp, FpFlag, RoundingMode, type FpuHart } from '../src/cpu/fpu.js';

// ---------------------------------------------------------------------------
// Instruction encoding (RISC-V unprivileged spec, F/D chapters)

const OP_FP = 0x53;
const FMADD = 0x43, FMSUB = 0x47, FNMSUB = 0x4b, FNMADD = 0x4f;
const S = 0, D = 1;

function rType(funct5: number, fmt: number, rs2: number, rs1: number, rm: number, rd: number): number {
  return ((funct5 << 27) | (fmt << 25) | (rs2 << 20) | (rs1 << 15) | (rm << 12) | (rd << 7) | OP_FP) >>> 0;
}

function r4Type(opcode: number, rs3: number, fmt: number, rs2: number, rs1: number, rm: number, rd: number): number {
  return ((rs3 << 27) | (fmt << 25) | (rs2 << 20) | (rs1 << 15) | (rm << 12) | (rd << 7) | opcode) >>> 0;
}

interface OpDesc {
  /** Encodes with the given rounding-mode/funct3 field and registers. */
  enc: (rm: number, rd: number, rs1: number, rs2: number, rs3: number) => number;
  nsrc: number;
  /** Source kind: 's'/'d' FP register of that format, 'x' integer register. */
  src: 's' | 'd' | 'x';
  dst: 's' | 'd' | 'x';
  /** Whether the rm field is a rounding mode (else it is a fixed funct3). */
  rounds: boolean;
}

const OPS = new Map<string, OpDesc>();
for (const [fmtName, fmt] of [['s', S], ['d', D]] as const) {
  const arith: [string, number][] = [['fadd', 0], ['fsub', 1], ['fmul', 2], ['fdiv', 3]];
  for (const [n, f5] of arith) {
    OPS.set(`${n}.${fmtName}`, { enc: (rm, rd, a, b) => rType(f5, fmt, b, a, rm, rd), nsrc: 2, src: fmtName, dst: fmtName, rounds: true });
  }
  OPS.set(`fsqrt.${fmtName}`, { enc: (rm, rd, a) => rType(0x0b, fmt, 0, a, rm, rd), nsrc: 1, src: fmtName, dst: fmtName, rounds: true });
  const fma: [string, number][] = [['fmadd', FMADD], ['fmsub', FMSUB], ['fnmsub', FNMSUB], ['fnmadd', FNMADD]];
  for (const [n, opc] of fma) {
    OPS.set(`${n}.${fmtName}`, { enc: (rm, rd, a, b, c) => r4Type(opc, c, fmt, b, a, rm, rd), nsrc: 3, src: fmtName, dst: fmtName, rounds: true });
  }
  const fixed: [string, number, number, 's' | 'd' | 'x'][] = [
    ['fsgnj', 4, 0, fmtName], ['fsgnjn', 4, 1, fmtName], ['fsgnjx', 4, 2, fmtName],
    ['fmin', 5, 0, fmtName], ['fmax', 5, 1, fmtName],
    ['fle', 0x14, 0, 'x'], ['flt', 0x14, 1, 'x'], ['feq', 0x14, 2, 'x'],
  ];
  for (const [n, f5, f3, dst] of fixed) {
    OPS.set(`${n}.${fmtName}`, { enc: (_rm, rd, a, b) => rType(f5, fmt, b, a, f3, rd), nsrc: 2, src: fmtName, dst, rounds: false });
  }
  OPS.set(`fclass.${fmtName}`, { enc: (_rm, rd, a) => rType(0x1c, fmt, 0, a, 1, rd), nsrc: 1, src: fmtName, dst: 'x', rounds: false });
  const kinds = ['w', 'wu', 'l', 'lu'];
  kinds.forEach((k, i) => {
    OPS.set(`fcvt.${k}.${fmtName}`, { enc: (rm, rd, a) => rType(0x18, fmt, i, a, rm, rd), nsrc: 1, src: fmtName, dst: 'x', rounds: true });
    OPS.set(`fcvt.${fmtName}.${k}`, { enc: (rm, rd, a) => rType(0x1a, fmt, i, a, rm, rd), nsrc: 1, src: 'x', dst: fmtName, rounds: true });
  });
}
OPS.set('fcvt.s.d', { enc: (rm, rd, a) => rType(0x08, S, 1, a, rm, rd), nsrc: 1, src: 'd', dst: 's', rounds: true });
OPS.set('fcvt.d.s', { enc: (rm, rd, a) => rType(0x08, D, 0, a, rm, rd), nsrc: 1, src: 's', dst: 'd', rounds: true });

// ---------------------------------------------------------------------------
// Helpers

function newHart(): FpuHart {
  return { x: new Int32Array(64), f: new Int32Array(64), fflags: 0, frm: 0 };
}

/** Splits a hex string (up to 64 bits) into [lo, hi] int32 halves. */
function hex64(s: string): [number, number] {
  if (s.length <= 8) return [parseInt(s, 16) | 0, 0];
  return [parseInt(s.slice(-8), 16) | 0, parseInt(s.slice(0, -8), 16) | 0];
}

function toHex(lo: number, hi: number): string {
  return (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

function setF(h: FpuHart, r: number, kind: 's' | 'd' | 'x', lo: number, hi: number): void {
  if (kind === 'x') { h.x[2 * r] = lo; h.x[2 * r + 1] = hi; return; }
  h.f[2 * r] = lo;
  h.f[2 * r + 1] = kind === 's' ? -1 : hi;
}

const F32 = new Float32Array(1);
const U32 = new Int32Array(F32.buffer);
const F64 = new Float64Array(1);
const U64 = new Int32Array(F64.buffer);
function sBits(v: number): number { F32[0] = v; return U32[0]; }
function dBits(v: number): [number, number] { F64[0] = v; return [U64[0], U64[1]]; }

function flagStr(f: number): string {
  const n: string[] = [];
  if (f & FpFlag.NV) n.push('NV');
  if (f & FpFlag.DZ) n.push('DZ');
  if (f & FpFlag.OF) n.push('OF');
  if (f & FpFlag.UF) n.push('UF');
  if (f & FpFlag.NX) n.push('NX');
  return n.join('|') || '-';
}

// ---------------------------------------------------------------------------
// Reference vectors

function findGenSource(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'test', 'fpu-vectors', 'gen.c');
    if (existsSync(p)) return p;
    const q = join(dir, 'fpu-vectors', 'gen.c');
    if (existsSync(q)) return q;
    dir = dirname(dir);
  }
  throw new Error('test/fpu-vectors/gen.c not found');
}

interface GenResult { lines: string[]; error?: string }

function generateVectors(): GenResult {
  const src = findGenSource();
  const tmp = mkdtempSync(join(tmpdir(), 'vessel-fpu-'));
  try {
    const exe = join(tmp, 'gen');
    const cc = spawnSync('gcc', ['-O2', '-std=gnu11', '-frounding-math', '-fsignaling-nans', '-ffp-contract=off',
      '-fno-math-errno', '-o', exe, src, '-lm'], { encoding: 'utf8' });
    if (cc.error) {
      return { lines: [], error: `cannot run gcc (${cc.error.message}): install gcc (e.g. apt-get install gcc) to run the FPU reference-vector tests` };
    }
    if (cc.status !== 0) return { lines: [], error: `gcc failed to compile ${src}:\n${cc.stderr}` };
    const seed = process.env.FPU_SEED ?? '12345';
    const run = spawnSync(exe, [seed, process.env.FPU_SCALE ?? '1'], { encoding: 'utf8', maxBuffer: 1 << 30 });
    if (run.status !== 0) return { lines: [], error: `vector generator failed: ${run.stderr} ${run.error?.message ?? ''}` };
    return { lines: run.stdout.split('\n').filter((l) => l.length > 0) };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const gen = generateVectors();

test('reference vector generator compiles and runs (requires gcc)', () => {
  if (gen.error) assert.fail(gen.error);
  assert.ok(gen.lines.length >= 100000, `only ${gen.lines.length} vectors generated`);
});

/** Runs all vectors, grouped by op name; returns failures per op and counts. */
function runVectors(lines: string[]): { counts: Map<string, number>; failures: Map<string, string[]> } {
  const counts = new Map<string, number>();
  const failures = new Map<string, string[]>();
  const h = newHart();
  let n = 0;
  for (const line of lines) {
    const [name, rmS, aS, bS, cS, resS, flS] = line.split(' ');
    const op = OPS.get(name);
    if (!op) throw new Error(`unknown op in vectors: ${name}`);
    counts.set(name, (counts.get(name) ?? 0) + 1);
    n++;
    const rm = Number(rmS);
    const expFlags = parseInt(flS, 16);
    const [rLo, rHi] = hex64(resS);

    // Vary registers (including rd aliasing a source), static vs dynamic rounding,
    // and whether NX is already accrued.
    let rs1 = 1, rs2 = 2, rs3 = 3, rd = 4;
    if (n % 7 === 3) { rs1 = 10 + (n % 19); rs2 = 9; rs3 = 30; rd = rs1; }
    if (n % 11 === 5) { rd = 2; }
    const srcs = [rs1, rs2, rs3].slice(0, op.nsrc);
    const vals = [aS, bS, cS];
    for (let i = 0; i < op.nsrc; i++) {
      const [lo, hi] = hex64(vals[i]);
      setF(h, srcs[i], op.src, lo, hi);
    }
    let field = rm;
    h.frm = 0;
    if (op.rounds && n % 3 === 1) { field = 7; h.frm = rm; }
    const preNX = n % 4 === 1 ? FpFlag.NX : 0; // 4 is coprime with the 5 modes per operand tuple
    h.fflags = preNX;
    // Poison the destination so a missing write is noticed.
    if (op.dst === 'x') { h.x[2 * rd] = 0x5a5a5a5a; h.x[2 * rd + 1] = 0x5a5a5a5a; }
    else if (!srcs.includes(rd)) { h.f[2 * rd] = 0x5a5a5a5a; h.f[2 * rd + 1] = 0x5a5a5a5a; }
    const insn = op.enc(field, rd, rs1, rs2, rs3);
    const ok = executeFp(h, insn);
    let gotLo: number, gotHi: number;
    if (op.dst === 'x') { gotLo = h.x[2 * rd]; gotHi = h.x[2 * rd + 1]; }
    else { gotLo = h.f[2 * rd]; gotHi = h.f[2 * rd + 1]; }
    const wantHi = op.dst === 's' ? -1 : rHi;
    const wantFlags = expFlags | preNX;
    if (!ok || gotLo !== rLo || gotHi !== wantHi || h.fflags !== wantFlags) {
      let list = failures.get(name);
      if (!list) failures.set(name, list = []);
      if (list.length < 12) {
        list.push(`${line} | rm field ${field} frm ${h.frm} preNX ${preNX}: ` +
          (ok ? `got ${toHex(gotLo, gotHi)} ${flagStr(h.fflags)} want ${toHex(rLo, wantHi)} ${flagStr(wantFlags)}`
              : 'executeFp returned false'));
      } else list.push('');
    }
  }
  return { counts, failures };
}

if (!gen.error) {
  const t0 = Date.now();
  const { counts, failures } = runVectors(gen.lines);
  const elapsed = Date.now() - t0;
  test(`reference vectors: ${gen.lines.length} vectors over ${counts.size} instructions (${elapsed} ms)`, () => {
    // Every implemented instruction must be covered.
    assert.equal(counts.size, OPS.size, `instructions without vectors: ${[...OPS.keys()].filter((k) => !counts.has(k)).join(' ')}`);
  });
  for (const [name, cnt] of [...counts].sort()) {
    test(`vectors ${name} (${cnt})`, () => {
      const f = failures.get(name);
      if (f) assert.fail(`${f.length} of ${cnt} vectors failed:\n${f.filter((s) => s).join('\n')}`);
    });
  }
}

// ---------------------------------------------------------------------------
// Hand-written RISC-V specific cases

/** Runs one instruction on a fresh hart after setup; returns the hart. */
function run(insn: number, setup: (h: FpuHart) => void, frm = 0): FpuHart {
  const h = newHart();
  h.frm = frm;
  setup(h);
  assert.equal(executeFp(h, insn), true, `instruction 0x${insn.toString(16)} rejected`);
  return h;
}

const CANON_S = 0x7fc00000;
const RNE = RoundingMode.RNE, RTZ = RoundingMode.RTZ, RDN = RoundingMode.RDN, RUP = RoundingMode.RUP, RMM = RoundingMode.RMM;

test('enums', () => {
  assert.equal(FpFlag.NV, 16); assert.equal(FpFlag.DZ, 8); assert.equal(FpFlag.OF, 4);
  assert.equal(FpFlag.UF, 2); assert.equal(FpFlag.NX, 1);
  assert.equal(RoundingMode.RNE, 0); assert.equal(RoundingMode.RMM, 4); assert.equal(RoundingMode.DYN, 7);
});

test('NaN boxing: improperly boxed single operands read as the canonical NaN', () => {
  // fadd.s f3, f1, f2 with f1 = 1.0f but upper half not all ones
  let h = run(rType(0, S, 2, 1, RNE, 3), (h) => {
    h.f[2] = sBits(1); h.f[3] = 0; h.f[4] = sBits(2); h.f[5] = -1;
  });
  assert.equal(h.f[6], CANON_S); assert.equal(h.f[7], -1);
  assert.equal(h.fflags, 0, 'canonical NaN is quiet: no NV');
  // boxed upper half with a single bit clear is still improperly boxed
  h = run(rType(2, S, 2, 1, RNE, 3), (h) => {
    h.f[2] = sBits(3); h.f[3] = 0x7fffffff; h.f[4] = sBits(2); h.f[5] = -1;
  });
  assert.equal(h.f[6], CANON_S);
  // fsgnj.s uses the canonical NaN as its (bit) operand
  h = run(rType(4, S, 2, 1, 0, 3), (h) => {
    h.f[2] = sBits(1); h.f[3] = 0; h.f[4] = sBits(-2); h.f[5] = -1;
  });
  assert.equal(h.f[6] >>> 0, 0xffc00000); assert.equal(h.f[7], -1);
  // fsgnjx.s with unboxed rs2: canonical NaN sign (+) leaves rs1 unchanged
  h = run(rType(4, S, 2, 1, 2, 3), (h) => {
    h.f[2] = sBits(-1.5); h.f[3] = -1; h.f[4] = sBits(-2); h.f[5] = 5;
  });
  assert.equal(h.f[6], sBits(-1.5));
  // fclass.s of an unboxed value: quiet NaN
  h = run(rType(0x1c, S, 0, 1, 1, 10), (h) => { h.f[2] = 0; h.f[3] = 0; });
  assert.equal(h.x[20], 1 << 9); assert.equal(h.x[21], 0);
  // fmin.s with one unboxed operand returns the other operand
  h = run(rType(5, S, 2, 1, 0, 3), (h) => { h.f[2] = sBits(7); h.f[3] = 1; h.f[4] = sBits(-3); h.f[5] = -1; });
  assert.equal(h.f[6], sBits(-3)); assert.equal(h.fflags, 0);
  // fcvt.d.s of an unboxed value gives the canonical double NaN, no NV
  h = run(rType(8, D, 0, 1, RNE, 3), (h) => { h.f[2] = sBits(1); h.f[3] = 0; });
  assert.deepEqual([h.f[6], h.f[7]], [0, 0x7ff80000]); assert.equal(h.fflags, 0);
  // feq.s with unboxed operand: false, quiet; flt.s: NV
  h = run(rType(0x14, S, 2, 1, 2, 10), (h) => { h.f[2] = sBits(1); h.f[3] = 0; h.f[4] = sBits(1); h.f[5] = -1; });
  assert.equal(h.x[20], 0); assert.equal(h.fflags, 0);
  h = run(rType(0x14, S, 2, 1, 1, 10), (h) => { h.f[2] = sBits(1); h.f[3] = 0; h.f[4] = sBits(1); h.f[5] = -1; });
  assert.equal(h.x[20], 0); assert.equal(h.fflags, FpFlag.NV);
  // single results are NaN-boxed
  h = run(rType(0, S, 2, 1, RNE, 3), (h) => { h.f[2] = sBits(1); h.f[3] = -1; h.f[4] = sBits(2); h.f[5] = -1; h.f[7] = 0; });
  assert.equal(h.f[6], sBits(3)); assert.equal(h.f[7], -1);
});

test('FMV.X.W sign-extends and ignores NaN boxing; FMV.W.X boxes; FMV.X.D/FMV.D.X are raw', () => {
  let h = run(rType(0x1c, S, 0, 1, 0, 10), (h) => { h.f[2] = 0x80000001 | 0; h.f[3] = 0x1234; });
  assert.deepEqual([h.x[20] >>> 0, h.x[21]], [0x80000001, -1]);
  h = run(rType(0x1c, S, 0, 1, 0, 10), (h) => { h.f[2] = 0x7f800001; h.f[3] = -1; });
  assert.deepEqual([h.x[20], h.x[21]], [0x7f800001, 0], 'sNaN payload preserved, positive sign-extends with 0');
  h = run(rType(0x1e, S, 0, 10, 0, 3), (h) => { h.x[20] = 0x7f800001; h.x[21] = 0x1234; });
  assert.deepEqual([h.f[6], h.f[7]], [0x7f800001, -1]);
  h = run(rType(0x1c, D, 0, 1, 0, 10), (h) => { h.f[2] = 0xdead; h.f[3] = 0x7ff00000 | 0; });
  assert.deepEqual([h.x[20], h.x[21]], [0xdead, 0x7ff00000]);
  h = run(rType(0x1e, D, 0, 10, 0, 3), (h) => { h.x[20] = 1; h.x[21] = 0xfff00000 | 0; });
  assert.deepEqual([h.f[6], h.f[7]], [1, 0xfff00000 | 0]);
  // FMV.X.W to x0 is discarded
  h = run(rType(0x1c, S, 0, 1, 0, 0), (h) => { h.f[2] = 5; h.f[3] = -1; });
  assert.deepEqual([h.x[0], h.x[1]], [0, 0]);
  assert.equal(h.fflags, 0);
});

test('FCLASS covers all ten classes', () => {
  const sCases: [number, number][] = [
    [0xff800000, 0], [sBits(-1), 1], [0x80000001, 2], [0x80000000, 3], [0, 4], [1, 5], [sBits(1), 6],
    [0x7f800000, 7], [0x7f800001, 8], [0x7fc00000, 9], [0xffc00001, 9], [0xffa00000, 8],
  ];
  for (const [bits, cls] of sCases) {
    const h = run(rType(0x1c, S, 0, 1, 1, 10), (h) => { h.f[2] = bits | 0; h.f[3] = -1; });
    assert.equal(h.x[20], 1 << cls, `fclass.s ${bits.toString(16)}`);
  }
  const dCases: [number, number, number][] = [
    [0xfff00000, 0, 0], [0xbff00000, 0, 1], [0x80000000, 1, 2], [0x80000000, 0, 3], [0, 0, 4], [0, 1, 5],
    [0x3ff00000, 0, 6], [0x7ff00000, 0, 7], [0x7ff00000, 1, 8], [0x7ff80000, 0, 9], [0x7ff40000, 0, 8],
  ];
  for (const [hi, lo, cls] of dCases) {
    const h = run(rType(0x1c, D, 0, 1, 1, 10), (h) => { h.f[2] = lo; h.f[3] = hi | 0; });
    assert.equal(h.x[20], 1 << cls, `fclass.d ${hi.toString(16)}:${lo}`);
  }
});

test('FCVT to integer saturation table and sign extension', () => {
  const I32MAX = [0x7fffffff, 0], I32MIN = [0x80000000 | 0, -1], U32MAX = [-1, -1], ZERO = [0, 0];
  const I64MAX = [-1, 0x7fffffff], I64MIN = [0, 0x80000000 | 0], U64MAX = [-1, -1];
  const NaN_ = NaN;
  // [kind, input, expected lo/hi, flags]
  const cases: [number, number, number[], number][] = [
    [0, NaN_, I32MAX, FpFlag.NV], [0, Infinity, I32MAX, FpFlag.NV], [0, -Infinity, I32MIN, FpFlag.NV],
    [0, 2147483648, I32MAX, FpFlag.NV], [0, -2147483649, I32MIN, FpFlag.NV], [0, -2147483648, I32MIN, 0],
    [0, -1.5, [-2, -1], FpFlag.NX], [0, 3e9, I32MAX, FpFlag.NV],
    [1, NaN_, U32MAX, FpFlag.NV], [1, Infinity, U32MAX, FpFlag.NV], [1, -Infinity, ZERO, FpFlag.NV],
    [1, -1, ZERO, FpFlag.NV], [1, -0.25, ZERO, FpFlag.NX], [1, 4294967295, U32MAX, 0],
    [1, 4294967296, U32MAX, FpFlag.NV], [1, 2147483648, [0x80000000 | 0, -1], 0],
    [2, NaN_, I64MAX, FpFlag.NV], [2, Infinity, I64MAX, FpFlag.NV], [2, -Infinity, I64MIN, FpFlag.NV],
    [2, 9223372036854775808, I64MAX, FpFlag.NV], [2, -9223372036854775808, I64MIN, 0],
    [3, NaN_, U64MAX, FpFlag.NV], [3, -Infinity, ZERO, FpFlag.NV], [3, 18446744073709551616, U64MAX, FpFlag.NV],
    [3, -0.5, ZERO, FpFlag.NX], [3, 9223372036854775808, [0, 0x80000000 | 0], 0], [3, -1, ZERO, FpFlag.NV],
  ];
  for (const [kind, v, want, flags] of cases) {
    const [lo, hi] = dBits(v);
    const h = run(rType(0x18, D, kind, 1, RNE, 10), (h) => { h.f[2] = lo; h.f[3] = hi; });
    assert.deepEqual([h.x[20], h.x[21]], want, `fcvt kind ${kind} of ${v}`);
    assert.equal(h.fflags, flags, `fcvt kind ${kind} of ${v} flags`);
  }
  // single-precision source, NaN with sign bit set still saturates to max
  const h = run(rType(0x18, S, 0, 1, RTZ, 10), (h) => { h.f[2] = 0xffc00000 | 0; h.f[3] = -1; });
  assert.deepEqual([h.x[20], h.x[21]], I32MAX);
  // out-of-range after rounding: 2^31 - 0.5 rounds up in RUP
  const h2 = run(rType(0x18, D, 0, 1, RUP, 10), (h) => { [h.f[2], h.f[3]] = dBits(2147483647.5); });
  assert.deepEqual([h2.x[20], h2.x[21]], I32MAX); assert.equal(h2.fflags, FpFlag.NV);
  const h3 = run(rType(0x18, D, 0, 1, RDN, 10), (h) => { [h.f[2], h.f[3]] = dBits(2147483647.5); });
  assert.deepEqual([h3.x[20], h3.x[21]], I32MAX); assert.equal(h3.fflags, FpFlag.NX);
  // rd = x0: flags still raised, no write
  const h4 = run(rType(0x18, D, 0, 1, RNE, 0), (h) => { [h.f[2], h.f[3]] = dBits(NaN); });
  assert.deepEqual([h4.x[0], h4.x[1]], [0, 0]); assert.equal(h4.fflags, FpFlag.NV);
});

test('RMM rounds ties away from zero', () => {
  // fcvt.w.d of +-2.5, +-0.5, 3.5 under RMM vs RNE
  const cvt = (v: number, rm: number): number => {
    const h = run(rType(0x18, D, 0, 1, rm, 10), (h) => { [h.f[2], h.f[3]] = dBits(v); });
    return h.x[20];
  };
  assert.equal(cvt(2.5, RMM), 3); assert.equal(cvt(2.5, RNE), 2);
  assert.equal(cvt(-2.5, RMM), -3); assert.equal(cvt(-2.5, RNE), -2);
  assert.equal(cvt(0.5, RMM), 1); assert.equal(cvt(-0.5, RMM), -1); assert.equal(cvt(3.5, RNE), 4);
  assert.equal(cvt(2.4999999999999996, RMM), 2);
  // fadd.d 1 + 2^-53 (exact tie): RNE -> 1, RMM -> 1 + 2^-52
  const add = (a: number, b: number, rm: number, dyn = false): [number, number, number] => {
    const h = run(rType(0, D, 2, 1, dyn ? 7 : rm, 3), (h) => {
      [h.f[2], h.f[3]] = dBits(a); [h.f[4], h.f[5]] = dBits(b);
    }, dyn ? rm : 0);
    return [h.f[6], h.f[7], h.fflags];
  };
  assert.deepEqual(add(1, 2 ** -53, RNE), [...dBits(1), FpFlag.NX]);
  assert.deepEqual(add(1, 2 ** -53, RMM), [...dBits(1 + 2 ** -52), FpFlag.NX]);
  assert.deepEqual(add(1, 2 ** -53, RMM, true), [...dBits(1 + 2 ** -52), FpFlag.NX]);
  assert.deepEqual(add(-1, -(2 ** -53), RMM), [...dBits(-1 - 2 ** -52), FpFlag.NX]);
  // a tie that RNE already rounds away is unchanged
  assert.deepEqual(add(1 + 2 ** -52, 2 ** -53, RMM), [...dBits(1 + 2 ** -51), FpFlag.NX]);
  // fmul.s tie: (1 + 2^-12) * (1 + 2^-12) = 1 + 2^-11 + 2^-24: tie between 1+2^-11 and 1+2^-11+2^-23
  const mulS = (rm: number): number => {
    const h = run(rType(2, S, 2, 1, rm, 3), (h) => {
      h.f[2] = sBits(1 + 2 ** -12); h.f[3] = -1; h.f[4] = sBits(1 + 2 ** -12); h.f[5] = -1;
    });
    return h.f[6];
  };
  assert.equal(mulS(RNE), sBits(1 + 2 ** -11));
  assert.equal(mulS(RMM), sBits(1 + 2 ** -11 + 2 ** -23));
  // subnormal tie: min_subnormal / 2 -> 0 (RNE) vs min_subnormal (RMM), with UF|NX
  const half = (rm: number): [number, number] => {
    const h = run(rType(3, D, 2, 1, rm, 3), (h) => { h.f[2] = 1; h.f[3] = 0; [h.f[4], h.f[5]] = dBits(2); });
    return [h.f[6], h.fflags];
  };
  assert.deepEqual(half(RNE), [0, FpFlag.UF | FpFlag.NX]);
  assert.deepEqual(half(RMM), [1, FpFlag.UF | FpFlag.NX]);
  // fcvt.s.l tie: 2^24 + 1 -> 2^24 (RNE) / 2^24 + 2 (RMM)
  const cvtS = (rm: number): number => run(rType(0x1a, S, 2, 10, rm, 3), (h) => { h.x[20] = 0x1000001; }).f[6];
  assert.equal(cvtS(RNE), sBits(16777216)); assert.equal(cvtS(RMM), sBits(16777218));
});

test('FMIN/FMAX: -0 < +0, NaN operands, sNaN raises NV', () => {
  const mm = (fmt: number, max: boolean, a: [number, number], b: [number, number]): [number, number, number] => {
    const h = run(rType(5, fmt, 2, 1, max ? 1 : 0, 3), (h) => { [h.f[2], h.f[3]] = a; [h.f[4], h.f[5]] = b; });
    return [h.f[6], h.f[7], h.fflags];
  };
  const pz = dBits(0), nz = dBits(-0), one = dBits(1), qnan: [number, number] = [0, 0x7ff80000], snan: [number, number] = [1, 0x7ff00000];
  assert.deepEqual(mm(D, false, pz, nz), [...nz, 0]);
  assert.deepEqual(mm(D, false, nz, pz), [...nz, 0]);
  assert.deepEqual(mm(D, true, nz, pz), [...pz, 0]);
  assert.deepEqual(mm(D, true, pz, nz), [...pz, 0]);
  assert.deepEqual(mm(D, false, qnan, one), [...one, 0]);
  assert.deepEqual(mm(D, true, one, snan), [...one, FpFlag.NV]);
  assert.deepEqual(mm(D, true, snan, qnan), [0, 0x7ff80000, FpFlag.NV]);
  assert.deepEqual(mm(D, false, [5, 0xfff80000 | 0], qnan), [0, 0x7ff80000, 0]);
  const ps = (v: number): [number, number] => [sBits(v), -1];
  assert.deepEqual(mm(S, false, ps(0), ps(-0)), [sBits(-0), -1, 0]);
  assert.deepEqual(mm(S, true, [0x7f800001, -1], ps(2)), [sBits(2), -1, FpFlag.NV]);
});

test('FMA: inf*0 with quiet NaN addend raises NV; single rounding', () => {
  const fma = (opc: number, fmt: number, a: [number, number], b: [number, number], c: [number, number], rm = RNE): [number, number, number] => {
    const h = run(r4Type(opc, 3, fmt, 2, 1, rm, 4), (h) => {
      [h.f[2], h.f[3]] = a; [h.f[4], h.f[5]] = b; [h.f[6], h.f[7]] = c;
    });
    return [h.f[8], h.f[9], h.fflags];
  };
  const inf = dBits(Infinity), zero = dBits(0), qnan: [number, number] = [0, 0x7ff80000];
  assert.deepEqual(fma(FMADD, D, inf, zero, qnan), [0, 0x7ff80000, FpFlag.NV]);
  assert.deepEqual(fma(FNMADD, D, zero, inf, qnan), [0, 0x7ff80000, FpFlag.NV]);
  assert.deepEqual(fma(FMADD, D, dBits(1), zero, qnan), [0, 0x7ff80000, 0]);
  // fused: (1 + 2^-30)^2 - (1 + 2^-29) = 2^-60 exactly (a separate multiply would lose it)
  const x = dBits(1 + 2 ** -30);
  assert.deepEqual(fma(FMSUB, D, x, x, dBits(1 + 2 ** -29)), [...dBits(2 ** -60), 0]);
  assert.deepEqual(fma(FNMADD, D, x, x, dBits(-(1 + 2 ** -29))), [...dBits(-(2 ** -60)), 0]);
  // exact zero from cancellation: +0 (RNE), -0 (RDN)
  assert.deepEqual(fma(FMSUB, D, dBits(3), dBits(2), dBits(6)), [...dBits(0), 0]);
  assert.deepEqual(fma(FMSUB, D, dBits(3), dBits(2), dBits(6), RDN), [...dBits(-0), 0]);
  // FNMSUB: -(a*b) + c
  assert.deepEqual(fma(FNMSUB, D, dBits(3), dBits(2), dBits(1)), [...dBits(-5), 0]);
  const sx: [number, number] = [sBits(1 + 2 ** -12), -1];
  assert.deepEqual(fma(FMSUB, S, sx, sx, [sBits(1 + 2 ** -11), -1]), [sBits(2 ** -24), -1, 0]);
});

test('directed rounding, overflow and underflow flags', () => {
  const op = (f5: number, fmt: number, a: number, b: number, rm: number): [number, number, number] => {
    const h = run(rType(f5, fmt, 2, 1, rm, 3), (h) => {
      if (fmt === D) { [h.f[2], h.f[3]] = dBits(a); [h.f[4], h.f[5]] = dBits(b); }
      else { h.f[2] = sBits(a); h.f[3] = -1; h.f[4] = sBits(b); h.f[5] = -1; }
    });
    return [h.f[6], h.f[7], h.fflags];
  };
  const MAX = 1.7976931348623157e308;
  assert.deepEqual(op(2, D, MAX, 2, RNE), [...dBits(Infinity), FpFlag.OF | FpFlag.NX]);
  assert.deepEqual(op(2, D, MAX, 2, RTZ), [...dBits(MAX), FpFlag.OF | FpFlag.NX]);
  assert.deepEqual(op(2, D, MAX, -2, RUP), [...dBits(-MAX), FpFlag.OF | FpFlag.NX]);
  assert.deepEqual(op(2, D, MAX, -2, RDN), [...dBits(-Infinity), FpFlag.OF | FpFlag.NX]);
  // 1/3 in each direction
  assert.deepEqual(op(3, D, 1, 3, RDN), [...dBits(1 / 3), FpFlag.NX]);
  assert.deepEqual(op(3, D, 1, 3, RUP), [...dBits(0.33333333333333337), FpFlag.NX]);
  assert.deepEqual(op(3, D, -1, 3, RTZ), [...dBits(-1 / 3), FpFlag.NX]);
  // division by zero
  assert.deepEqual(op(3, D, -1, 0, RNE), [...dBits(-Infinity), FpFlag.DZ]);
  assert.deepEqual(op(3, D, 0, 0, RNE), [0, 0x7ff80000, FpFlag.NV]);
  // tininess after rounding: (2^-1022 - 2^-1074) * (1 + 2^-52) = 2^-1022 * (1 - 2^-104) rounds
  // (with unbounded exponent) to 2^-1022 in RNE: not tiny, no UF; in RTZ it stays tiny.
  const maxSub = 2 ** -1022 - 2 ** -1074;
  assert.deepEqual(op(2, D, maxSub, 1 + 2 ** -52, RNE), [...dBits(2 ** -1022), FpFlag.NX]);
  assert.deepEqual(op(2, D, maxSub, 1 + 2 ** -52, RUP), [...dBits(2 ** -1022), FpFlag.NX]);
  assert.deepEqual(op(2, D, maxSub, 1 + 2 ** -52, RTZ), [...dBits(maxSub), FpFlag.UF | FpFlag.NX]);
  // 2^-1022 * (1 - 2^-53) is exactly representable with 53 bits, so it is tiny even though
  // RNE delivers 2^-1022
  assert.deepEqual(op(2, D, 2 ** -1022, 1 - 2 ** -53, RNE), [...dBits(2 ** -1022), FpFlag.UF | FpFlag.NX]);
  // exact subnormal result: no UF
  assert.deepEqual(op(2, D, 2 ** -1000, 2 ** -60, RNE), [...dBits(2 ** -1060), 0]);
  // single: min normal * (1 - 2^-24)
  const maxSubS = 2 ** -126 - 2 ** -149;
  assert.deepEqual(op(2, S, maxSubS, 1 + 2 ** -23, RNE), [sBits(2 ** -126), -1, FpFlag.NX]);
  assert.deepEqual(op(2, S, maxSubS, 1 + 2 ** -23, RMM), [sBits(2 ** -126), -1, FpFlag.NX]);
  assert.deepEqual(op(2, S, maxSubS, 1 + 2 ** -23, RDN), [sBits(maxSubS), -1, FpFlag.UF | FpFlag.NX]);
  // x - x = +0, or -0 in RDN
  assert.deepEqual(op(1, D, 1.5, 1.5, RNE), [...dBits(0), 0]);
  assert.deepEqual(op(1, D, 1.5, 1.5, RDN), [...dBits(-0), 0]);
  assert.deepEqual(op(0, S, -0, 0, RDN), [sBits(-0), -1, 0]);
});

test('fflags accrue (OR) and are untouched by exact operations', () => {
  const h = newHart();
  h.fflags = FpFlag.DZ;
  [h.f[2], h.f[3]] = dBits(1); [h.f[4], h.f[5]] = dBits(3);
  assert.ok(executeFp(h, rType(3, D, 2, 1, RNE, 6)));
  assert.equal(h.fflags, FpFlag.DZ | FpFlag.NX);
  h.fflags = FpFlag.OF;
  assert.ok(executeFp(h, rType(0, D, 2, 1, RNE, 6)));
  assert.equal(h.fflags, FpFlag.OF);
});

test('illegal encodings are rejected without side effects', () => {
  const bad: [string, number, number][] = [
    ['fadd.s rm=5', rType(0, S, 2, 1, 5, 3), 0],
    ['fadd.d rm=6', rType(0, D, 2, 1, 6, 3), 0],
    ['fadd.d dyn frm=5', rType(0, D, 2, 1, 7, 3), 5],
    ['fmul.s dyn frm=7', rType(2, S, 2, 1, 7, 3), 7],
    ['fadd.h (fmt=2)', rType(0, 2, 2, 1, 0, 3), 0],
    ['fadd.q (fmt=3)', rType(0, 3, 2, 1, 0, 3), 0],
    ['fmadd.h', r4Type(FMADD, 4, 2, 2, 1, 0, 3), 0],
    ['fmadd.q', r4Type(FMADD, 4, 3, 2, 1, 0, 3), 0],
    ['fmadd.d rm=5', r4Type(FMADD, 4, D, 2, 1, 5, 3), 0],
    ['fnmadd.s dyn frm=6', r4Type(FNMADD, 4, S, 2, 1, 7, 3), 6],
    ['fsqrt.d rs2!=0', rType(0x0b, D, 1, 1, 0, 3), 0],
    ['fsqrt.s rm=5', rType(0x0b, S, 0, 1, 5, 3), 0],
    ['fsgnj.d funct3=3', rType(4, D, 2, 1, 3, 3), 0],
    ['fmin.s funct3=2 (fminm)', rType(5, S, 2, 1, 2, 3), 0],
    ['feq.d funct3=3', rType(0x14, D, 2, 1, 3, 10), 0],
    ['fle.s funct3=4 (fleq)', rType(0x14, S, 2, 1, 4, 10), 0],
    ['fcvt.s.s', rType(8, S, 0, 1, 0, 3), 0],
    ['fcvt.d.d', rType(8, D, 1, 1, 0, 3), 0],
    ['fcvt.s.h', rType(8, S, 2, 1, 0, 3), 0],
    ['fcvt.d.s rm=5', rType(8, D, 0, 1, 5, 3), 0],
    ['fcvt.w.d rs2=4', rType(0x18, D, 4, 1, 0, 10), 0],
    ['fcvt.w.d rm=6', rType(0x18, D, 0, 1, 6, 10), 0],
    ['fcvt.d.w rs2=5', rType(0x1a, D, 5, 10, 0, 3), 0],
    ['fcvt.d.w dyn frm=5', rType(0x1a, D, 0, 10, 7, 3), 5],
    ['fmv.x.d rs2=1', rType(0x1c, D, 1, 1, 0, 10), 0],
    ['fclass.s funct3=2', rType(0x1c, S, 0, 1, 2, 10), 0],
    ['fmv.w.x funct3=1', rType(0x1e, S, 0, 10, 1, 3), 0],
    ['fli.s (fmv rs2=1)', rType(0x1e, S, 1, 0, 0, 3), 0],
    ['reserved funct5 0x06', rType(6, S, 2, 1, 0, 3), 0],
    ['reserved funct5 0x1f', rType(0x1f, D, 2, 1, 0, 3), 0],
    ['reserved funct5 0x10', rType(0x10, D, 2, 1, 0, 3), 0],
    ['wrong opcode (OP)', (rType(0, S, 2, 1, 0, 3) & ~0x7f) | 0x33, 0],
  ];
  for (const [name, insn, frm] of bad) {
    const h = newHart();
    h.frm = frm;
    h.fflags = FpFlag.UF;
    for (let i = 0; i < 64; i++) { h.f[i] = (i * 0x1234567) | 0; h.x[i] = i < 2 ? 0 : (i * 0x7654321) | 0; }
    h.f[2] = 0x7f800001; h.f[3] = -1; // an sNaN in f1 would raise NV if touched
    const f0 = h.f.slice(), x0 = h.x.slice();
    assert.equal(executeFp(h, insn), false, name);
    assert.deepEqual(h.f, f0, `${name}: f modified`);
    assert.deepEqual(h.x, x0, `${name}: x modified`);
    assert.equal(h.fflags, FpFlag.UF, `${name}: fflags modified`);
    assert.equal(h.frm, frm);
  }
  // instruction words given as signed int32 decode the same
  const h = run(rType(0x1c, D, 0, 1, 1, 10) | 0, (h) => { [h.f[2], h.f[3]] = dBits(-1); });
  assert.equal(h.x[20], 1 << 1);
});

test('FCVT.S.D / FCVT.D.S / integer conversions, hand cases', () => {
  // fcvt.s.d: overflow per mode, sNaN -> canonical with NV
  const sd = (v: number | [number, number], rm: number): [number, number] => {
    const h = run(rType(8, S, 1, 1, rm, 3), (h) => { [h.f[2], h.f[3]] = typeof v === 'number' ? dBits(v) : v; });
    assert.equal(h.f[7], -1);
    return [h.f[6], h.fflags];
  };
  assert.deepEqual(sd(1e39, RNE), [sBits(Infinity), FpFlag.OF | FpFlag.NX]);
  assert.deepEqual(sd(1e39, RTZ), [sBits(3.4028234663852886e38), FpFlag.OF | FpFlag.NX]);
  assert.deepEqual(sd(-1e39, RUP), [sBits(-3.4028234663852886e38), FpFlag.OF | FpFlag.NX]);
  assert.deepEqual(sd([1, 0x7ff00000], RNE), [CANON_S, FpFlag.NV]);
  assert.deepEqual(sd([0, 0xfff80000 | 0], RNE), [CANON_S, 0]);
  assert.deepEqual(sd(1e-50, RNE), [0, FpFlag.UF | FpFlag.NX]);
  assert.deepEqual(sd(1e-50, RUP), [1, FpFlag.UF | FpFlag.NX]);
  assert.deepEqual(sd(-1e-50, RDN), [0x80000001 | 0, FpFlag.UF | FpFlag.NX]);
  // fcvt.d.s of sNaN
  const h = run(rType(8, D, 0, 1, RNE, 3), (h) => { h.f[2] = 0xff800001 | 0; h.f[3] = -1; });
  assert.deepEqual([h.f[6], h.f[7], h.fflags], [0, 0x7ff80000, FpFlag.NV]);
  // fcvt.d.w uses only the low 32 bits of rs1
  const h2 = run(rType(0x1a, D, 0, 10, RNE, 3), (h) => { h.x[20] = -5; h.x[21] = 0x12345678; });
  assert.deepEqual([h2.f[6], h2.f[7]], dBits(-5));
  const h3 = run(rType(0x1a, D, 1, 10, RNE, 3), (h) => { h.x[20] = -5; h.x[21] = 0; });
  assert.deepEqual([h3.f[6], h3.f[7]], dBits(4294967291));
  // fcvt.d.lu of 2^64-1: RNE -> 2^64, RTZ -> 2^64 - 2048
  const lu = (rm: number): [number, number, number] => {
    const h = run(rType(0x1a, D, 3, 10, rm, 3), (h) => { h.x[20] = -1; h.x[21] = -1; });
    return [h.f[6], h.f[7], h.fflags];
  };
  assert.deepEqual(lu(RNE), [...dBits(18446744073709551616), FpFlag.NX]);
  assert.deepEqual(lu(RTZ), [...dBits(18446744073709549568), FpFlag.NX]);
  // fcvt.s.l of INT64_MIN is exact
  const h4 = run(rType(0x1a, S, 2, 10, RNE, 3), (h) => { h.x[20] = 0; h.x[21] = 0x80000000 | 0; });
  assert.deepEqual([h4.f[6], h4.fflags], [sBits(-9223372036854775808), 0]);
  // x0 as a source reads zero
  const h5 = run(rType(0x1a, D, 2, 0, RNE, 3), () => {});
  assert.deepEqual([h5.f[6], h5.f[7]], [0, 0]);
});
