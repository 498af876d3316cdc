import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** test/isa (the bare-metal ISA programs), found from the compiled or the source test directory. */
export function findIsaDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'test', 'isa');
    if (existsSync(join(p, 'link.ld'))) return p;
    dir = dirname(dir);
  }
  throw new Error('test/isa/link.ld not found');
}

/** Assembles and links test/isa/<name>.S into <outDir>/<name>.elf with Debian's cross gcc; returns its path. */
export function buildIsaProgram(name: string, outDir: string): string {
  const isa = findIsaDir();
  const out = join(outDir, `${name}.elf`);
  const cc = spawnSync('riscv64-linux-gnu-gcc', ['-march=rv64gc', '-mabi=lp64d', '-nostdlib', '-nostartfiles', '-static',
    '-Wl,--build-id=none', '-T', join(isa, 'link.ld'), '-I', isa, '-o', out, join(isa, `${name}.S`)], { encoding: 'utf8' });
  if (cc.error) assert.fail(`riscv64-linux-gnu-gcc could not be run (${cc.error.message}): run \`bash test/setup.sh\``);
  assert.equal(cc.status, 0, cc.stderr);
  return out;
}
