/**
 * How a VM's process asks the host for speed: guest RAM advised for transparent huge pages
 * (src/hw/huge-pages.ts) and V8's background threads below the harts' thread and the
 * compile worker (src/hw/host-threads.ts). Both are Linux facts read back from /proc.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HELPER_NICE } from '../src/hw/host-threads.js';
import { Machine } from '../src/machine/machine.js';
import { GuestMemory } from '../src/hw/memory.js';
import { buildIsaProgram } from './isa-programs.js';

const tmp = mkdtempSync(join(tmpdir(), 'vessel-host-tuning-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The VmFlags of every mapping of this process whose size is `bytes`. */
function flagsOfMappingsSized(bytes: number): string[][] {
  const found: string[][] = [];
  let size = -1;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const sizeField = /^Size:\s+(\d+) kB$/.exec(line);
    if (sizeField) size = Number(sizeField[1]) * 1024;
    else if (line.startsWith('VmFlags:') && size === bytes) found.push(line.slice('VmFlags:'.length).trim().split(/\s+/));
  }
  return found;
}

/** Nice value of each thread of this process, by thread id. */
function threadNices(): Map<number, number> {
  const nices = new Map<number, number>();
  for (const task of readdirSync('/proc/self/task')) {
    try {
      // Fields after the parenthesized command name: state is field 3, nice field 19.
      const stat = readFileSync(`/proc/self/task/${task}/stat`, 'utf8');
      nices.set(Number(task), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19 - 3]));
    } catch {
      // the thread ended while being listed
    }
  }
  return nices;
}

test('host-tuning: guest RAM is advised for transparent huge pages (a mapping of its size carries VmFlags hg)', () => {
  const memory = new GuestMemory(0x8000_0000, 64 << 20);
  assert.ok(memory.hugePages, 'the madvise(MADV_HUGEPAGE) call did not happen: the optional dependency @riaskov/mmap-io did not load (run `npm ci`; it builds with node-gyp)');
  const mappings = flagsOfMappingsSized(memory.buffer.byteLength);
  assert.ok(mappings.length > 0, `no mapping of ${memory.buffer.byteLength} bytes in /proc/self/smaps`);
  assert.ok(mappings.some((flags) => flags.includes('hg')), `the guest memory's mapping is not marked for huge pages: VmFlags ${JSON.stringify(mappings)}`);
});

test('host-tuning: with a JIT, the threads the process had before run at nice 19; the harts\' thread and the compile worker keep the default', async () => {
  const image = readFileSync(buildIsaProgram('rv64i', tmp));
  const self = Number(readlinkSync('/proc/thread-self').split('/').pop());
  const before = threadNices();
  assert.ok([...before.values()].every((nice) => nice === 0), `the test must start at the default priority: ${JSON.stringify([...before])}`);
  const machine = new Machine({
    cpus: 1, memoryBytes: 16 << 20, boot: { kind: 'elf', image, name: 'rv64i' }, onConsoleOutput: () => {},
    jit: { threshold: 16, batch: 1, background: true },
  });
  try {
    await machine.run();
    assert.deepEqual(machine.stopped, { kind: 'poweroff', code: 0 });
    const after = threadNices();
    assert.equal(after.get(self), 0, 'the harts\' thread was lowered');
    const earlier = [...after].filter(([tid]) => tid !== self && before.has(tid));
    assert.ok(earlier.length > 0, 'the process had no other thread (V8 starts background threads)');
    assert.deepEqual(earlier.filter(([, nice]) => nice !== HELPER_NICE), [], `earlier threads [tid, nice] not at nice ${HELPER_NICE}`);
    const started = [...after].filter(([tid]) => !before.has(tid));
    assert.ok(started.length > 0, 'no thread started with the machine (the compile worker)');
    assert.deepEqual(started.filter(([, nice]) => nice !== 0), [], 'a thread started with the machine (the compile worker) was lowered');
  } finally {
    machine.close();
  }
});
