/** Parses a memory size such as "256M", "1G", "512MiB" or a plain number of MiB (QEMU's -m style). */
export function parseMemorySize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new Error(`invalid memory size "${text}": use e.g. 256M or 1G`);
  const unit = m[2].toLowerCase();
  const scale = unit === 'k' ? 1024 : unit === 'g' ? 1024 ** 3 : unit === 't' ? 1024 ** 4 : 1024 ** 2;
  const bytes = Math.round(Number(m[1]) * scale);
  if (bytes % 4096 !== 0) throw new Error(`memory size "${text}" is not a multiple of 4 KiB`);
  return bytes;
}
