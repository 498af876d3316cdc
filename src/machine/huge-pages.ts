/**
 * Transparent huge pages for guest RAM. A fresh 4 KiB host page costs a fault on first touch
 * (about 10 us on a virtualized host), and a booting guest touches tens of thousands; with
 * madvise(MADV_HUGEPAGE) the host kernel backs the memory in 2 MiB pages, one fault each, as
 * QEMU asks for its RAM blocks. Node has no madvise of its own: the optional dependency
 * @riaskov/mmap-io provides it. Without it (not installed, not Linux, the host refuses), RAM
 * works the same, only slower to touch.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** MADV_HUGEPAGE from <sys/mman.h> (Linux). */
const MADV_HUGEPAGE = 14;

interface MmapIo {
  advise(buffer: Buffer, offset: number, length: number, advice: number): void;
}

let mmapIo: MmapIo | null | undefined;

/**
 * The addon, loaded from where node-pre-gyp puts it for this Node ABI (the package's own entry
 * point finds the same file through node-pre-gyp, which takes ~60 ms to load), else through
 * that entry point.
 */
function loadMmapIo(): MmapIo | null {
  if (mmapIo === undefined) {
    const require = createRequire(import.meta.url);
    mmapIo = null;
    try {
      const root = dirname(require.resolve('@riaskov/mmap-io/package.json'));
      const abi = `node-v${process.versions.modules}-${process.platform}-${process.arch}`;
      mmapIo = require(join(root, 'build', 'binding', 'Release', abi, 'mmap_io.node')) as MmapIo;
    } catch {
      try {
        mmapIo = require('@riaskov/mmap-io') as MmapIo;
      } catch {
        // not installed or not built: RAM stays in 4 KiB pages
      }
    }
  }
  return mmapIo;
}

/** Asks for huge pages behind `memory` (page-aligned, as V8 maps it). Returns whether the host took the advice. */
export function adviseHugePages(memory: SharedArrayBuffer): boolean {
  if (process.platform !== 'linux') return false;
  const lib = loadMmapIo();
  if (!lib) return false;
  try {
    const bytes = Buffer.from(memory);
    lib.advise(bytes, 0, bytes.length, MADV_HUGEPAGE);
    return true;
  } catch {
    return false;
  }
}
