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
