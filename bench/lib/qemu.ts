// QEMU, the peer every benchmark measures Vessel against in the same run.
import { spawnSync } from 'node:child_process';

export const QEMU = 'qemu-system-riscv64';
export const QEMU_PACKAGE = 'qemu-system-misc';

export function qemuVersion(): string | null {
  const r = spawnSync(QEMU, ['--version'], { encoding: 'utf8' });
  if (r.status !== 0 || r.error) return null;
  return r.stdout.split('\n')[0].trim();
}

/** Returns QEMU's version line, installing qemu-system-misc first if needed (root only). */
export function ensureQemu(): string {
  const have = qemuVersion();
  if (have) return have;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root) {
    process.stderr.write(`bench: ${QEMU} is not installed. Install it and run again:\n  sudo apt-get install -y ${QEMU_PACKAGE}\n`);
    process.exit(1);
  }
  process.stderr.write(`bench: ${QEMU} is not installed; installing ${QEMU_PACKAGE} with apt-get\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', QEMU_PACKAGE], { stdio: ['ignore', 2, 2], env });
  if (install().status !== 0) {
    // A fresh machine often has no package lists yet.
    spawnSync('apt-get', ['update'], { stdio: ['ignore', 2, 2], env });
    const r = install();
    if (r.status !== 0) {
      process.stderr.write(`bench: "apt-get install -y ${QEMU_PACKAGE}" failed (exit ${r.status ?? r.signal ?? r.error?.message})\n`);
      process.exit(1);
    }
  }
  const v = qemuVersion();
  if (!v) {
    process.stderr.write(`bench: ${QEMU_PACKAGE} was installed but ${QEMU} still does not run\n`);
    process.exit(1);
  }
  return v;
}
