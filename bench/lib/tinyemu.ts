// TinyEMU (Fabrice Bellard's RISC-V emulator, C) compiled to WebAssembly for bench/peers.ts.
// TinyEMU is on neither npm nor Debian: the benchmark takes its source tree from the user
// (--tinyemu-src or $VESSEL_TINYEMU_SRC; e.g. the 2019-02-10 release as mirrored on GitHub in
// fernandotcl/TinyEMU), copies it, applies bench/guest/tinyemu/vessel-peers.patch and compiles
// the RISC-V machine with Debian's emscripten, with bench/guest/tinyemu/node-main.c as its Node
// front end. Cached in $VESSEL_CACHE/peers/tinyemu/<hash of sources, patch and front end>/.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { peersCacheDir } from './i386-guest.js';
import { UsageError } from './options.js';

const GUEST_DIR = fileURLToPath(new URL('../../../bench/guest/tinyemu/', import.meta.url));
const PATCH = path.join(GUEST_DIR, 'vessel-peers.patch');
const FRONT_END = path.join(GUEST_DIR, 'node-main.c');
/** Debian's OpenSBI (bookworm: 1.1): TinyEMU's boot ROM hands it the kernel as fw_dynamic's next stage. */
export const OPENSBI_FW_DYNAMIC = '/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin';
export const EMCC = 'emcc';

/** TinyEMU sources the build uses (its RISC-V machine without network, SDL or 9p over HTTP). */
const SOURCES = ['riscv_cpu', 'riscv_machine', 'virtio', 'softfp', 'machine', 'iomem', 'cutils', 'elf', 'json', 'fs', 'pci', 'simplefb'];

export interface TinyEmuBuild {
  /** Directory with tinyemu.js (emscripten's CommonJS loader) and tinyemu.wasm. */
  dir: string;
  /** TinyEMU's VERSION file. */
  version: string;
}

function sourceHash(src: string): string {
  const h = createHash('sha256');
  for (const f of [...fs.readdirSync(src).filter((f) => /\.[ch]$/.test(f)).sort()]) h.update(f).update(fs.readFileSync(path.join(src, f)));
  h.update(fs.readFileSync(PATCH)).update(fs.readFileSync(FRONT_END));
  return h.digest('hex').slice(0, 16);
}

function run(cmd: string, args: string[], cwd: string, what: string, input?: Buffer): void {
  // Debian's emscripten runs its JavaScript tools with the host's node, which must find Debian's acorn.
  const env = { ...process.env, NODE_PATH: ['/usr/share/nodejs', process.env['NODE_PATH']].filter(Boolean).join(':') };
  const r = spawnSync(cmd, args, { cwd, env, input, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error || r.status !== 0) {
    const out = (r.stderr || r.stdout || '').split('\n').filter((l) => !/warning:|^\s*\d* \||^\s*\||^\s*\^/.test(l)).slice(-8).join('\n');
    throw new UsageError(`${what}: \`${cmd} ${args.join(' ')}\` failed: ${r.error?.message ?? out}`);
  }
}

/** Builds (or finds in the cache) TinyEMU's RISC-V machine as WebAssembly from the tree `src`. */
export function ensureTinyEmu(src: string, log: (msg: string) => void): TinyEmuBuild {
  if (!fs.existsSync(path.join(src, 'riscv_machine.c')) || !fs.existsSync(path.join(src, 'VERSION'))) {
    throw new UsageError(`--tinyemu-src ${src}: not a TinyEMU source tree (no riscv_machine.c and VERSION)`);
  }
  const version = fs.readFileSync(path.join(src, 'VERSION'), 'utf8').trim();
  const dir = path.join(peersCacheDir(), 'tinyemu', sourceHash(src));
  if (fs.existsSync(path.join(dir, 'tinyemu.wasm')) && fs.existsSync(path.join(dir, 'tinyemu.js'))) return { dir, version };

  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const work = fs.mkdtempSync(path.join(path.dirname(dir), 'build-'));
  try {
    log(`building TinyEMU ${version} for WebAssembly (emscripten) in ${work}`);
    fs.cpSync(src, work, { recursive: true });
    run('patch', ['-p1', '--forward', '-i', PATCH], work, 'patching TinyEMU');
    fs.copyFileSync(FRONT_END, path.join(work, 'node-main.c'));
    const cflags = ['-O2', '-fno-strict-aliasing', '-D_FILE_OFFSET_BITS=64', '-DMAX_XLEN=64', '-DCONFIG_RISCV_MAX_XLEN=64'];
    const objects: string[] = [];
    for (const name of [...SOURCES, 'node-main']) {
      // machine.c's EMSCRIPTEN branch expects the browser front end (files over XHR): compile it as
      // for a native host. The CPU keeps its EMSCRIPTEN branch (one XLEN, global state).
      const extra = name === 'machine' ? ['-UEMSCRIPTEN'] : [];
      run(EMCC, [...cflags, ...extra, '-c', `${name}.c`, '-o', `${name}.o`], work, `compiling TinyEMU's ${name}.c`);
      objects.push(`${name}.o`);
    }
    const out = path.join(work, 'out');
    fs.mkdirSync(out);
    run(EMCC, ['-O2', '-s', 'ENVIRONMENT=node', '-s', 'NODERAWFS=1', '-s', 'MODULARIZE=1', '-s', 'ALLOW_MEMORY_GROWTH=1',
      '-s', 'INITIAL_MEMORY=67108864', '-s', 'MAXIMUM_MEMORY=2147483648', '-s', "EXPORTED_RUNTIME_METHODS=['cwrap']",
      '-s', "EXPORTED_FUNCTIONS=['_tinyemu_start','_tinyemu_run','_tinyemu_input']",
      '-o', path.join(out, 'tinyemu.js'), ...objects], work, 'linking TinyEMU');
    // emscripten's loader is CommonJS; say so, whatever encloses the cache.
    fs.writeFileSync(path.join(out, 'package.json'), '{ "type": "commonjs" }\n');
    fs.renameSync(out, dir); // complete or absent
    log(`TinyEMU cached in ${dir}`);
    return { dir, version };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
