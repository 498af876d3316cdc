// Command-line pieces every benchmark shares: integer options and the engine list.

export type EngineName = 'qemu' | 'vessel';

export class UsageError extends Error {}

/** `--name value` as an integer in [min, max], `def` when absent. */
export function intArg(name: string, value: string | undefined, def: number, min: number, max: number): number {
  if (value === undefined) return def;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${value}"`);
  return n;
}

/** `--engines qemu,vessel` (the default: both), without repeats. */
export function engineList(value: string | undefined): EngineName[] {
  const engines = (value ?? 'qemu,vessel').split(',').map((s) => s.trim()).filter(Boolean);
  for (const e of engines) if (e !== 'qemu' && e !== 'vessel') throw new UsageError(`--engines: unknown engine "${e}" (qemu, vessel)`);
  if (engines.length === 0) throw new UsageError('--engines: name at least one of qemu, vessel');
  return [...new Set(engines)] as EngineName[];
}
