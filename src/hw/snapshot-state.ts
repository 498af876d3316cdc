/**
 * Shared pieces of the devices' save()/restore() pairs: the error a restore throws when the
 * saved state does not fit the device it is restored into, and checked conversions between
 * typed arrays / byte strings and the JSON the state file holds (see docs/SNAPSHOT.md).
 *
 * The state file's checksum catches corruption; these checks catch a state that is intact but
 * does not describe this device (a hand-edited file, a board built differently).
 */

/** A saved state that cannot be restored; the message names the part and the value. */
export class SnapshotStateError extends Error {
  override name = 'SnapshotStateError';
}

/** Bytes as base64 text (for queued frames, FIFOs). */
export function encodeBytes(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export function decodeBytes(what: string, text: unknown): Uint8Array {
  if (typeof text !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new SnapshotStateError(`${what}: not base64 text`);
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** Copies a saved array of numbers into `into`, checking its length and that each is an integer. */
export function restoreArray(what: string, saved: unknown, into: Uint8Array | Uint32Array | Int32Array | Float64Array): void {
  if (!Array.isArray(saved) || saved.length !== into.length) {
    throw new SnapshotStateError(`${what}: expected ${into.length} values, got ${Array.isArray(saved) ? saved.length : typeof saved}`);
  }
  for (let i = 0; i < saved.length; i++) {
    const v: unknown = saved[i];
    if (typeof v !== 'number' || (!(into instanceof Float64Array) && !Number.isInteger(v))) throw new SnapshotStateError(`${what}[${i}]: ${String(v)} is not a valid value`);
    into[i] = v;
  }
}

/** A saved integer field, checked to lie in [min, max]. */
export function savedInt(what: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new SnapshotStateError(`${what}: ${String(v)} is not an integer in ${min}..${max}`);
  return v;
}

export function savedBool(what: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new SnapshotStateError(`${what}: ${String(v)} is not true or false`);
  return v;
}

/** A saved object (the state of one part), or an error naming the part. */
export function savedObject(what: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SnapshotStateError(`${what}: missing or not an object`);
  return v as Record<string, unknown>;
}
