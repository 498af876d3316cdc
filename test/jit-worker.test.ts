/**
 * The JIT's compile worker (src/cpu/jit/background.ts) against a store to code whose batch is
 * still on the worker: the module built from the old bytes must be thrown away, not installed.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Machine } from '../src/machine/machine.js';
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
