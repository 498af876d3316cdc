/**
 * Snapshot files (layout in docs/SNAPSHOT.md).
 *
 * The state file: a 64-byte header — magic "VSSLSNAP", format version (u32 LE), header size
 * (u32 LE), body length (u64 LE), SHA-256 of the body, 8 zero bytes — then the body: UTF-8 JSON
 * with the VM's configuration, the memory file's description and the board's state
 * (Machine.saveState()). Reading refuses a bad magic, an unknown version, a truncated or
 * lengthened file and a checksum mismatch, each with its own message.
 *
 * The memory file: guest RAM byte for byte, as a sparse file — all-zero 4 KiB pages are not
 * written, so they are holes. Since format version 2 the state file describes the file per
 * 2 MiB chunk of RAM that holds data: which of its pages are non-zero (a bitmap) and the SHA-256
 * of those pages. A restore reads and checks only those pages into the fresh machine's RAM,
 * which is all zero already (a snapshot board loads nothing into it): the cost follows the
 * memory the guest used, not its size. Node has neither mmap nor SEEK_DATA, and guest RAM is a
 * WebAssembly.Memory a file cannot be mapped into, so a copy of the used pages is the floor.
 * Version 1 files (one SHA-256 of all of RAM) are still read, the whole file.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { residentBytes, withoutHugePages } from '../hw/huge-pages.js';
import type { GuestMemory } from '../hw/memory.js';
import type { MachineState } from '../machine/machine.js';
import type { Balloon, BootSource, Drive, GuestAgent, MachineConfiguration, NetworkInterface } from './config.js';

export const SNAPSHOT_MAGIC = 'VSSLSNAP';
export const SNAPSHOT_FORMAT_VERSION = 2;
/** Versions readStateFile accepts: 1 differs only in its memory description (one SHA-256 of all of RAM). */
const READABLE_VERSIONS = [1, 2];
export const SNAPSHOT_HEADER_BYTES = 64;
const PAGE = 4096;
/** RAM is described in chunks of this size (a host huge page). */
export const MEMORY_CHUNK = 2 << 20;
/** Version 1 memory is read in pieces of this size (fs calls take at most 2 GiB). */
const IO_CHUNK = 16 << 20;

/** A snapshot file that cannot be written or read; the message says which file and why. */
export class SnapshotFileError extends Error {
  override name = 'SnapshotFileError';
}

/** The VM's configuration as the state file keeps it, to rebuild the same board at load. */
export interface SnapshotConfig {
  'boot-source': BootSource;
  'machine-config': Required<MachineConfiguration>;
  drives: Drive[];
  'network-interfaces': NetworkInterface[];
  entropy: boolean;
  /** Absent in snapshots of VMs without a balloon (and of Vessel before it had one). */
  balloon?: Balloon;
  /** Absent in snapshots of VMs without the guest agent channel. */
  'guest-agent'?: GuestAgent;
}

/**
 * A 2 MiB chunk of RAM that holds data: `pages` is a bitmap of its non-zero 4 KiB pages (base64;
 * bit i of byte j is page 8j+i), `sha256` the hash of those pages, in order, as one stream.
 */
export interface MemoryChunk {
  offset: number;
  pages: string;
  sha256: string;
}

/**
 * The memory file as the state file describes it: version 2 lists the chunks that hold data
 * (RAM outside their pages is zero); version 1 has one SHA-256 of all of RAM.
 */
export type MemoryDescription = { size: number; chunks: MemoryChunk[] } | { size: number; sha256: string };

/** The state file's body. */
export interface SnapshotBody {
  vessel_version: string;
  config: SnapshotConfig;
  memory: MemoryDescription;
  machine: MachineState;
}

/** What writeMemoryFile and readMemoryFile did, for the VMM's log and the benchmark. */
export interface MemoryFileStats {
  /** Bytes of RAM written to or read from the file: the non-zero pages (all of RAM for version 1). */
  bytes: number;
  /** Chunks with data (1 for version 1). */
  chunks: number;
  ms: number;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}


function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** Runs of set bits in a chunk's page bitmap, as [first page, end page) pairs. */
function* pageRuns(bitmap: Uint8Array, pageCount: number): Generator<[number, number]> {
  let start = -1;
  for (let p = 0; p <= pageCount; p++) {
    const set = p < pageCount && (bitmap[p >> 3] & (1 << (p & 7))) !== 0;
    if (set && start < 0) start = p;
    else if (!set && start >= 0) { yield [start, p]; start = -1; }
  }
}

