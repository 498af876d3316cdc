/**
 * Snapshot files (layout in docs/SNAPSHOT.md).
 *
 * The state file: a 64-byte header — magic "VSSLSNAP", format version (u32 LE), header size
 * (u32 LE), body length (u64 LE), SHA-256 of the body, 8 zero bytes — then the body: UTF-8 JSON
 * with the VM's configuration, the memory file's size and SHA-256, and the board's state
 * (Machine.saveState()). Reading refuses a bad magic, another version, a truncated or
 * lengthened file and a checksum mismatch, each with its own message.
 *
 * The memory file: guest RAM byte for byte, as a sparse file — all-zero 4 KiB pages are not
 * written, so they are holes. Node has neither mmap nor SEEK_DATA, so a restore reads the whole
 * file into RAM (holes read as zeros cheaply) and checks its SHA-256 against the state file's.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { GuestMemory } from '../hw/memory.js';
import type { MachineState } from '../machine/machine.js';
import type { Balloon, BootSource, Drive, GuestAgent, MachineConfiguration, NetworkInterface } from './config.js';

export const SNAPSHOT_MAGIC = 'VSSLSNAP';
export const SNAPSHOT_FORMAT_VERSION = 1;
export const SNAPSHOT_HEADER_BYTES = 64;
const PAGE = 4096;
/** Memory is written and read in pieces of this size (fs calls take at most 2 GiB). */
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

/** The state file's body. */
export interface SnapshotBody {
  vessel_version: string;
  config: SnapshotConfig;
  memory: { size: number; sha256: string };
  machine: MachineState;
}

export interface SnapshotTimes {
  memoryMs: number;
  stateMs: number;
  /** Bytes of RAM actually written (non-zero pages). */
  memoryBytesWritten: number;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Writes RAM to `path` as a sparse file; returns the SHA-256 of RAM and the bytes written. */
export function writeMemoryFile(path: string, memory: GuestMemory): { sha256: string; written: number } {
  const ram = Buffer.from(memory.buffer, memory.bytes.byteOffset, memory.size);
  const zero = Buffer.alloc(PAGE);
  let fd: number;
  try {
    fd = fs.openSync(path, 'w', 0o600);
  } catch (e) {
    throw new SnapshotFileError(`memory file "${path}" cannot be created: ${describe(e)}`);
  }
  let written = 0;
  try {
    // Runs of non-zero pages, each written with one call (at most IO_CHUNK); zero pages become holes.
    let runStart = -1;
    const flush = (end: number): void => {
      for (let at = runStart; at < end; at += IO_CHUNK) {
        const n = Math.min(IO_CHUNK, end - at);
        fs.writeSync(fd, ram, at, n, at);
        written += n;
      }
      runStart = -1;
    };
    for (let off = 0; off < memory.size; off += PAGE) {
      const isZero = ram.compare(zero, 0, PAGE, off, off + PAGE) === 0;
      if (!isZero && runStart < 0) runStart = off;
      else if (isZero && runStart >= 0) flush(off);
    }
    if (runStart >= 0) flush(memory.size);
    fs.ftruncateSync(fd, memory.size);
  } catch (e) {
    throw new SnapshotFileError(`memory file "${path}" cannot be written: ${describe(e)}`);
  } finally {
    fs.closeSync(fd);
  }
  return { sha256: createHash('sha256').update(ram).digest('hex'), written };
}

/**
 * Reads a memory file written by writeMemoryFile into RAM, after checking its size; then checks
 * RAM's SHA-256 against `sha256`. Tells the JIT (onDeviceWrite) first: all of RAM changes.
 */
export function readMemoryFile(path: string, memory: GuestMemory, sha256: string): void {
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
    for (let at = 0; at < size;) {
      const n = fs.readSync(fd, ram, at, Math.min(IO_CHUNK, size - at), at);
      if (n === 0) throw new SnapshotFileError(`memory file "${path}" ended at byte ${at} while being read`);
      at += n;
    }
    if (createHash('sha256').update(ram).digest('hex') !== sha256) {
      throw new SnapshotFileError(`memory file "${path}" does not hold the memory this snapshot was taken with (SHA-256 mismatch)`);
    }
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
  if (version !== SNAPSHOT_FORMAT_VERSION) throw bad(`has snapshot format version ${version}; this Vessel reads version ${SNAPSHOT_FORMAT_VERSION} only`);
  const headerBytes = data.readUInt32LE(12);
  if (headerBytes !== SNAPSHOT_HEADER_BYTES) throw bad(`has a header of ${headerBytes} bytes; version ${SNAPSHOT_FORMAT_VERSION} has ${SNAPSHOT_HEADER_BYTES}`);
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
  return body as SnapshotBody;
}
