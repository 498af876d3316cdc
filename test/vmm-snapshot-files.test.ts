// The snapshot files without a VM (src/vmm/snapshot.ts): the memory file is sparse and its
// description lists each 2 MiB chunk with data, a bitmap of its non-zero pages and their
// SHA-256; a load reads exactly those pages into fresh RAM and checks each chunk's hash; version 1 descriptions (one SHA-256 of all of
// RAM) still load; truncated, corrupted and malformed files are refused with precise messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { GuestMemory } from '../src/hw/memory.js';
import { encodeStateFile, MEMORY_CHUNK, readMemoryFile, readStateFile, SNAPSHOT_FORMAT_VERSION, writeMemoryFile, type MemoryDescription, type SnapshotBody } from '../src/vmm/snapshot.js';

const RAM = 8 << 20;
const BASE = 0x8000_0000;
const PAGE = 4096;

function tempDir(t: { after: (f: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-snapfiles-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** 8 MiB of RAM with data in chunk 0 (pages 1 and 5), across the chunk 1/2 border, and nothing in chunk 3. */
function guestWithData(): GuestMemory {
  const m = new GuestMemory(BASE, RAM);
  m.bytes.fill(0x11, 1 * PAGE, 2 * PAGE);
  m.bytes[5 * PAGE + 17] = 0x22;
  m.bytes.fill(0x33, 2 * MEMORY_CHUNK - 3 * PAGE, 2 * MEMORY_CHUNK + 2 * PAGE);
  return m;
}

function body(memory: MemoryDescription): SnapshotBody {
  return { vessel_version: 'test', config: {} as SnapshotBody['config'], memory, machine: {} as SnapshotBody['machine'] };
}

/** The non-zero pages of a chunk's bitmap. */
function pagesOf(bitmap: string): number[] {
  const bits = Buffer.from(bitmap, 'base64');
  return Array.from({ length: bits.length * 8 }, (_, p) => p).filter((p) => bits[p >> 3] & (1 << (p & 7)));
}

test('memory file: each chunk with data lists its non-zero pages; a load reads those pages into fresh RAM and nothing else', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'vm.mem');
  const src = guestWithData();
  const { description, stats } = writeMemoryFile(file, src);
  assert.ok('chunks' in description);
  const perChunk = MEMORY_CHUNK / PAGE;
  assert.deepEqual(description.chunks.map((c) => [c.offset, pagesOf(c.pages)]), [
    [0, [1, 5]],
    [MEMORY_CHUNK, [perChunk - 3, perChunk - 2, perChunk - 1]],
    [2 * MEMORY_CHUNK, [0, 1]], // chunk 3 holds nothing and is not listed
  ]);
  assert.equal(stats.bytes, 7 * PAGE, 'only the non-zero pages are written');
  const page = (n: number) => src.bytes.subarray(n * PAGE, (n + 1) * PAGE);
  assert.equal(description.chunks[0].sha256, createHash('sha256').update(page(1)).update(page(5)).digest('hex'), 'the hash covers the chunk\'s non-zero pages in order');
  const st = fs.statSync(file);
  assert.equal(st.size, RAM);
  assert.ok(st.blocks * 512 < RAM / 2, `zero pages are holes: ${st.blocks * 512} bytes allocated`);

  const dst = new GuestMemory(BASE, RAM);
  const changed: Array<[number, number]> = [];
  dst.onDeviceWrite = (off, len) => changed.push([off, len]);
  const read = readMemoryFile(file, dst, description);
  assert.deepEqual(changed, [[0, RAM]], 'the JIT hears that all of RAM changed');
  assert.deepEqual([read.bytes, read.chunks], [7 * PAGE, 3], 'the load reads the non-zero pages and nothing else');
  assert.ok(Buffer.from(dst.bytes).equals(Buffer.from(src.bytes)), 'RAM is restored byte for byte');

  // Data in a hole of the file, inside a listed chunk and in an unlisted one, is not read: the restored RAM is still the saved one.
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.alloc(PAGE, 0x77), 0, PAGE, 3 * PAGE);
  fs.writeSync(fd, Buffer.alloc(PAGE, 0x77), 0, PAGE, 3 * MEMORY_CHUNK);
  fs.closeSync(fd);
  const again = new GuestMemory(BASE, RAM);
  readMemoryFile(file, again, description);
  assert.ok(Buffer.from(again.bytes).equals(Buffer.from(src.bytes)));
});

