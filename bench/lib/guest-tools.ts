// Programs for the guest: C sources under bench/guest, cross-compiled here and handed to the
// guest on a small raw disk that it copies to /tmp with dd.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

import { UsageError } from './options.js';

export const CROSS_GCC = 'riscv64-linux-gnu-gcc';

/** Compiles `source` with `-O2` (plus `args`) to `exe`; a failure names how to install the compiler. */
export function compile(compiler: string, args: string[], source: string, exe: string, installHint: string): void {
  const r = spawnSync(compiler, [...args, '-O2', '-o', exe, source], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new UsageError(`${compiler} could not build ${source}: ${r.error?.message ?? r.stderr.trim()}\n${installHint}`);
  }
}

/**
 * Cross-compiles `source` statically for riscv64 and writes it, padded to whole 4 KiB blocks, as
 * the raw disk image `<dir>/tools.img`; `blocks` is what the guest's dd copies.
 */
export function buildToolsDisk(source: string, dir: string): { path: string; blocks: number } {
  const exe = path.join(dir, `${path.basename(source, '.c')}.riscv64`);
  compile(CROSS_GCC, ['-static'], source, exe, 'Install the cross compiler and its C library with: apt-get install -y gcc-riscv64-linux-gnu libc6-dev-riscv64-cross (test/setup.sh does)');
  const bin = readFileSync(exe);
  const blocks = Math.ceil(bin.length / 4096);
  const disk = Buffer.alloc(blocks * 4096);
  bin.copy(disk);
  const diskPath = path.join(dir, 'tools.img');
  writeFileSync(diskPath, disk);
  return { path: diskPath, blocks };
}