/**
 * Writes RAM to `path` as a sparse file: each run of non-zero pages with one write, zero pages as
 * holes. Returns the memory description for the state file: per 2 MiB chunk with data, the
 * bitmap of its non-zero pages and their SHA-256.
 */
export function writeMemoryFile(path: string, memory: GuestMemory): { description: MemoryDescription; stats: MemoryFileStats } {
  const t0 = performance.now();
  let fd: number;
  try {
    fd = fs.openSync(path, 'w', 0o600);
  } catch (e) {
    throw new SnapshotFileError(`memory file "${path}" cannot be created: ${describe(e)}`);
  }
  let chunks: MemoryChunk[], written: number;
  try {
    const held = heldProbe(memory);
    ({ chunks, written } = writeChunks(fd, memory, held));
    // A page swapped out while it was scanned looked not held: scan again, reading every page.
    if (held && swappedBytes() !== 0) ({ chunks, written } = writeChunks(fd, memory, null));
    fs.ftruncateSync(fd, memory.size);
  } catch (e) {
    throw new SnapshotFileError(`memory file "${path}" cannot be written: ${describe(e)}`);
  } finally {
    fs.closeSync(fd);
  }
  return { description: { size: memory.size, chunks }, stats: { bytes: written, chunks: chunks.length, ms: performance.now() - t0 } };
}

/** Bytes of `length` at RAM offset `at` that the host holds (mincore), or null where it cannot tell. */
type HeldProbe = (at: number, length: number) => number | null;

/**
 * What the save asks before it reads RAM. A page the host does not hold is zero (never touched,
 * or given back with MADV_DONTNEED), and reading it would map the host's shared zero page there,
 * which mincore then counts as resident: the balloon's resident_mib, which the host's memory
 * policy trusts, rose to RAM's size after a snapshot. So pages the host does not hold are not
 * read. Null (every page is read) without mincore, or with pages of this process in swap: a
 * swapped-out page is not held either, but not zero.
 */
function heldProbe(memory: GuestMemory): HeldProbe | null {
  if (swappedBytes() !== 0) return null;
  const base = memory.bytes.byteOffset;
  if (residentBytes(memory.buffer, base, PAGE) === null) return null;
  return (at, length) => residentBytes(memory.buffer, base + at, length);
}

