/**
 * Guest files through the QEMU guest agent (`vessel vm file-read|file-write`, POST
 * /vms/{vm}/files/read|write): guest-file-open, then guest-file-read until the agent says EOF (or
 * the size limit is passed) or guest-file-write chunk by chunk, then guest-file-close. The data
 * goes base64-encoded inside QGA's JSON lines; a chunk of FILE_CHUNK_BYTES keeps each line under
 * 64 KiB, far below what qemu-ga's parser takes. Sizes are bounded on both sides: a read stops
 * one byte past `maxBytes` (so /dev/zero or a growing log cannot fill the host), a write takes at
 * most MAX_WRITE_BYTES. The agent's refusals (no such file, permission denied, the agent frozen)
 * come back as its own sentence (GuestAgentCommandError, 409).
 */
import { GuestAgentCommandError, type QgaClient } from './guest-agent.js';

/** Bytes per guest-file-read/-write: 48 KiB is 64 KiB of base64. */
export const FILE_CHUNK_BYTES = 48 * 1024;
/** The most one read returns (its default limit), and the most one write takes. */
export const MAX_READ_BYTES = 16 * 1024 * 1024;
export const MAX_WRITE_BYTES = 8 * 1024 * 1024;

export interface GuestFileContent {
  path: string;
  size_bytes: number;
  /** The file has more than `maxBytes`: only the first `maxBytes` are here. */
  truncated: boolean;
  content_base64: string;
}

/** A file operation the guest agent refused, worded with the file and the VM. */
function refused(e: unknown, vmName: string, what: string): unknown {
  if (!(e instanceof GuestAgentCommandError)) return e;
  return new GuestAgentCommandError(e.command, e.errorClass, e.desc, `VM "${vmName}": ${what}: ${e.desc}`);
}

async function open(c: QgaClient, vmName: string, path: string, mode: 'r' | 'w' | 'a'): Promise<number> {
  try {
    return await c.execute<number>('guest-file-open', { path, mode });
  } catch (e) {
    throw refused(e, vmName, `the guest agent cannot open ${path} for ${mode === 'r' ? 'reading' : 'writing'}`);
  }
}

/** Reads the first `maxBytes` (at most MAX_READ_BYTES) of a guest file. */
export async function readGuestFile(c: QgaClient, vmName: string, path: string, maxBytes = MAX_READ_BYTES): Promise<GuestFileContent> {
  if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > MAX_READ_BYTES) throw new RangeError(`max_bytes must be from 1 to ${MAX_READ_BYTES}`);
  const handle = await open(c, vmName, path, 'r');
  const parts: Buffer[] = [];
  let total = 0;
  try {
    // One byte past the limit tells a file of exactly maxBytes from a longer one.
    while (total <= maxBytes) {
      const count = Math.min(FILE_CHUNK_BYTES, maxBytes + 1 - total);
      let r: { count: number; 'buf-b64': string; eof: boolean };
      try {
        r = await c.execute('guest-file-read', { handle, count });
      } catch (e) {
        throw refused(e, vmName, `reading ${path} failed after ${total} bytes`);
      }
      const b = Buffer.from(r['buf-b64'], 'base64');
      if (b.length !== r.count || b.length > count) throw new GuestAgentCommandError('guest-file-read', 'VesselError', `the agent's answer holds ${b.length} bytes where it says ${r.count} (asked for ${count})`, `VM "${vmName}": reading ${path}: the guest agent's answer is inconsistent (${b.length} bytes decoded, count ${r.count}, asked ${count})`);
      parts.push(b);
      total += b.length;
      if (r.eof || b.length === 0) break;
    }
  } finally {
    await c.execute('guest-file-close', { handle }).catch(() => undefined);
  }
  const data = Buffer.concat(parts);
  const truncated = data.length > maxBytes;
  const kept = truncated ? data.subarray(0, maxBytes) : data;
  return { path, size_bytes: kept.length, truncated, content_base64: kept.toString('base64') };
}

/** Writes `data` to a guest file: created or truncated, or appended to. Returns the bytes written. */
export async function writeGuestFile(c: QgaClient, vmName: string, path: string, data: Uint8Array, append = false): Promise<number> {
  if (data.length > MAX_WRITE_BYTES) throw new RangeError(`at most ${MAX_WRITE_BYTES} bytes can be written at once, not ${data.length}`);
  const handle = await open(c, vmName, path, append ? 'a' : 'w');
  let written = 0;
  try {
    while (written < data.length) {
      const chunk = data.subarray(written, written + FILE_CHUNK_BYTES);
      let r: { count: number };
      try {
        r = await c.execute('guest-file-write', { handle, 'buf-b64': Buffer.from(chunk).toString('base64') });
      } catch (e) {
        throw refused(e, vmName, `writing ${path} failed after ${written} of ${data.length} bytes`);
      }
      if (r.count !== chunk.length) throw new GuestAgentCommandError('guest-file-write', 'VesselError', `short write`, `VM "${vmName}": writing ${path}: the guest wrote ${r.count} of ${chunk.length} bytes at offset ${written} (a full file system?); ${written + r.count} of ${data.length} bytes are in the file`);
      written += chunk.length;
    }
    try {
      await c.execute('guest-file-flush', { handle });
    } catch (e) {
      throw refused(e, vmName, `flushing ${path} failed`);
    }
  } finally {
    await c.execute('guest-file-close', { handle }).catch(() => undefined);
  }
  return written;
}
