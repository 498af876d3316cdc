/**
 * A writer for Flattened Device Tree blobs (DTB format version 17, as described in the
 * Devicetree Specification, chapter 5).
 *
 * Layout produced: header, memory reservation map (empty: only the terminating zero
 * entry), structure block, strings block. Property names are stored once in the strings
 * block and shared by offset.
 *
 *   const fdt = new FdtBuilder();
 *   fdt.beginNode('');              // the root node has an empty name
 *   fdt.propU32('#address-cells', 2);
 *   fdt.beginNode('chosen'); fdt.propString('bootargs', '...'); fdt.endNode();
 *   fdt.endNode();
 *   const blob = fdt.finish();
 */

const FDT_MAGIC = 0xd00dfeed;
const FDT_VERSION = 17;
/** Oldest version this blob stays compatible with (v17 only extends v16). */
const FDT_LAST_COMPATIBLE_VERSION = 16;
const HEADER_SIZE = 40;
/** One reservation entry: 64-bit address + 64-bit size. */
const RESERVATION_ENTRY_SIZE = 16;

enum FdtToken {
  BeginNode = 0x1,
  EndNode = 0x2,
  Prop = 0x3,
  End = 0x9,
}

const textEncoder = new TextEncoder();

/** A growable big-endian byte buffer for the structure block. */
class ByteSink {
  private bytes = new Uint8Array(1024);
  private view = new DataView(this.bytes.buffer);
  length = 0;

  u32(value: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, value >>> 0);
    this.length += 4;
  }

  raw(data: Uint8Array): void {
    this.reserve(data.length);
    this.bytes.set(data, this.length);
    this.length += data.length;
  }

  /** Zero bytes up to the next multiple of 4 (the buffer is zero-filled already). */
  align4(): void {
    const padded = (this.length + 3) & ~3;
    this.reserve(padded - this.length);
    this.length = padded;
  }

  contents(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    let capacity = this.bytes.length * 2;
    while (capacity < this.length + extra) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }
}

/** Per-open-node bookkeeping: properties must precede subnodes within a node. */
interface OpenNode {
  name: string;
  hasChildren: boolean;
}

export class FdtBuilder {
  private readonly struct = new ByteSink();
  private readonly strings: number[] = [];
  private readonly stringOffsets = new Map<string, number>();
  private readonly open: OpenNode[] = [];
  private rootClosed = false;

  /** Opens a node; the first call opens the root and must use the empty name. */
  beginNode(name: string): void {
    if (this.rootClosed) throw new Error('FDT: the root node is already closed');
    if (this.open.length === 0 && name !== '') throw new Error('FDT: the root node must be named ""');
    if (this.open.length > 0 && !/^[A-Za-z0-9,._+@-]{1,63}$/.test(name)) {
      throw new Error(`FDT: invalid node name ${JSON.stringify(name)}`);
    }
    const parent = this.open.at(-1);
    if (parent) parent.hasChildren = true;
    this.open.push({ name, hasChildren: false });
    this.struct.u32(FdtToken.BeginNode);
    this.struct.raw(cString(name));
    this.struct.align4();
  }

  endNode(): void {
    if (this.open.pop() === undefined) throw new Error('FDT: endNode() without an open node');
    this.struct.u32(FdtToken.EndNode);
    if (this.open.length === 0) this.rootClosed = true;
  }

  propBytes(name: string, value: Uint8Array): void {
    const node = this.open.at(-1);
    if (!node) throw new Error(`FDT: property ${name} outside any node`);
    if (node.hasChildren) throw new Error(`FDT: property ${name} after a subnode of ${node.name || '/'}`);
    if (name.length === 0 || name.includes('\0')) throw new Error('FDT: invalid property name');
    this.struct.u32(FdtToken.Prop);
    this.struct.u32(value.length);
    this.struct.u32(this.stringOffset(name));
    this.struct.raw(value);
    this.struct.align4();
  }

  /** A property with no value (a boolean flag such as `interrupt-controller`). */
  propEmpty(name: string): void {
    this.propBytes(name, new Uint8Array(0));
  }

  propU32(name: string, value: number): void {
    this.propCells(name, [value]);
  }

  /** A list of 32-bit cells, big-endian. */
  propCells(name: string, cells: readonly number[]): void {
    const bytes = new Uint8Array(cells.length * 4);
    const view = new DataView(bytes.buffer);
    cells.forEach((cell, i) => {
      if (!Number.isInteger(cell) || cell < 0 || cell > 0xffff_ffff) {
        throw new RangeError(`FDT: ${name}: ${cell} is not a 32-bit cell`);
      }
      view.setUint32(i * 4, cell);
    });
    this.propBytes(name, bytes);
  }

  /** A 64-bit value as two cells, high first. */
  propU64(name: string, value: bigint | number): void {
    this.propCells(name, u64Cells(value));
  }

  propString(name: string, value: string): void {
    this.propStrings(name, [value]);
  }

  /** A string list: each string NUL-terminated, one after the other. */
  propStrings(name: string, values: readonly string[]): void {
    const parts = values.map(cString);
    const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
    let at = 0;
    for (const part of parts) {
      bytes.set(part, at);
      at += part.length;
    }
    this.propBytes(name, bytes);
  }

  /** Closes the structure block and assembles the blob. */
  finish(): Uint8Array {
    if (!this.rootClosed) throw new Error('FDT: finish() with nodes still open or no root');
    const struct = new ByteSink();
    struct.raw(this.struct.contents());
    struct.u32(FdtToken.End);
    const structBytes = struct.contents();

    // The reservation map must be 8-byte aligned; the header is 40 bytes, so it follows
    // directly. The structure block needs 4-byte alignment, which 40 + 16 already has.
    const offMemRsvmap = HEADER_SIZE;
    const offDtStruct = offMemRsvmap + RESERVATION_ENTRY_SIZE;
    const offDtStrings = offDtStruct + structBytes.length;
    const totalSize = offDtStrings + this.strings.length;

    const blob = new Uint8Array(totalSize);
    const view = new DataView(blob.buffer);
    const header = [
      FDT_MAGIC,
      totalSize,
      offDtStruct,
      offDtStrings,
      offMemRsvmap,
      FDT_VERSION,
      FDT_LAST_COMPATIBLE_VERSION,
      0, // boot_cpuid_phys
      this.strings.length,
      structBytes.length,
    ];
    header.forEach((word, i) => view.setUint32(i * 4, word));
    // The reservation map's single entry is the all-zero terminator: nothing to write.
    blob.set(structBytes, offDtStruct);
    blob.set(this.strings, offDtStrings);
    return blob;
  }

  private stringOffset(name: string): number {
    let offset = this.stringOffsets.get(name);
    if (offset === undefined) {
      offset = this.strings.length;
      this.stringOffsets.set(name, offset);
      this.strings.push(...cString(name));
    }
    return offset;
  }
}

function cString(value: string): Uint8Array {
  if (value.includes('\0')) throw new Error('FDT: strings cannot contain NUL');
  const encoded = textEncoder.encode(value);
  const bytes = new Uint8Array(encoded.length + 1);
  bytes.set(encoded);
  return bytes;
}

/** Splits a non-negative 64-bit value into [high, low] cells. */
export function u64Cells(value: bigint | number): [number, number] {
  const big = BigInt(value);
  if (big < 0n || big > 0xffff_ffff_ffff_ffffn) throw new RangeError(`FDT: ${value} is not a 64-bit value`);
  return [Number(big >> 32n), Number(big & 0xffff_ffffn)];
}
