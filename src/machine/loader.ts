/**
 * Boot images: the RISC-V Linux `Image` format (Documentation/arch/riscv/boot-image-header.rst)
 * and, for bare-metal test programs, static ELF64 RISC-V executables.
 */

export class BootImageError extends Error {
  override name = 'BootImageError';
}

export interface KernelImage {
  /** Offset from the start of RAM at which the image must be placed. */
  textOffset: number;
  /** Bytes the image occupies once running (includes .bss). */
  imageSize: number;
  data: Uint8Array;
}

const IMAGE_HEADER_SIZE = 64;
const MAGIC2 = 0x05435352; // "RSC\x05"

/** Parses and validates a RISC-V Linux Image; `what` names the file in error messages. */
export function parseKernelImage(data: Uint8Array, what: string): KernelImage {
  if (data.length < IMAGE_HEADER_SIZE) {
    throw new BootImageError(`${what}: ${data.length} bytes is too short for a RISC-V kernel Image (header is 64 bytes)`);
  }
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (dv.getUint32(56, true) !== MAGIC2) {
    const hint = data[0] === 0x7f && data[1] === 0x45 ? ' (it is an ELF file: pass the Image, e.g. vmlinuz from linux-image-*-riscv64, not vmlinux)'
      : data[0] === 0x1f && data[1] === 0x8b ? ' (it is gzip-compressed: decompress it first)' : '';
    throw new BootImageError(`${what}: not a RISC-V kernel Image: magic "RSC\\x05" missing at offset 0x38${hint}`);
  }
  const textOffset = Number(dv.getBigUint64(8, true));
  const imageSize = Number(dv.getBigUint64(16, true));
  if (imageSize < data.length - 4096 && imageSize !== 0) {
    throw new BootImageError(`${what}: header image_size ${imageSize} is smaller than the file (${data.length} bytes)`);
  }
  checkPeSections(data, dv, what);
  return { textOffset, imageSize: Math.max(imageSize, data.length), data };
}

/**
 * Kernels with the EFI stub carry a PE/COFF header; its section table says how many bytes
 * the file must hold, which catches a truncated download that the Image header alone cannot.
 */
function checkPeSections(data: Uint8Array, dv: DataView, what: string): void {
  if (data[0] !== 0x4d || data[1] !== 0x5a) return; // "MZ": no PE header
  const pe = dv.getUint32(0x3c, true);
  if (pe + 24 > data.length || dv.getUint32(pe, true) !== 0x00004550) return;
  const sections = dv.getUint16(pe + 6, true);
  const optSize = dv.getUint16(pe + 20, true);
  const table = pe + 24 + optSize;
  let needed = 0;
  for (let i = 0; i < sections; i++) {
    const s = table + 40 * i;
    if (s + 40 > data.length) throw new BootImageError(`${what}: truncated (PE section table cut off)`);
    const rawSize = dv.getUint32(s + 16, true), rawPtr = dv.getUint32(s + 20, true);
    needed = Math.max(needed, rawPtr + rawSize);
  }
  if (needed > data.length) {
    throw new BootImageError(`${what}: truncated: its sections need ${needed} bytes but the file has ${data.length}`);
  }
}

export interface ElfSegment { paddr: number; data: Uint8Array; memSize: number }
export interface ElfImage { entry: bigint; segments: ElfSegment[]; symbols: Map<string, bigint> }

/** Parses a static ELF64 little-endian RISC-V executable (for bare-metal test programs). */
export function parseElf(data: Uint8Array, what: string): ElfImage {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length < 64 || dv.getUint32(0, false) !== 0x7f454c46) throw new BootImageError(`${what}: not an ELF file`);
  if (data[4] !== 2 || data[5] !== 1) throw new BootImageError(`${what}: not a 64-bit little-endian ELF`);
  if (dv.getUint16(18, true) !== 243) throw new BootImageError(`${what}: ELF machine is not RISC-V`);
  const entry = dv.getBigUint64(24, true);
  const phoff = Number(dv.getBigUint64(32, true)), phentsize = dv.getUint16(54, true), phnum = dv.getUint16(56, true);
  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    if (p + 56 > data.length) throw new BootImageError(`${what}: truncated program header table`);
    if (dv.getUint32(p, true) !== 1) continue; // PT_LOAD
    const off = Number(dv.getBigUint64(p + 8, true)), paddr = Number(dv.getBigUint64(p + 24, true));
    const fileSize = Number(dv.getBigUint64(p + 32, true)), memSize = Number(dv.getBigUint64(p + 40, true));
    if (off + fileSize > data.length) throw new BootImageError(`${what}: truncated segment at file offset ${off}`);
    segments.push({ paddr, data: data.subarray(off, off + fileSize), memSize });
  }
  return { entry, segments, symbols: readSymbols(data, dv) };
}

function readSymbols(data: Uint8Array, dv: DataView): Map<string, bigint> {
  const symbols = new Map<string, bigint>();
  const shoff = Number(dv.getBigUint64(40, true)), shentsize = dv.getUint16(58, true), shnum = dv.getUint16(60, true);
  if (shoff === 0 || shoff + shnum * shentsize > data.length) return symbols;
  for (let i = 0; i < shnum; i++) {
    const s = shoff + i * shentsize;
    if (dv.getUint32(s + 4, true) !== 2) continue; // SHT_SYMTAB
    const symOff = Number(dv.getBigUint64(s + 24, true)), symSize = Number(dv.getBigUint64(s + 32, true));
    const strSec = shoff + dv.getUint32(s + 40, true) * shentsize;
    const strOff = Number(dv.getBigUint64(strSec + 24, true));
    for (let p = symOff; p + 24 <= symOff + symSize && p + 24 <= data.length; p += 24) {
      let end = strOff + dv.getUint32(p, true);
      const start = end;
      while (end < data.length && data[end] !== 0) end++;
      const name = Buffer.from(data.subarray(start, end)).toString('latin1');
      if (name) symbols.set(name, dv.getBigUint64(p + 8, true));
    }
  }
  return symbols;
}
