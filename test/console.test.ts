// The interactive console on a real terminal: `script` (util-linux) runs vessel on a
// pseudo-terminal, so stdin is a TTY and vessel puts it in raw mode. Ctrl-A x must quit
// promptly with exit code 0 and leave the terminal's settings as they were.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import { ensureDefaultImage } from '../images/build-image.js';
import { CLI, initramfsOnly, VesselProcess } from './vessel-cli.js';

const running: VesselProcess[] = [];
after(() => { for (const p of running) p.kill(); });

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

test('Ctrl-A x on a terminal quits within seconds, exit code 0, terminal restored', { timeout: 300_000 }, async (t) => {
  if (spawnSync('script', ['--version'], { stdio: 'ignore' }).status !== 0) {
    assert.fail('`script` (util-linux) is not installed: run `bash test/setup.sh`');
  }
  await ensureDefaultImage({ quiet: true });
  // Inside the pseudo-terminal: save its settings, run vessel, compare the settings afterwards.
  const inner = [
    'before=$(stty -g)',
    [process.execPath, CLI, 'run', ...initramfsOnly()].map(shellQuote).join(' '),
    'rc=$?',
    'after=$(stty -g)',
    'echo',
    'if [ "$before" = "$after" ]; then echo TTY-RESTORED; else echo "TTY-CHANGED: $(stty -a | tr "\\n" " ")"; fi',
    'echo VESSEL-EXIT=$rc',
    'exit $rc',
  ].join('; ');
  const p = new VesselProcess('script', ['-qfec', `sh -c ${shellQuote(inner)}`, '/dev/null']);
  running.push(p);

  // Some console output from the guest means vessel is running and the terminal is raw.
  await p.waitFor(/Linux version|\[\s*\d+\.\d+\]/, 0, 240_000);
  const sentAt = p.elapsed();
  p.send('\x01x');
  const exit = await p.waitExit(10_000);
  const quitSeconds = exit.seconds - sentAt;
  t.diagnostic(`Ctrl-A x: vessel quit ${quitSeconds.toFixed(2)} s after the keys (output began at ${sentAt.toFixed(1)} s)`);

  assert.match(p.stdout, /VESSEL-EXIT=0/, `vessel exited 0\n${p.describe()}`);
  assert.equal(exit.code, 0, `script passes vessel's exit code through\n${p.describe()}`);
  assert.match(p.stdout, /TTY-RESTORED/, `terminal settings restored\n${p.describe()}`);
  assert.ok(quitSeconds < 5, `quit within 5 s (took ${quitSeconds.toFixed(2)} s)`);
  assert.doesNotMatch(p.stderr + p.stdout, /internal error|^\s+at /m);
});

test('a console reader that goes away (EPIPE) stops vessel with a message, not a crash', { timeout: 300_000 }, async (t) => {
  await ensureDefaultImage({ quiet: true });
  const p = VesselProcess.cli(['run', ...initramfsOnly()]);
  running.push(p);
  await p.waitFor(/\[\s*\d+\.\d+\]/, 0, 240_000);
  const closedAt = p.elapsed();
  p.child.stdout.destroy(); // like `vessel run | head -1`
  const exit = await p.waitExit(30_000);
  t.diagnostic(`EPIPE: vessel exited ${(exit.seconds - closedAt).toFixed(2)} s after its reader went away`);
  assert.equal(exit.signal, null);
  assert.equal(exit.code, 4, `exit code 4\n${p.describe()}`);
  assert.match(p.stderr, /console output closed \(EPIPE\)/);
  assert.doesNotMatch(p.stderr, /^\s+at /m, `no stack trace\n${p.describe()}`);
});
