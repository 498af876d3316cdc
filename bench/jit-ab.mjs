// A/B of two builds of Vessel on one guest workload, interleaved in one run (this host's speed
// drifts by tens of percent over minutes, so only builds measured side by side compare):
//
//   node bench/jit-ab.mjs [--runs N] [--workload loop|sha|gzip] <distA> <distB> ...
//
// Each <dist> is a built dist/ directory (e.g. a copy of this repo's dist/ at another commit).
// Every run boots the default guest image in this process (1 hart, 256 MiB) to the shell prompt
// and times the workload on the host clock; the medians per build are printed last.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const WORKLOADS = {
  loop: 'i=0; while [ $i -lt 50000 ]; do i=$((i+1)); done; echo DONE$i',
  sha: 'dd if=/dev/zero bs=1M count=64 2>/dev/null | sha256sum; echo DONE',
  gzip: 'seq 1 100000 | gzip -6 | wc -c; echo DONE',
};

const { values, positionals } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, workload: { type: 'string', default: 'loop' }, child: { type: 'string' } },
  allowPositionals: true,
});
const workload = values.workload;
if (!(workload in WORKLOADS)) throw new Error(`--workload must be one of ${Object.keys(WORKLOADS).join(', ')}`);

if (values.child) { // one measured run of build `values.child`, in a fresh process
  const { Machine } = await import(resolve(values.child, 'src/machine/machine.js'));
  // The default guest image, as this repository's build (dist/) finds it.
  const { readDefaultImage } = await import(new URL('../dist/images/build-image.js', import.meta.url).href);
  const image = readDefaultImage();
  if (!image) throw new Error('no default guest image: run `npm run build && npm run image`');
  const cmd = WORKLOADS[workload];
  let out = '', phase = 'boot', started = 0;
  const m = new Machine({
    cpus: 1, memoryBytes: 256 << 20,
    boot: { kind: 'linux', kernel: readFileSync(image.kernel), kernelName: 'Image', initrd: readFileSync(image.initrd), cmdline: 'console=ttyS0' },
    onConsoleOutput: (d) => {
      out += Buffer.from(d).toString('latin1');
      if (phase === 'boot' && out.includes('~ # ')) {
        phase = 'work'; out = ''; started = performance.now();
        m.sendInput(Buffer.from(cmd + '\n'));
      } else if (phase === 'work' && /DONE\S*\r?\n/.test(out.split(cmd)[1] ?? '')) {
        console.log(((performance.now() - started) / 1000).toFixed(3));
        phase = 'done'; m.stop({ kind: 'poweroff', code: 0 });
      }
    },
  });
  await m.run();
} else {
  if (positionals.length < 2) throw new Error('usage: node bench/jit-ab.mjs [--runs N] [--workload loop|sha|gzip] <distA> <distB> ...');
  const times = new Map(positionals.map((d) => [d, []]));
  for (let run = 0; run < Number(values.runs); run++) {
    for (const dist of positionals) {
      const r = spawnSync(process.execPath, [new URL(import.meta.url).pathname, '--workload', workload, '--child', dist], { encoding: 'utf8' });
      const t = Number(r.stdout.trim().split('\n').pop());
      if (r.status !== 0 || !Number.isFinite(t)) throw new Error(`${dist}: run failed (${r.status}): ${r.stderr.slice(-500)}`);
      times.get(dist).push(t);
      console.log(`${dist} run ${run + 1}: ${workload} ${t.toFixed(3)} s`);
    }
  }
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
  const base = median(times.get(positionals[0]));
  for (const [dist, ts] of times) console.log(`${dist}: median ${median(ts).toFixed(3)} s (${(base / median(ts)).toFixed(2)}x the speed of ${positionals[0]})`);
}
