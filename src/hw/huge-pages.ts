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
/** MADV_DONTNEED from <sys/mman.h> (Linux): the pages go back to the host; private anonymous memory reads back as zeros. */
const MADV_DONTNEED = 4;

interface MmapIo {
  advise(buffer: Buffer, offset: number, length: number, advice: number): void;
  advise(buffer: Buffer, advice: number): void;
  /** mincore(2) over the buffer: [pages not resident, pages resident]. */
  incore(buffer: Buffer): [number, number];
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

/** Whether releasePages() can give memory back to the host here (Linux with the addon). */
export function canReleasePages(): boolean {
  return process.platform === 'linux' && loadMmapIo() !== null;
}

/**
 * madvise(MADV_DONTNEED) on `length` bytes at `offset` of `memory` (both multiples of 4 KiB; V8
 * maps a wasm memory page-aligned and private, so the range then reads as zeros and its host
 * pages are freed). A whole 2 MiB huge page inside the range is dropped at once; a part of one
 * splits it. Returns false, leaving the memory as it was, where that is not possible.
 */
export function releasePages(memory: SharedArrayBuffer, offset: number, length: number): boolean {
  if (offset % 4096 !== 0 || length % 4096 !== 0 || offset < 0 || length <= 0 || offset + length > memory.byteLength) return false;
  if (!canReleasePages()) return false;
  try {
    // The addon takes offsets as int32: a view of just the range (its 2-argument form uses the length as size_t).
    (loadMmapIo() as MmapIo).advise(Buffer.from(memory, offset, length), MADV_DONTNEED);
    return true;
  } catch {
    return false;
  }
}

/**
 * How many bytes of `length` at `offset` of `memory` the host holds in RAM now (mincore: the
 * host kernel's count, whatever the guest says), or null where that cannot be read.
 */
export function residentBytes(memory: SharedArrayBuffer, offset: number, length: number): number | null {
  if (offset % 4096 !== 0 || length % 4096 !== 0 || offset < 0 || length <= 0 || offset + length > memory.byteLength) return null;
  if (!canReleasePages()) return null;
  try {
    return (loadMmapIo() as MmapIo).incore(Buffer.from(memory, offset, length))[1] * 4096;
  } catch {
    return null;
  }
}
