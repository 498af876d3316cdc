// Runs the npm `v86` emulator (32-bit x86, its own x86-to-wasm JIT) headless in this process,
// as bench/peers.ts's v86 engine: SeaBIOS + a bzImage + an initrd, its first serial port
// (COM1, the guest's ttyS0) on stdin/stdout. Ends when stdin closes or on SIGTERM/SIGINT.
//
//   node dist/bench/lib/v86-runner.js --bios B --vga-bios V --bzimage K --initrd I --cmdline C [--memory-mib 256]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

import { V86 } from 'v86';

const { values } = parseArgs({
  strict: true,
  options: {
    bios: { type: 'string' },
    'vga-bios': { type: 'string' },
    bzimage: { type: 'string' },
    initrd: { type: 'string' },
    cmdline: { type: 'string' },
    'memory-mib': { type: 'string', default: '256' },
  },
});

function required(name: 'bios' | 'vga-bios' | 'bzimage' | 'initrd' | 'cmdline'): string {
  const v = values[name];
  if (!v) {
    process.stderr.write(`v86-runner: --${name} is required\n`);
    process.exit(2);
  }
  return v;
}

/** v86 takes images as { buffer: ArrayBuffer }; a Node Buffer may be a view into a larger pool. */
function image(file: string): { buffer: ArrayBuffer } {
  const b = readFileSync(file);
  return { buffer: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer };
}

const memoryMiB = Number(values['memory-mib']);
if (!Number.isInteger(memoryMiB) || memoryMiB < 16 || memoryMiB > 2048) {
  process.stderr.write(`v86-runner: --memory-mib must be an integer from 16 to 2048\n`);
  process.exit(2);
}

const emulator = new V86({
  wasm_path: createRequire(import.meta.url).resolve('v86/build/v86.wasm'),
  memory_size: memoryMiB << 20,
  vga_memory_size: 8 << 20,
  bios: image(required('bios')),
  vga_bios: image(required('vga-bios')),
  bzimage: image(required('bzimage')),
  initrd: image(required('initrd')),
  cmdline: required('cmdline'),
  autostart: true,
  disable_keyboard: true,
  disable_mouse: true,
  disable_speaker: true,
});

// The serial port hands over one byte per event: collect them and write once per turn of the loop.
let pending: number[] = [];
emulator.add_listener('serial0-output-byte', (byte: number) => {
  if (pending.length === 0) setImmediate(flush);
  pending.push(byte);
});
function flush(): void {
  const out = Buffer.from(pending);
  pending = [];
  process.stdout.write(out);
}

let ending = false;
function end(): void {
  if (ending) return;
  ending = true;
  emulator.destroy().then(() => process.exit(0), (e: unknown) => {
    process.stderr.write(`v86-runner: destroy failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}

process.stdin.on('data', (chunk: Buffer) => emulator.serial_send_bytes(0, chunk));
process.stdin.on('end', end);
process.on('SIGTERM', end);
process.on('SIGINT', end);
