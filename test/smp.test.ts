// Harts on host threads of their own (src/machine/hart-threads.ts), beyond the ISA programs of
// test/isa (smp-atomics, smp-xmc, smp-litmus run there on a thread per hart): what the litmus
// program saw on each kind of machine, and a hart thread that dies.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Machine } from '../src/machine/machine.js';
import { HartState as SbiHartState } from '../src/machine/sbi.js';
import { Irq } from '../src/cpu/csr.js';
import { buildIsaProgram } from './isa-programs.js';
import { ensureDefaultImage } from '../images/build-image.js';

const dir = mkdtempSync(join(tmpdir(), 'vessel-smp-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The address of symbol `name` in ELF `elf` (Debian's cross nm). */
function symbol(elf: string, name: string): number {
  const nm = spawnSync('riscv64-linux-gnu-nm', [elf], { encoding: 'utf8' });
  if (nm.error) assert.fail(`riscv64-linux-gnu-nm could not be run (${nm.error.message}): run \`bash test/setup.sh\``);
  const line = nm.stdout.split('\n').find((l) => l.endsWith(` ${name}`));
  assert.ok(line, `${name} is in ${elf}`);
  return parseInt(line.split(' ')[0], 16);
}

async function runProgram(elf: string, cpus: number, threads: 'per-hart' | 1): Promise<Machine> {
  const machine = new Machine({ cpus, memoryBytes: 32 << 20, boot: { kind: 'elf', image: readFileSync(elf), name: elf }, onConsoleOutput: () => {}, threads });
  const timer = setTimeout(() => machine.stop({ kind: 'error', message: 'timed out after 60 s' }), 60_000);
  const result = await machine.run();
  clearTimeout(timer);
  assert.deepEqual(result, { kind: 'poweroff', code: 0 }, `the program passed (${JSON.stringify(result)})`);
  return machine;
}

test('litmus: store buffering with fences is never seen, on one thread or a thread per hart; without fences it may be with threads only', async (t) => {
  const elf = buildIsaProgram('smp-litmus', dir);
  const relaxed = symbol(elf, 'sb_relaxed_seen'), fenced = symbol(elf, 'sb_fenced_seen');
  const oneThread = await runProgram(elf, 2, 1);
  assert.equal(oneThread.threadPerHart, false);
  assert.equal(Number(oneThread.memory.view.getBigUint64(fenced - oneThread.memory.base, true)), 0);
  // Harts that take turns never overlap their accesses: no reordering can be seen.
  assert.equal(Number(oneThread.memory.view.getBigUint64(relaxed - oneThread.memory.base, true)), 0);
  const threaded = await runProgram(elf, 2, 'per-hart');
  assert.equal(threaded.threadPerHart, true);
  assert.equal(Number(threaded.memory.view.getBigUint64(fenced - threaded.memory.base, true)), 0);
  t.diagnostic(`SB without fences, both loads 0: ${threaded.memory.view.getBigUint64(relaxed - threaded.memory.base, true)} of 4000 iterations on a thread per hart`);
  assert.ok(threaded.hartInstret(1) > 0 && threaded.hartInstret(0) > 0, 'both harts ran');
});

test('a hart thread that dies ends the machine with an error naming the hart, not a hang', async () => {
  const elf = buildIsaProgram('smp-atomics', dir);
  const machine = new Machine({ cpus: 2, memoryBytes: 32 << 20, boot: { kind: 'elf', image: readFileSync(elf), name: elf }, onConsoleOutput: () => {}, threads: 'per-hart' });
  const running = machine.run();
  await new Promise((resolve) => setTimeout(resolve, 200));
  // What an OOM in one thread or a crash in the JIT would look like from here: the worker ends.
  const threads = machine.hartThreads;
  assert.ok(threads, 'a thread per hart');
  await threads.worker(1).terminate();
  const result = await Promise.race([running, new Promise((resolve) => setTimeout(() => resolve('hang'), 20_000).unref())]);
  assert.notEqual(result, 'hang', 'the machine stopped');
  assert.equal((result as { kind: string }).kind, 'error');
  assert.match((result as { message: string }).message, /hart 1's thread/);
});

test('live vCPUs: a hart beyond the allotment cannot be started; raised, the guest onlines it; offline, it stops', { timeout: 600_000 }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  let out = '';
  const machine = new Machine({
    cpus: 2, allottedHarts: 1, memoryBytes: 256 << 20,
    boot: { kind: 'linux', kernel: readFileSync(image.kernel), kernelName: image.kernel, initrd: readFileSync(image.initrd), cmdline: 'console=ttyS0' },
    onConsoleOutput: (d) => { out += Buffer.from(d).toString('latin1'); },
  });
  const running = machine.run();
  t.after(() => machine.stop({ kind: 'poweroff', code: 0 }));
  const waitFor = async (re: RegExp, from: number, ms = 300_000): Promise<string> => {
    const end = performance.now() + ms;
    for (;;) {
      const m = re.exec(out.slice(from));
      if (m) return m[0];
      if (performance.now() > end) assert.fail(`${re} not seen within ${ms} ms; console:\n${out.slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  /** Types `cmd`; returns the line its `echo` printed (the marker is computed so the echo of the typing does not match). */
  const run = async (cmd: string, tag: string): Promise<string> => {
    const from = out.length;
    machine.sendInput(Buffer.from(`${cmd}; echo ${tag}-$((40+2))\n`));
    const line = await waitFor(new RegExp(`([^\\n]*)\\r?\\n[^\\n]*${tag}-42`), from, 60_000);
    return line;
  };
  await waitFor(/VESSEL-INIT-OK/, 0);
  await waitFor(/~ # /, 0);
  assert.equal(machine.allottedHarts, 1);
  assert.match(await run('cat /sys/devices/system/cpu/online', 'ON1'), /^0\r?$/m, 'only hart 0 came up at boot');
  assert.equal(machine.startedHarts, 1);
  // Raised: the guest's online request now succeeds.
  machine.setAllottedHarts(2);
  assert.match(await run('echo 1 > /sys/devices/system/cpu/cpu1/online; cat /sys/devices/system/cpu/online', 'ON2'), /^0-1\r?$/m);
  assert.equal(machine.startedHarts, 2);
  assert.match(await run('nproc', 'NP2'), /^2\r?$/m);
  // Console input and output with two hart threads: each interrupt is claimed once, plus the
  // handler's last claim that reads 0. A hart thread that saw the claim's lowered wire only at
  // its next run slice took the same interrupt again and again, claiming nothing 15-20 times.
  const claims0 = { ...machine.plic.claims };
  for (let i = 0; i < 5; i++) await run(`echo claims-${i}`, `CL${i}`);
  const served = machine.plic.claims.served - claims0.served, empty = machine.plic.claims.empty - claims0.empty;
  t.diagnostic(`PLIC claims while typing: ${served} served, ${empty} empty`);
  assert.ok(served > 0, 'the console took interrupts');
  assert.ok(empty <= 2 * served + 5, `${empty} empty claims for ${served} served: harts took interrupts whose wire was already lowered`);
  // Pause parks both hart threads; a resume must wake them, and the guest goes on.
  machine.pause();
  const instret = [machine.hartInstret(0), machine.hartInstret(1)];
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual([machine.hartInstret(0), machine.hartInstret(1)], instret, 'a hart ran while paused');
  machine.resume();
  assert.match(await run('nproc', 'RESUMED'), /^2\r?$/m, 'the guest did not go on after a resume');
  // Offline: the hart stops itself through SBI HSM; with the allotment lowered it cannot come back.
  assert.match(await run('echo 0 > /sys/devices/system/cpu/cpu1/online; cat /sys/devices/system/cpu/online', 'OFF'), /^0\r?$/m);
  const end = performance.now() + 10_000;
  while (machine.startedHarts !== 1 && performance.now() < end) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(machine.startedHarts, 1, 'hart 1 stopped');
  machine.setAllottedHarts(1);
  assert.match(await run('echo 1 > /sys/devices/system/cpu/cpu1/online 2>&1; cat /sys/devices/system/cpu/online', 'ON3'), /^0\r?$/m, 'beyond the allotment again: refused');
  machine.stop({ kind: 'poweroff', code: 0 });
  await running;
  // The VM compiles its code once: hart 1's thread installed modules compiled for hart 0's.
  const [, second] = machine.jitStats();
  assert.ok(second && second.adoptedModules > 0, `hart 1's thread adopted no module of hart 0's: ${JSON.stringify(machine.jitStats())}`);
});

test('hart threads are named vessel-hartN (top -H, ps -L) and run at the default priority, above V8\'s helpers', async () => {
  const elf = buildIsaProgram('smp-atomics', dir);
  const machine = new Machine({ cpus: 4, memoryBytes: 32 << 20, boot: { kind: 'elf', image: readFileSync(elf), name: elf }, onConsoleOutput: () => {}, threads: 'per-hart' });
  const running = machine.run();
  const threads = (): Map<string, number> => {
    const found = new Map<string, number>();
    for (const task of readdirSync('/proc/self/task')) {
      try {
        const stat = readFileSync(`/proc/self/task/${task}/stat`, 'latin1');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        found.set(name, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19 - 3]));
      } catch { /* the thread ended */ }
    }
    return found;
  };
  let seen = threads();
  const end = performance.now() + 10_000;
  while (![0, 1, 2, 3].every((i) => seen.has(`vessel-hart${i}`)) && performance.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    seen = threads();
  }
  const result = await running;
  assert.deepEqual(result, { kind: 'poweroff', code: 0 });
  for (let i = 0; i < 4; i++) assert.equal(seen.get(`vessel-hart${i}`), 0, `vessel-hart${i} at nice 0: ${JSON.stringify([...seen])}`);
});

test('a snapshot restored with a thread per hart drives the harts\' interrupt wires as the PLIC had them', async () => {
  const elf = buildIsaProgram('smp-atomics', dir);
  const options = { cpus: 2, memoryBytes: 32 << 20, onConsoleOutput: () => {}, threads: 'per-hart' as const };
  const source = new Machine({ ...options, boot: { kind: 'elf', image: readFileSync(elf), name: elf } });
  source.pause();
  const state = source.saveState();
  source.close();
  // The PLIC drove hart 0's supervisor external interrupt (context 1) high, and drives a wire only
  // when it changes: nothing would raise it again. Hart 1's saved mip still shows the wire high,
  // as a hart thread's view lags the PLIC: kept high, the wire would never be lowered and the hart
  // would take the interrupt for ever. Both harts are stopped, so their threads only look at wires.
  state.plic.output[1] = 1;
  state.harts[1].csrs.mipHw |= 1 << Irq.SEI;
  state.hartStates = [SbiHartState.Stopped, SbiHartState.Stopped];
  const restored = new Machine({ ...options, boot: { kind: 'snapshot' } });
  restored.restoreState(state);
  const running = restored.run();
  // Each thread looks at its wires once it runs (its worker may take a while to start on a busy
  // host): look at what the harts hold until both have, or 20 s passed.
  const sei = (state: typeof after): number[] => state.harts.map((h) => h.csrs.mipHw & (1 << Irq.SEI));
  let after = state;
  for (const end = performance.now() + 20_000; performance.now() < end;) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    restored.pause();
    after = restored.saveState();
    restored.resume();
    const [first, second] = sei(after);
    if (first !== 0 && second === 0) break;
  }
  restored.stop({ kind: 'poweroff', code: 0 });
  await running;
  restored.close();
  assert.notEqual(sei(after)[0], 0, 'hart 0\'s thread lost the external interrupt the PLIC had pending');
  assert.equal(sei(after)[1], 0, 'hart 1\'s thread kept a wire the PLIC had lowered');
});
