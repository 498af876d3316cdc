// Command-line pieces every benchmark shares: integer options and the engine list.

export type EngineName = 'qemu' | 'vessel';
export const ENGINES: readonly EngineName[] = ['qemu', 'vessel'];

export class UsageError extends Error {}

/** `--name value` as an integer in [min, max], `def` when absent. */
export function intArg(name: string, value: string | undefined, def: number, min: number, max: number): number {
  if (value === undefined) return def;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${value}"`);
  return n;
}

/** `--engines a,b` out of `all` (the default: all of them), in the order given, without repeats. */
export function engineList<E extends string>(value: string | undefined, all: readonly E[]): E[] {
  const engines = (value ?? all.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const e of engines) if (!(all as readonly string[]).includes(e)) throw new UsageError(`--engines: unknown engine "${e}" (${all.join(', ')})`);
  if (engines.length === 0) throw new UsageError(`--engines: name at least one of ${all.join(', ')}`);
  return [...new Set(engines)] as E[];
}
