/**
 * A hart's architectural state as plain JSON, for VM snapshots (docs/SNAPSHOT.md): integer and
 * floating-point registers, pc, privilege level and every CSR the hart keeps. What derives from
 * these (TLBs, translation mode, JIT lookups) is recomputed on restore by Hart.afterRestore().
 */
import { Priv } from './csr.js';
import type { Hart } from './hart.js';
import { restoreArray, savedBool, savedInt, savedObject, SnapshotStateError } from '../hw/snapshot-state.js';

/** The CSR fields of Hart saved as they are: each an int32 (a half of a 64-bit CSR, or a 32-bit one). */
const CSR_FIELDS = [
  'fflags', 'frm', 'mstatus', 'medeleg', 'mideleg', 'mie', 'mipSw', 'mipHw',
  'mtvecLo', 'mtvecHi', 'stvecLo', 'stvecHi', 'mepcLo', 'mepcHi', 'sepcLo', 'sepcHi',
  'mcauseLo', 'mcauseHi', 'scauseLo', 'scauseHi', 'mtvalLo', 'mtvalHi', 'stvalLo', 'stvalHi',
  'mscratchLo', 'mscratchHi', 'sscratchLo', 'sscratchHi', 'satpLo', 'satpHi',
  'mcounteren', 'scounteren', 'mcountinhibit', 'menvcfgLo', 'menvcfgHi', 'senvcfgLo',
  'stimecmpLo', 'stimecmpHi', 'reservation', // (a RAM offset)
] as const satisfies readonly (keyof Hart)[];

type CsrField = (typeof CSR_FIELDS)[number];

export interface HartSnapshot {
  id: number;
  /** x0..x31 as (lo, hi) int32 halves. */
  x: number[];
  /** f0..f31 as (lo, hi) int32 halves. */
  f: number[];
  pcLo: number;
  pcHi: number;
  priv: Priv;
  csrs: Record<CsrField, number>;
  instret: number;
  /** minstret/mcycle minus instret. */
  counterBias: number;
  waiting: boolean;
}

export function saveHart(h: Hart): HartSnapshot {
  const csrs = {} as Record<CsrField, number>;
  for (const k of CSR_FIELDS) csrs[k] = h[k];
  return {
    id: h.id, x: [...h.x], f: [...h.f], pcLo: h.pcLo, pcHi: h.pcHi, priv: h.priv, csrs,
    instret: h.instret, counterBias: h.counterBias, waiting: h.waiting,
  };
}

const INT32_MIN = -(2 ** 31), INT32_MAX = 2 ** 31 - 1;

export function restoreHart(h: Hart, saved: unknown): void {
  const what = `hart ${h.id}`;
  const s = savedObject(what, saved);
  if (s.id !== h.id) throw new SnapshotStateError(`${what}: the saved state is hart ${String(s.id)}'s`);
  const int32 = (k: string, v: unknown): number => savedInt(`${what}.${k}`, v, INT32_MIN, INT32_MAX);
  const priv = s.priv;
  if (priv !== Priv.User && priv !== Priv.Supervisor && priv !== Priv.Machine) throw new SnapshotStateError(`${what}.priv: ${String(priv)} is not a privilege level`);
  const csrs = savedObject(`${what}.csrs`, s.csrs);
  // Check everything before writing anything, so a bad state leaves the hart as it was.
  const values = CSR_FIELDS.map((k) => int32(`csrs.${k}`, csrs[k]));
  const x = new Int32Array(64), f = new Int32Array(64);
  restoreArray(`${what}.x`, s.x, x);
  restoreArray(`${what}.f`, s.f, f);
  const pcLo = int32('pcLo', s.pcLo), pcHi = int32('pcHi', s.pcHi);
  const instret = savedInt(`${what}.instret`, s.instret, 0, Number.MAX_SAFE_INTEGER);
  const counterBias = savedInt(`${what}.counterBias`, s.counterBias, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const waiting = savedBool(`${what}.waiting`, s.waiting);
  h.x.set(x);
  h.x[0] = 0; h.x[1] = 0;
  h.f.set(f);
  h.pcLo = pcLo; h.pcHi = pcHi;
  h.priv = priv;
  CSR_FIELDS.forEach((k, i) => { h[k] = values[i]; });
  h.instret = instret;
  h.waiting = waiting;
  h.afterRestore(counterBias);
}
