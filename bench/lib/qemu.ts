// QEMU, the peer every benchmark measures Vessel against in the same run.
import { spawnSync } from 'node:child_process';

import { ensureHostPackages } from './host-packages.js';

export const QEMU = 'qemu-system-riscv64';
export const QEMU_PACKAGE = 'qemu-system-misc';

export function qemuVersion(): string | null {
  const r = spawnSync(QEMU, ['--version'], { encoding: 'utf8' });
  if (r.status !== 0 || r.error) return null;
  return r.stdout.split('\n')[0].trim();
}

/**
 * Returns QEMU's version line, installing qemu-system-misc first if needed (root only; otherwise
 * a UsageError names the apt-get line to run).
 */
export function ensureQemu(): string {
  ensureHostPackages([{ what: QEMU, present: () => qemuVersion() !== null, packages: [QEMU_PACKAGE] }],
    (msg) => process.stderr.write(`bench: ${msg}\n`));
  return qemuVersion()!;
}
