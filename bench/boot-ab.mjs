// A/B of builds of Vessel on the boot itself: each round boots the default image once per build,
// each in a fresh child process (so no build warms V8 up for another), the order alternating
// from round to round, and times Machine's boot to the init marker on the host clock:
//
//   node bench/boot-ab.mjs [--rounds N] [--cpus N] [--stats] <distA> <distB> ...
//
// --cpus boots that many harts (each on a host thread of its own, the default); --stats prints
// each boot's JIT statistics (per thread that runs harts) too.
// Each <dist> is a built dist/ directory (e.g. a copy of this repo's dist/ at another commit).
// Printed: every boot, then each build's median and minimum and its ratio to the first build's median.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

if (process.env.VESSEL_BOOT_AB_CHILD) {
  // Child: boot the default image with the build in $VESSEL_BOOT_AB_CHILD, print the seconds.
  const dist = process.env.VESSEL_BOOT_AB_CHILD;
  const { readDefaultImage, BOOT_MARKER } = await import(resolve(dist, 'images/build-image.js'));
  const { Machine } = await import(resolve(dist, 'src/machine/machine.js'));
  const image = readDefaultImage();
  if (!image) throw new Error('no default guest image: run `npm run build && npm run image`');
  const kernel = readFileSync(image.kernel), initrd = readFileSync(image.initrd);
  let out = '', done = false;
  const started = performance.now();
  const machine = new Machine({
    cpus: Number(process.env.VESSEL_BOOT_AB_CPUS ?? 1), memoryBytes: 256 << 20,
    boot: { kind: 'linux', kernel, kernelName: 'Image', initrd, cmdline: 'console=ttyS0' },
    onConsoleOutput: (d) => {
      out += Buffer.from(d).toString('latin1');
      if (out.includes(BOOT_MARKER) && !done) {
        done = true;
        console.log(((performance.now() - started) / 1000).toFixed(3));
        machine.stop({ kind: 'poweroff', code: 0 });
      }
    },
  });
  await machine.run();
  if (process.env.VESSEL_BOOT_AB_STATS && machine.jitStats) console.error(JSON.stringify(machine.jitStats()));
  machine.close();
  process.exit(0);
}

const { values, positionals } = parseArgs({
  options: { rounds: { type: 'string', default: '8' }, cpus: { type: 'string', default: '1' }, stats: { type: 'boolean', default: false } },
  allowPositionals: true,
});
if (positionals.length < 2) throw new Error('usage: node bench/boot-ab.mjs [--rounds N] [--cpus N] [--stats] <distA> <distB> ...');
const childEnv = { ...process.env, VESSEL_BOOT_AB_CPUS: values.cpus, ...(values.stats ? { VESSEL_BOOT_AB_STATS: '1' } : {}) };
const self = fileURLToPath(import.meta.url);
const times = new Map(positionals.map((d) => [d, []]));
for (let round = 0; round < Number(values.rounds); round++) {
  for (const dist of round % 2 === 0 ? positionals : [...positionals].reverse()) {
    const s = Number(execFileSync(process.execPath, [self], { env: { ...childEnv, VESSEL_BOOT_AB_CHILD: resolve(dist) }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim());
    times.get(dist).push(s);
    console.log(`${dist} round ${round + 1}: boot ${s.toFixed(2)} s`);
  }
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const base = median(times.get(positionals[0]));
for (const [dist, ts] of times) {
  console.log(`${dist}: boot median ${median(ts).toFixed(2)} s, min ${Math.min(...ts).toFixed(2)} s (${(median(ts) / base).toFixed(3)}x the time of ${positionals[0]})`);
}
