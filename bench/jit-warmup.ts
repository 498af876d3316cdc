// JIT warm-up: does compiling cost the start of a boot anything? Boots the default image's
// kernel + initramfs in this process with the JIT on and off (alternately, never at once) and
// measures the host wall time each takes to retire the first N guest instructions (default
// 70 M: about the interpreter's first second) and to retire a later checkpoint (default 700 M).
//
//   npm run build && node dist/bench/jit-warmup.js [--runs 5] [--first 70] [--later 700]
//
// Prints min and median per engine and the JIT/interpreter ratios (below 1: the JIT is faster).

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { ensureDefaultImage } from '../images/build-image.js';
import { Machine } from '../src/machine/machine.js';
import { fmtRatio, fmtS, ratio, summarize, table } from './lib/stats.js';

const USAGE = 'usage: node dist/bench/jit-warmup.js [--runs R] [--first MILLIONS] [--later MILLIONS > first]\n';
let values: { runs: string; first: string; later: string; help?: boolean };
try {
  values = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      first: { type: 'string', default: '70' },
      later: { type: 'string', default: '700' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const runs = Number(values.runs), first = Number(values.first) * 1e6, later = Number(values.later) * 1e6;
if (![runs, first, later].every((n) => Number.isInteger(n) && n > 0) || later <= first) {
  process.stderr.write(USAGE);
  process.exit(2);
}

/** Seconds to reach `first` and `later` retired instructions. */
function boot(jit: boolean, kernel: Uint8Array, initrd: Uint8Array): [number, number] {
  const m = new Machine({
    cpus: 1, memoryBytes: 256 << 20, jit,
    boot: { kind: 'linux', kernel, kernelName: 'Image', initrd, cmdline: 'console=ttyS0' },
    onConsoleOutput: () => {},
  });
  const hart = m.harts[0];
  const start = performance.now();
  let firstS = 0;
  // The kernel does not wait for anything this early, so running the hart directly is the boot.
  while (hart.instret < later) {
    hart.run(50_000);
    m.clint.update();
    if (firstS === 0 && hart.instret >= first) firstS = (performance.now() - start) / 1000;
  }
  const laterS = (performance.now() - start) / 1000;
  m.close();
  return [firstS, laterS];
}

const img = await ensureDefaultImage({ quiet: true });
const kernel = readFileSync(img.kernel), initrd = readFileSync(img.initrd);
const res: Record<'jit' | 'interp', [number[], number[]]> = { jit: [[], []], interp: [[], []] };
for (let r = 1; r <= runs; r++) {
  for (const e of ['interp', 'jit'] as const) {
    const [a, b] = boot(e === 'jit', kernel, initrd);
    res[e][0].push(a); res[e][1].push(b);
    process.stderr.write(`[warmup] run ${r} ${e}: ${fmtS(a)} s to ${first / 1e6} M, ${fmtS(b)} s to ${later / 1e6} M instructions\n`);
  }
}
const rows = [['engine', `to ${first / 1e6} M: min`, 'median', `to ${later / 1e6} M: min`, 'median']];
for (const e of ['interp', 'jit'] as const) {
  const a = summarize(res[e][0])!, b = summarize(res[e][1])!;
  rows.push([e === 'jit' ? 'Vessel (JIT)' : 'Vessel --no-jit', fmtS(a.min), fmtS(a.median), fmtS(b.min), fmtS(b.median)]);
}
const r1 = ratio(summarize(res.jit[0]), summarize(res.interp[0]))!, r2 = ratio(summarize(res.jit[1]), summarize(res.interp[1]))!;
rows.push(['JIT/interpreter', fmtRatio(r1.min), fmtRatio(r1.median), fmtRatio(r2.min), fmtRatio(r2.median)]);
process.stdout.write(`JIT warm-up: host wall time to retire the first instructions of a boot, s (${runs} runs each)\n`);
process.stdout.write(table(rows, [false, true, true, true, true]) + '\n');
