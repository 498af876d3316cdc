/**
 * The JIT's compile worker (src/cpu/jit/background.ts) against a store to code whose batch is
 * still on the worker: the module built from the old bytes must be thrown away, not installed;
 * and a module compiled for one hart thread, offered to another, only while its code is current.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Machine } from '../src/machine/machine.js';
import { GuestMemory } from '../src/hw/memory.js';
import { CodeMap } from '../src/cpu/jit/code-map.js';
import { Jit } from '../src/cpu/jit/jit.js';
import type { SharedModule } from '../src/cpu/jit/background.js';
import { scanBlock } from '../src/cpu/jit/block.js';
import { ModuleTranslator } from '../src/cpu/jit/translate.js';
import { buildIsaProgram } from './isa-programs.js';

const tmp = mkdtempSync(join(tmpdir(), 'vessel-jit-worker-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('jit-worker: a store to code on the compile worker discards the module built from the old bytes', async () => {
  const image = readFileSync(buildIsaProgram('smc-inflight', tmp));
  // Batches of one are sent the moment a block is hot (16 entries); the program patches its
  // loop 4 iterations later, microseconds before any module can be back from the worker.
  const machine = new Machine({
    cpus: 1, memoryBytes: 16 << 20, boot: { kind: 'elf', image, name: 'smc-inflight' }, onConsoleOutput: () => {},
    jit: { threshold: 16, batch: 1, background: true },
  });
  try {
    await machine.run();
    assert.deepEqual(machine.stopped, { kind: 'poweroff', code: 0 }, 'the program saw the old code after patching it');
    const stats = machine.jit!.stats;
    assert.equal(stats.workerErrors, 0);
    assert.ok(stats.discardedModules >= 1, `no module was discarded (stats: ${JSON.stringify(stats)}): the store did not land while a batch was on the worker`);
    assert.ok(stats.blocks > 0, 'nothing was compiled after the patch');
  } finally {
    machine.close();
  }
});

test('jit-worker: a module compiled for another hart thread is adopted only while its pages stayed watched and unwritten', () => {
  const memory = new GuestMemory(0x8000_0000, 1 << 20);
  const pages = memory.size >>> 12;
  // Thread 1's JIT; thread 0 compiles (here: this test, as the compile worker would for it).
  const map = CodeMap.create(pages, 2);
  const jit = new Jit(memory, { threshold: 200, background: false }, { map, thread: 1 });
  // addi a0, a0, 1; addi a0, a0, 1; jalr x0, 0(ra): one block at RAM offset 0x3000, pc 0x80003000.
  const ramOff = 0x3000, page = ramOff >>> 12, pcLo = 0x8000_3000 | 0, pcHi = 0;
  for (const [i, insn] of [0x00150513, 0x00150513, 0x00008067].entries()) memory.view.setUint32(ramOff + 4 * i, insn, true);
  const offer = (): SharedModule => {
    map.own(0, page); // thread 0 owns the page before reading its code
    const versions: [number, number][] = [[page, map.version(page)]];
    const plan = scanBlock(memory.view, ramOff, pcLo, pcHi);
    assert.ok(plan, 'the block scans');
    const translator = new ModuleTranslator(memory.buffer.byteLength >>> 16, [plan], { fetchRamOffset: () => -1, compiled: () => false }, true);
    return { module: new WebAssembly.Module(translator.translate()), blocks: [{ ramOff, pcLo, pcHi }], links: translator.links, versions };
  };
  try {
    // Written by a hart after thread 0 read it: declined, and thread 1 does not keep the page.
    let shared = offer();
    map.written(page, 0);
    jit.adopt(shared);
    assert.equal(jit.stats.declinedModules, 1);
    assert.equal(jit.lookup(ramOff, pcLo, pcHi), -1, 'stale code installed');
    assert.equal(map.owns(1, page), false, 'a declined module left its page watched by thread 1');
    // Let go by its last owner in between (stores were not seen then): declined.
    shared = offer();
    map.disown(0, page);
    jit.adopt(shared);
    assert.equal(jit.stats.declinedModules, 2);
    assert.equal(jit.lookup(ramOff, pcLo, pcHi), -1, 'stale code installed');
    // Watched throughout and unwritten: installed here, and thread 1 now hears of stores to the page.
    shared = offer();
    jit.adopt(shared);
    assert.equal(jit.stats.adoptedModules, 1);
    assert.ok(jit.lookup(ramOff, pcLo, pcHi) >= 0, 'the adopted block is not in thread 1\'s lookup table');
    assert.equal(map.owns(1, page), true);
    // Offered again once compiled here: nothing to do.
    jit.adopt(offer());
    assert.equal(jit.stats.adoptedModules + jit.stats.declinedModules, 3);
  } finally {
    jit.close();
  }
});
