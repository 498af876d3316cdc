// Runs TinyEMU's RISC-V machine compiled to WebAssembly (bench/lib/tinyemu.ts) in this process,
// as bench/peers.ts's tinyemu engine: OpenSBI + a kernel + an initrd, the virtio console on
// stdin/stdout. Ends when stdin closes or on SIGTERM/SIGINT.
//
//   node dist/bench/lib/tinyemu-runner.js --module DIR --bios B --kernel K --initrd I --cmdline C [--memory-mib 256]
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

/** What emscripten's loader (MODULARIZE) resolves to: the exported C functions via cwrap. */
interface TinyEmuModule {
  cwrap(name: 'tinyemu_start', ret: 'number', args: ['string']): (configPath: string) => number;
  cwrap(name: 'tinyemu_run', ret: 'number', args: ['number']): (slices: number) => number;
  cwrap(name: 'tinyemu_input', ret: 'number', args: ['number']): (byte: number) => number;
}
type CreateModule = (options: { wasmBinary: Uint8Array }) => Promise<TinyEmuModule>;

/** Slices of 500,000 instructions per turn of Node's event loop (stdin is read between turns). */
const SLICES_PER_TURN = 20;

const { values } = parseArgs({
  strict: true,
  options: {
    module: { type: 'string' },
    bios: { type: 'string' },
    kernel: { type: 'string' },
    initrd: { type: 'string' },
    cmdline: { type: 'string' },
    'memory-mib': { type: 'string', default: '256' },
  },
});

function fail(msg: string): never {
  process.stderr.write(`tinyemu-runner: ${msg}\n`);
  process.exit(2);
}

const required = (name: 'module' | 'bios' | 'kernel' | 'initrd' | 'cmdline'): string => values[name] ?? fail(`--${name} is required`);
const memoryMiB = Number(values['memory-mib']);
if (!Number.isInteger(memoryMiB) || memoryMiB < 16 || memoryMiB > 2048) fail('--memory-mib must be an integer from 16 to 2048');

// TinyEMU's configuration format: a JSON-like object (file names in JSON strings are valid here).
const configDir = mkdtempSync(path.join(os.tmpdir(), 'vessel-tinyemu-'));
const configPath = path.join(configDir, 'vm.cfg');
writeFileSync(configPath, `{
  version: 1,
  machine: "riscv64",
  memory_size: ${memoryMiB},
  bios: ${JSON.stringify(path.resolve(required('bios')))},
  kernel: ${JSON.stringify(path.resolve(required('kernel')))},
  initrd: ${JSON.stringify(path.resolve(required('initrd')))},
  cmdline: ${JSON.stringify(required('cmdline'))},
}
`);

const moduleDir = path.resolve(required('module'));
const createModule = createRequire(import.meta.url)(path.join(moduleDir, 'tinyemu.js')) as CreateModule;
// emscripten 3.1.6 would fetch() the .wasm by path, which Node's fetch cannot do: hand it over.
const m = await createModule({ wasmBinary: readFileSync(path.join(moduleDir, 'tinyemu.wasm')) });
const start = m.cwrap('tinyemu_start', 'number', ['string']);
const run = m.cwrap('tinyemu_run', 'number', ['number']);
const input = m.cwrap('tinyemu_input', 'number', ['number']);

if (start(configPath) !== 0) fail('TinyEMU could not build the machine');
rmSync(configDir, { recursive: true, force: true });

let ending = false;
function end(): void {
  ending = true;
  process.exit(0);
}
process.stdin.on('data', (chunk: Buffer) => {
  for (const byte of chunk) if (input(byte) !== 0) process.stderr.write('tinyemu-runner: console input queue full, byte dropped\n');
});
process.stdin.on('end', end);
process.on('SIGTERM', end);
process.on('SIGINT', end);

function loop(): void {
  if (ending) return;
  const sleepMs = run(SLICES_PER_TURN);
  if (sleepMs > 0) setTimeout(loop, sleepMs);
  else setImmediate(loop);
}
loop();
