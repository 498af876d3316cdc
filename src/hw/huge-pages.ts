/**
 * Transparent huge pages for guest RAM. A fresh 4 KiB host page costs a fault on first touch
 * (about 10 us on a virtualized host), and a booting guest touches tens of thousands; with
 * madvise(MADV_HUGEPAGE) the host kernel backs the memory in 2 MiB pages, one fault each, as
 * QEMU asks for its RAM blocks. Node has no madvise of its own: the optional dependency
 * @riaskov/mmap-io provides it. Without it (not installed, not Linux, the host refuses), RAM
 * works the same, only slower to touch.
 */
import { readFileSync } from 'node:fs';
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

/** MADV_NOHUGEPAGE from <sys/mman.h> (Linux). */
const MADV_NOHUGEPAGE = 15;

/**
 * Runs `fill`, which writes scattered pages into `length` bytes at `offset` of `memory` (page
 * aligned), with huge pages off there: under MADV_HUGEPAGE each first touch faults in, zeroes
 * and maybe first compacts a whole 2 MiB page, which made a snapshot restore of 58 MiB of pages
 * scattered over 1 GiB of RAM take 10 s instead of 0.4 s on the 2-core test host. Huge pages are
 * asked for again afterwards, for what the guest touches next (khugepaged may merge the small
 * ones later). Without the addon, `fill` just runs.
 */
export function withoutHugePages<T>(memory: SharedArrayBuffer, offset: number, length: number, fill: () => T): T {
  const lib = process.platform === 'linux' ? loadMmapIo() : null;
  // The addon takes offsets as int32: a view of just the range, with the 2-argument form.
  const range = Buffer.from(memory, offset, length);
  let advised = false;
  try {
    lib?.advise(range, MADV_NOHUGEPAGE);
    advised = lib !== null;
  } catch {
    // the host refuses: fill with whatever pages it gives
  }
  try {
    return fill();
  } finally {
    if (advised) {
      try { lib?.advise(range, MADV_HUGEPAGE); } catch { /* stays in small pages */ }
    }
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

/** The host's huge page size (x86-64 and arm64 with 4 KiB pages). */
export const HOST_HUGE_PAGE = 2 * 1024 * 1024;

/**
 * Where `memory`'s host address falls in a 2 MiB huge page (its address modulo 2 MiB), from
 * /proc/self/maps: the one private anonymous read-write mapping of exactly its size (V8 maps a
 * wasm memory's accessible part on its own). Null where that is not one mapping (two memories of
 * the same size in this process) or not Linux.
 */
export function hugePageMisalignment(memory: SharedArrayBuffer): number | null {
  if (process.platform !== 'linux') return null;
  let maps: string;
  try {
    maps = readFileSync('/proc/self/maps', 'latin1');
  } catch {
    return null;
  }
  const starts: bigint[] = [];
  for (const m of maps.matchAll(/^([0-9a-f]+)-([0-9a-f]+) rw-p 00000000 00:00 0 *$/gm)) {
    const start = BigInt(`0x${m[1]}`);
    if (BigInt(`0x${m[2]}`) - start === BigInt(memory.byteLength)) starts.push(start);
  }
  return starts.length === 1 ? Number(starts[0] % BigInt(HOST_HUGE_PAGE)) : null;
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
