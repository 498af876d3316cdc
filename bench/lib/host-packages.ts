// Debian packages a benchmark needs on the host: installed with apt-get when run as root,
// otherwise a UsageError naming the apt-get line to run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

import { UsageError } from './options.js';

/** Something the benchmark needs, how to tell it is there, and the packages that provide it. */
export interface HostNeed {
  what: string;
  present: () => boolean;
  packages: string[];
}

/** True when `command` runs (exit status 0) with `args`. */
export function commandRuns(command: string, args: string[]): boolean {
  const r = spawnSync(command, args, { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

/** A need met by a file, e.g. a firmware image. */
export function fileNeed(what: string, file: string, packages: string[]): HostNeed {
  return { what, present: () => existsSync(file), packages };
}

/** Installs the packages of every need that is not met (one apt-get run), then checks again. */
export function ensureHostPackages(needs: HostNeed[], log: (msg: string) => void): void {
  const missing = needs.filter((n) => !n.present());
  if (missing.length === 0) return;
  const packages = [...new Set(missing.flatMap((n) => n.packages))];
  const line = `apt-get install -y --no-install-recommends ${packages.join(' ')}`;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root) throw new UsageError(`missing ${missing.map((n) => n.what).join(', ')}. Install with: sudo ${line}`);
  log(`missing ${missing.map((n) => n.what).join(', ')}; running: ${line}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', line.split(' ').slice(1), { stdio: ['ignore', 2, 2], env });
  if (install().status !== 0) {
    // A fresh machine often has no package lists yet.
    spawnSync('apt-get', ['update'], { stdio: ['ignore', 2, 2], env });
    const r = install();
    if (r.status !== 0) throw new UsageError(`"${line}" failed (exit ${r.status ?? r.signal ?? r.error?.message})`);
  }
  const still = needs.filter((n) => !n.present());
  if (still.length) throw new UsageError(`${packages.join(' ')} installed, but still missing: ${still.map((n) => n.what).join(', ')}`);
}
