// A/B of builds of Vessel on one guest workload, interleaved in one process (this host's speed
// drifts by tens of percent within a minute, so only builds measured side by side compare):
//
//   node bench/jit-ab.mjs [--rounds N] [--workload loop|sha|gzip|coremark] [--loop-iterations N]
//                         [--coremark-iterations N] <distA> <distB> ...
//
// Each <dist> is a built dist/ directory (e.g. a copy of this repo's dist/ at another commit).
// One guest per build (the default image, 1 hart, 256 MiB) boots in this process to the shell
// prompt; then every round runs the workload once on each guest, one after the other (the order
// alternating from round to round), timed on the host clock from sending the command to its
// DONE line. A first round warms every guest up and is not counted. Printed: each build's boot
// time, median and minimum, and its speed relative to the first build's median.
// `coremark` runs bench/guest/coremark-like.c (as bench/cpu.ts builds it: riscv64-linux-gnu-gcc
// -O2 -static, on a read-only tools disk every guest copies to /tmp at boot) and takes the
// program's own time (CLOCK_MONOTONIC around its loop, the guest's clock) instead of the host's.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: {
    rounds: { type: 'string', default: '10' },
    workload: { type: 'string', default: 'loop' },
    'loop-iterations': { type: 'string', default: '20000' },
    'coremark-iterations': { type: 'string', default: '30000' },
  },
  allowPositionals: true,
});
const WORKLOADS = {
  loop: `i=0; while [ $i -lt ${Number(values['loop-iterations'])} ]; do i=$((i+1)); done; echo DONE$i`,
  sha: 'dd if=/dev/zero bs=1M count=64 2>/dev/null | sha256sum; echo DONE$?',
  gzip: 'seq 1 100000 | gzip -6 | wc -c; echo DONE$?',
  coremark: `/tmp/cm ${Number(values['coremark-iterations'])}; echo DONE$?`,
};
const cmd = WORKLOADS[values.workload];
if (!cmd) throw new Error(`--workload must be one of ${Object.keys(WORKLOADS).join(', ')}`);
if (positionals.length < 2) throw new Error('usage: node bench/jit-ab.mjs [--rounds N] [--workload loop|sha|gzip|coremark] <distA> <distB> ...');
const rounds = Number(values.rounds);

// The default guest image, as this repository's build (dist/) finds it.
const { readDefaultImage } = await import(new URL('../dist/images/build-image.js', import.meta.url).href);
const image = readDefaultImage();
if (!image) throw new Error('no default guest image: run `npm run build && npm run image`');
const kernel = readFileSync(image.kernel), initrd = readFileSync(image.initrd);
let tools = null;
if (values.workload === 'coremark') {
  const { buildToolsDisk } = await import(new URL('../dist/bench/lib/guest-tools.js', import.meta.url).href);
  tools = buildToolsDisk(fileURLToPath(new URL('guest/coremark-like.c', import.meta.url)), mkdtempSync(join(tmpdir(), 'jit-ab-')));
}

/** A booted guest of one build, with a way to wait for its console to show something. */
async function bootGuest(dist) {
  const { Machine } = await import(resolve(dist, 'src/machine/machine.js'));
  const guest = { dist, out: '', waiter: null, times: [], boot: 0 };
  guest.machine = new Machine({
    cpus: 1, memoryBytes: 256 << 20,
    boot: { kind: 'linux', kernel, kernelName: 'Image', initrd, cmdline: 'console=ttyS0' },
    ...(tools ? { virtio: { disks: [{ path: tools.path, readonly: true }] } } : {}),
    onConsoleOutput: (d) => {
      guest.out += Buffer.from(d).toString('latin1');
      if (guest.waiter?.pattern.test(guest.out)) { const w = guest.waiter; guest.waiter = null; w.resolve(); }
    },
  });
  guest.until = (pattern) => new Promise((resolve) => {
    if (pattern.test(guest.out)) resolve(); else guest.waiter = { pattern, resolve };
  });
  guest.running = guest.machine.run();
  const started = performance.now();
  await guest.until(/~ # /);
  guest.boot = (performance.now() - started) / 1000;
  if (tools) {
    guest.out = '';
    guest.machine.sendInput(Buffer.from(`dd if=/dev/vda of=/tmp/cm bs=4096 count=${tools.blocks} 2>/dev/null; chmod +x /tmp/cm; echo COPIED$?\n`));
    await guest.until(/COPIED\d+\r?\n/);
    if (!/COPIED0\r?\n/.test(guest.out)) throw new Error(`${dist}: copying the program from the tools disk failed: ${guest.out}`);
  }
  return guest;
}

const guests = [];
for (const dist of positionals) guests.push(await bootGuest(dist));
for (let round = -1; round < rounds; round++) {
  for (const guest of round % 2 === 0 ? guests : [...guests].reverse()) {
    guest.out = '';
    const started = performance.now();
    guest.machine.sendInput(Buffer.from(cmd + '\n'));
    await guest.until(/DONE\d+\r?\n/); // (the echoed command line reads DONE$i or DONE$?)
    let s = (performance.now() - started) / 1000;
    if (tools) {
      const m = /COREMARKLIKE iterations=\d+ ns=(\d+) checksum=(0x[0-9a-f]+)/.exec(guest.out);
      if (!m) throw new Error(`${guest.dist}: no result line from the program: ${guest.out}`);
      s = Number(m[1]) / 1e9;
      (guest.checksums ??= new Set()).add(m[2]);
    }
    if (round >= 0) { guest.times.push(s); console.log(`${guest.dist} round ${round + 1}: ${values.workload} ${s.toFixed(3)} s`); }
  }
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const base = median(guests[0].times);
const checksums = new Set(guests.flatMap((g) => [...(g.checksums ?? [])]));
if (checksums.size > 1) throw new Error(`the builds disagree on the checksum: ${[...checksums].join(' ')}`);
for (const g of guests) {
  console.log(`${g.dist}: boot ${g.boot.toFixed(2)} s, ${values.workload} median ${median(g.times).toFixed(3)} s, min ${Math.min(...g.times).toFixed(3)} s ` +
    `(${(base / median(g.times)).toFixed(2)}x the speed of ${guests[0].dist})`);
}
for (const g of guests) g.machine.stop({ kind: 'poweroff', code: 0 });
await Promise.all(guests.map((g) => g.running));