/** This process's memory in swap (VmSwap), or null where /proc does not say. */
function swappedBytes(): number | null {
  try {
    const m = /^VmSwap:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'latin1'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Writes RAM's non-zero pages at their offsets in `fd`; pages `held` says the host does not hold are zero and not read. */
function writeChunks(fd: number, memory: GuestMemory, held: HeldProbe | null): { chunks: MemoryChunk[]; written: number } {
  const ram = Buffer.from(memory.buffer, memory.bytes.byteOffset, memory.size);
  const zero = Buffer.alloc(MEMORY_CHUNK);
  const chunks: MemoryChunk[] = [];
  let written = 0;
  for (let chunk = 0; chunk < memory.size; chunk += MEMORY_CHUNK) {
    const chunkEnd = Math.min(chunk + MEMORY_CHUNK, memory.size);
    const chunkHeld = held?.(chunk, chunkEnd - chunk) ?? null;
    if (chunkHeld === 0) continue;
    // Only where every page is held (or nobody can tell): most of a large guest's RAM is untouched, and one comparison skips a whole zero chunk.
    const whole = chunkHeld === null || chunkHeld === chunkEnd - chunk;
    if (whole && ram.compare(zero, 0, chunkEnd - chunk, chunk, chunkEnd) === 0) continue;
    const pageCount = (chunkEnd - chunk) / PAGE;
    const bitmap = new Uint8Array(MEMORY_CHUNK / PAGE / 8);
    let any = false;
    for (let p = 0; p < pageCount; p++) {
      const at = chunk + p * PAGE;
      if (!whole && held?.(at, PAGE) === 0) continue;
      if (ram.compare(zero, 0, PAGE, at, at + PAGE) !== 0) { bitmap[p >> 3] |= 1 << (p & 7); any = true; }
    }
    if (!any) continue;
    const hash = createHash('sha256');
    for (const [first, end] of pageRuns(bitmap, pageCount)) {
      const at = chunk + first * PAGE, n = (end - first) * PAGE;
      fs.writeSync(fd, ram, at, n, at);
      hash.update(ram.subarray(at, at + n));
      written += n;
    }
    chunks.push({ offset: chunk, pages: Buffer.from(bitmap).toString('base64'), sha256: hash.digest('hex') });
  }
  return { chunks, written };
}

/** A version 2 chunk list checked against RAM's size: chunk-aligned, in order, a bitmap of the chunk's pages, a SHA-256. */
function checkedChunks(chunks: unknown, size: number): Array<{ offset: number; bitmap: Uint8Array; pageCount: number; sha256: string }> {
  if (!Array.isArray(chunks)) throw new SnapshotFileError('the snapshot\'s memory description has no list of chunks');
  let next = 0;
  return chunks.map((x: unknown, i) => {
    const c = x as Partial<MemoryChunk> | null;
    const ok = typeof c === 'object' && c !== null && Number.isInteger(c.offset) && typeof c.pages === 'string' && typeof c.sha256 === 'string' && /^[0-9a-f]{64}$/.test(c.sha256);
    if (!ok) throw new SnapshotFileError(`the snapshot's memory chunk ${i} is not {offset, pages, sha256}`);
    const { offset, pages, sha256 } = c as MemoryChunk;
    if (offset % MEMORY_CHUNK !== 0 || offset < next || offset >= size) {
      throw new SnapshotFileError(`the snapshot's memory chunk ${i} at ${hex(offset)} is not at a 2 MiB boundary after the one before it inside the ${size} bytes of RAM`);
    }
    next = offset + MEMORY_CHUNK;
    const pageCount = Math.min(MEMORY_CHUNK, size - offset) / PAGE;
    const bitmap = Buffer.from(pages, 'base64');
    if (bitmap.length !== MEMORY_CHUNK / PAGE / 8 || [...pageRuns(bitmap, MEMORY_CHUNK / PAGE)].some(([, end]) => end > pageCount)) {
      throw new SnapshotFileError(`the snapshot's memory chunk ${i} at ${hex(offset)} has a page bitmap that is not ${MEMORY_CHUNK / PAGE} bits for its ${pageCount} pages`);
    }
    return { offset, bitmap, pageCount, sha256 };
  });
}

/** Reads `length` bytes at `offset` of the file into the same place of RAM. */
function readInto(path: string, fd: number, ram: Buffer, offset: number, length: number): void {
  for (let at = offset; at < offset + length;) {
    const n = fs.readSync(fd, ram, at, Math.min(IO_CHUNK, offset + length - at), at);
    if (n === 0) throw new SnapshotFileError(`memory file "${path}" ended at byte ${at} while being read`);
    at += n;
  }
}

/**
 * Fills the fresh machine's RAM from a memory file written by writeMemoryFile, after checking
 * its size: version 2 reads each chunk's non-zero pages and checks their SHA-256 (RAM elsewhere
 * stays zero); version 1 reads the whole file and checks one SHA-256 of all of RAM. Tells the
 * JIT (onDeviceWrite) first that RAM changes.
 */
export function readMemoryFile(path: string, memory: GuestMemory, description: MemoryDescription): MemoryFileStats {
  const t0 = performance.now();
  if (typeof description !== 'object' || description === null || description.size !== memory.size) {
    throw new SnapshotFileError(`the snapshot's memory description does not match its machine configuration (${memory.size} bytes of RAM)`);
  }
  const chunks = 'chunks' in description ? checkedChunks(description.chunks, memory.size) : null;
  if (!chunks && typeof (description as { sha256?: unknown }).sha256 !== 'string') throw new SnapshotFileError('the snapshot\'s memory description has neither chunks nor a SHA-256');
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    throw new SnapshotFileError(`memory file "${path}" cannot be opened: ${describe(e)}`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size !== memory.size) throw new SnapshotFileError(`memory file "${path}" has ${size} bytes, but the snapshot's guest has ${memory.size} bytes of RAM`);
    memory.onDeviceWrite?.(0, memory.size);
    const ram = Buffer.from(memory.buffer, memory.bytes.byteOffset, memory.size);
    if (chunks) {
      const fill = (): number => {
        let bytes = 0;
        for (const { offset, bitmap, pageCount, sha256 } of chunks) {
          const hash = createHash('sha256');
          for (const [first, end] of pageRuns(bitmap, pageCount)) {
            const at = offset + first * PAGE, n = (end - first) * PAGE;
            readInto(path, fd, ram, at, n);
            hash.update(ram.subarray(at, at + n));
            bytes += n;
          }
          if (hash.digest('hex') !== sha256) {
            const end = offset + pageCount * PAGE - 1;
            throw new SnapshotFileError(`memory file "${path}" does not hold the memory this snapshot was taken with: the pages of bytes ${hex(offset)}-${hex(end)} differ (SHA-256 mismatch)`);
          }
        }
        return bytes;
      };
      // The pages are scattered: in huge pages, each would fault in (and zero) 2 MiB.
      const bytes = memory.hugePages ? withoutHugePages(memory.buffer, memory.bytes.byteOffset, memory.size, fill) : fill();
      return { bytes, chunks: chunks.length, ms: performance.now() - t0 };
    }
    readInto(path, fd, ram, 0, size);
    if (createHash('sha256').update(ram).digest('hex') !== (description as { sha256: string }).sha256) {
      throw new SnapshotFileError(`memory file "${path}" does not hold the memory this snapshot was taken with (SHA-256 mismatch)`);
    }
    return { bytes: size, chunks: 1, ms: performance.now() - t0 };
  } catch (e) {
    if (e instanceof SnapshotFileError) throw e;
    throw new SnapshotFileError(`memory file "${path}" cannot be read: ${describe(e)}`);
  } finally {
    fs.closeSync(fd);
  }
}

/** Encodes the state file: header, then the JSON body. */
export function encodeStateFile(body: SnapshotBody, version = SNAPSHOT_FORMAT_VERSION): Buffer {
  const json = Buffer.from(JSON.stringify(body), 'utf8');
  const header = Buffer.alloc(SNAPSHOT_HEADER_BYTES);
  header.write(SNAPSHOT_MAGIC, 0, 'latin1');
  header.writeUInt32LE(version, 8);
  header.writeUInt32LE(SNAPSHOT_HEADER_BYTES, 12);
  header.writeBigUInt64LE(BigInt(json.length), 16);
  createHash('sha256').update(json).digest().copy(header, 24);
  return Buffer.concat([header, json]);
}

export function writeStateFile(path: string, body: SnapshotBody): void {
  try {
    fs.writeFileSync(path, encodeStateFile(body), { mode: 0o600 });
  } catch (e) {
    throw new SnapshotFileError(`snapshot file "${path}" cannot be written: ${describe(e)}`);
  }
}

/** Reads and checks a state file; the body's JSON is returned as parsed, for the parts to check. */
export function readStateFile(path: string): SnapshotBody {
  let data: Buffer;
  try {
    data = fs.readFileSync(path);
  } catch (e) {
    throw new SnapshotFileError(`snapshot file "${path}" cannot be read: ${describe(e)}`);
  }
  const bad = (why: string): SnapshotFileError => new SnapshotFileError(`snapshot file "${path}" ${why}`);
  if (data.length < SNAPSHOT_HEADER_BYTES) throw bad(`is truncated: ${data.length} bytes, shorter than the ${SNAPSHOT_HEADER_BYTES}-byte header`);
  if (data.toString('latin1', 0, 8) !== SNAPSHOT_MAGIC) throw bad(`is not a Vessel snapshot (no "${SNAPSHOT_MAGIC}" magic)`);
  const version = data.readUInt32LE(8);
  if (!READABLE_VERSIONS.includes(version)) throw bad(`has snapshot format version ${version}; this Vessel reads versions ${READABLE_VERSIONS.join(' and ')}`);
  const headerBytes = data.readUInt32LE(12);
  if (headerBytes !== SNAPSHOT_HEADER_BYTES) throw bad(`has a header of ${headerBytes} bytes; version ${version} has ${SNAPSHOT_HEADER_BYTES}`);
  const bodyBytes = data.readBigUInt64LE(16);
  const actual = BigInt(data.length - SNAPSHOT_HEADER_BYTES);
  if (bodyBytes > actual) throw bad(`is truncated: its header announces ${bodyBytes} bytes of state, the file has ${actual}`);
  if (bodyBytes < actual) throw bad(`has ${actual - bodyBytes} bytes after the ${bodyBytes} bytes of state its header announces`);
  const json = data.subarray(SNAPSHOT_HEADER_BYTES);
  if (!createHash('sha256').update(json).digest().equals(data.subarray(24, 56))) throw bad('is corrupted: the SHA-256 of its state does not match its header');
  let body: unknown;
  try {
    body = JSON.parse(json.toString('utf8'));
  } catch (e) {
    throw bad(`has a state that is not valid JSON: ${describe(e)}`);
  }
  if (typeof body !== 'object' || body === null) throw bad('has a state that is not an object');
  const memory = (body as { memory?: { chunks?: unknown; sha256?: unknown } }).memory;
  const fits = version === 1 ? typeof memory?.sha256 === 'string' : Array.isArray(memory?.chunks);
  if (!fits) throw bad(`has no memory description of format version ${version} (${version === 1 ? 'a SHA-256 of RAM' : 'a list of chunks'})`);
  return body as SnapshotBody;
}