test('memory file: a changed byte, a truncated file and malformed chunks are refused precisely', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'vm.mem');
  const { description } = writeMemoryFile(file, guestWithData());
  assert.ok('chunks' in description);
  const corrupt = path.join(dir, 'corrupt.mem');
  fs.copyFileSync(file, corrupt);
  const fd = fs.openSync(corrupt, 'r+');
  fs.writeSync(fd, Buffer.from([0x01]), 0, 1, 5 * PAGE + 100); // in page 5 of chunk 0
  fs.closeSync(fd);
  assert.throws(() => readMemoryFile(corrupt, new GuestMemory(BASE, RAM), description),
    { message: `memory file "${corrupt}" does not hold the memory this snapshot was taken with: the pages of bytes 0x0-0x1fffff differ (SHA-256 mismatch)` });

  const short = path.join(dir, 'short.mem');
  fs.copyFileSync(file, short);
  fs.truncateSync(short, RAM - PAGE);
  assert.throws(() => readMemoryFile(short, new GuestMemory(BASE, RAM), description),
    { message: `memory file "${short}" has ${RAM - PAGE} bytes, but the snapshot's guest has ${RAM} bytes of RAM` });

  const [a, b] = description.chunks;
  const bad = (chunks: unknown): MemoryDescription => ({ size: RAM, chunks } as MemoryDescription);
  const load = (d: MemoryDescription) => () => readMemoryFile(file, new GuestMemory(BASE, RAM), d);
  assert.throws(load(bad([b, a])), { message: "the snapshot's memory chunk 1 at 0x0 is not at a 2 MiB boundary after the one before it inside the 8388608 bytes of RAM" });
  assert.throws(load(bad([{ ...a, offset: PAGE }])), { message: /^the snapshot's memory chunk 0 at 0x1000 is not at a 2 MiB boundary/ });
  assert.throws(load(bad([{ ...a, offset: RAM }])), { message: /^the snapshot's memory chunk 0 at 0x800000 is not at a 2 MiB boundary/ });
  assert.throws(load(bad([{ ...a, pages: 'AAAA' }])), { message: "the snapshot's memory chunk 0 at 0x0 has a page bitmap that is not 512 bits for its 512 pages" });
  assert.throws(load(bad([{ offset: 0, sha256: a.sha256 }])), { message: "the snapshot's memory chunk 0 is not {offset, pages, sha256}" });
  assert.throws(() => readMemoryFile(file, new GuestMemory(BASE, 2 * RAM), description), { message: /^the snapshot's memory description does not match its machine configuration/ });
});

test('state file: version 1 (one SHA-256 of RAM) still loads, the whole file; an unknown version or a description of the wrong version is refused', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'vm.mem');
  const src = guestWithData();
  const { description } = writeMemoryFile(file, src);
  const v1: MemoryDescription = { size: RAM, sha256: createHash('sha256').update(src.bytes).digest('hex') };
  const state = (name: string, data: Buffer): string => { const p = path.join(dir, name); fs.writeFileSync(p, data); return p; };

  const p1 = state('v1.snap', encodeStateFile(body(v1), 1));
  const dst = new GuestMemory(BASE, RAM);
  assert.equal(readMemoryFile(file, dst, readStateFile(p1).memory).bytes, RAM, 'version 1 reads all of RAM');
  assert.ok(Buffer.from(dst.bytes).equals(Buffer.from(src.bytes)));
  const other = path.join(dir, 'other.mem');
  fs.copyFileSync(file, other);
  const fd = fs.openSync(other, 'r+'); fs.writeSync(fd, Buffer.from([9]), 0, 1, 7 * MEMORY_CHUNK / 2); fs.closeSync(fd);
  assert.throws(() => readMemoryFile(other, new GuestMemory(BASE, RAM), v1), { message: `memory file "${other}" does not hold the memory this snapshot was taken with (SHA-256 mismatch)` });

  assert.equal(SNAPSHOT_FORMAT_VERSION, 2);
  const p2 = state('v2.snap', encodeStateFile(body(description)));
  assert.deepEqual(readStateFile(p2).memory, description);
  const p3 = state('v3.snap', encodeStateFile(body(description), 3));
  assert.throws(() => readStateFile(p3), { message: `snapshot file "${p3}" has snapshot format version 3; this Vessel reads versions 1 and 2` });
  const p4 = state('v2-of-v1.snap', encodeStateFile(body(v1), 2));
  assert.throws(() => readStateFile(p4), { message: `snapshot file "${p4}" has no memory description of format version 2 (a list of chunks)` });
  const p5 = state('v1-of-v2.snap', encodeStateFile(body(description), 1));
  assert.throws(() => readStateFile(p5), { message: `snapshot file "${p5}" has no memory description of format version 1 (a SHA-256 of RAM)` });
});
