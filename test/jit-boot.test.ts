/**
 * The JIT end to end: the default guest image boots with the JIT off (`--no-jit`) and on (the
 * default), and the same guest commands print the same results in both: hashes computed by
 * compiled busybox code (sha256sum, md5sum over generated data), arithmetic in an ash loop,
 * module loading (the initramfs loads its modules, code written by the kernel at run time),
 * and a program started many times (exec: code pages reused, which invalidates translations).
 * Every other boot test runs with the JIT on as well.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import { BOOT_MARKER, ensureDefaultImage } from '../images/build-image.js';
import { BOOT_MS, COMMAND_MS, initramfsOnly, POWEROFF_MS, ShellSession, TEST_MS, VesselProcess } from './vessel-cli.js';

const running: VesselProcess[] = [];
after(() => { for (const vm of running) vm.kill(); });

const COMMANDS = [
  'dd if=/dev/zero bs=64K count=32 2>/dev/null | sha256sum',
  'i=0; s=0; while [ $i -lt 3000 ]; do s=$(( (s * 31 + i) % 1000003 )); i=$((i+1)); done; echo sum=$s',
  'seq 1 20000 | md5sum',
  'for n in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do echo $n | sha1sum; done | md5sum',
  'cat /proc/modules | wc -l',
  'echo $(( 0x7fffffffffffffff / 7 )) $(( -9223372036854775807 % 1000 ))',
];

async function runAll(args: string[]): Promise<string[]> {
  const vm = VesselProcess.cli(['run', ...initramfsOnly(), ...args]);
  running.push(vm);
  const shell = new ShellSession(vm, BOOT_MARKER);
  await shell.waitForShell(BOOT_MS);
  const out: string[] = [];
  for (const c of COMMANDS) out.push((await shell.run(c, COMMAND_MS)).trim());
  shell.sendLast('poweroff');
  const exit = await vm.waitExit(POWEROFF_MS);
  assert.equal(exit.code, 0, `poweroff exits 0\n${vm.describe()}`);
  return out;
}

test('the same guest commands print the same results with the JIT off and on', { timeout: 2 * TEST_MS }, async () => {
  await ensureDefaultImage({ quiet: true });
  const interpreted = await runAll(['--no-jit']);
  const compiled = await runAll([]);
  // The first result is known on the host too.
  const zeros = createHash('sha256').update(Buffer.alloc(64 * 1024 * 32)).digest('hex');
  assert.match(interpreted[0], new RegExp(`^${zeros}`), `sha256sum in the guest (JIT off): ${interpreted[0]}`);
  assert.ok(Number(interpreted[4]) > 0, `modules are loaded: ${interpreted[4]}`);
  COMMANDS.forEach((c, i) => assert.equal(compiled[i], interpreted[i], `\`${c}\` prints the same with the JIT on`));
});
