/**
 * A size for a new VM's own root disk (`disk_mib` at create): its copy of the default image's
 * ext4 is grown before its first boot, the file (a sparse extension: no host space until the
 * guest writes) and its file system (e2fsck, then resize2fs on the host: the image is not
 * mounted anywhere yet), so the guest boots with the whole disk usable.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { SpecError } from './vm-spec.js';

const MIB = 1024 * 1024;

function run(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { status: r.error ? null : r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim() };
}

/** Grows the ext4 image at `file` to `mib` MiB; refuses a size below its present one. */
export function growRootDisk(file: string, mib: number): void {
  const size = fs.statSync(file).size;
  if (mib * MIB < size) throw new SpecError(`disk_mib ${mib} is below the image's ${Math.ceil(size / MIB)} MiB: give at least ${Math.ceil(size / MIB)}`);
  if (mib * MIB === size) return;
  fs.truncateSync(file, mib * MIB);
  // e2fsck exits 1 when it fixed something (a clean copy: 0); resize2fs wants a checked file system.
  const check = run('e2fsck', ['-f', '-p', file]);
  if (check.status === null || check.status > 1) throw new Error(`cannot check the root disk before growing it (e2fsck: ${check.out.split('\n').pop()})`);
  const grow = run('resize2fs', [file]);
  if (grow.status !== 0) {
    const why = grow.out.split('\n').filter(Boolean).pop() ?? `resize2fs exited with ${grow.status}`;
    if (/No space left/i.test(why)) throw Object.assign(new Error(`cannot grow the root disk: the state directory's disk is full (${why})`), { full: true });
    throw new Error(`cannot grow the root disk's file system: ${why}`);
  }
}
