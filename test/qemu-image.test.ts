// Peer sanity check: the default guest image boots in QEMU's software RISC-V CPU, prints the
// /init marker, loads its modules, gives a working shell, and `poweroff` ends the VM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';

import { ensureDefaultImage, BOOT_MARKER } from '../images/build-image.js';

const QEMU = 'qemu-system-riscv64';
const TOTAL_TIMEOUT_MS = 120_000;

function haveQemu(): boolean {
  return spawnSync(QEMU, ['--version'], { stdio: 'ignore' }).status === 0;
}

interface BootResult {
  output: string;
  markerSeconds: number;
  exitSeconds: number;
  exitCode: number | null;
}

/** Boots the image, then types each command after a shell prompt; the last one should end QEMU. */
async function bootAndRun(smp: number, commands: string[]): Promise<BootResult> {
  const img = await ensureDefaultImage({ quiet: true });
  const start = performance.now();
  const child = spawn(
    QEMU,
    ['-M', 'virt', '-m', '256', '-smp', String(smp), '-nographic', '-kernel', img.kernel, '-initrd', img.initrd, '-append', 'console=ttyS0'],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let output = '';
  let markerSeconds = NaN;
  let scanFrom = 0; // where to look for the next prompt
  let next = 0; // next command to type
  const prompt = /~ # /g;

  const onData = (chunk: Buffer) => {
    output += chunk.toString('latin1');
    if (Number.isNaN(markerSeconds)) {
      const at = output.indexOf(BOOT_MARKER);
      if (at < 0) return;
      markerSeconds = (performance.now() - start) / 1000;
      scanFrom = at + BOOT_MARKER.length;
    }
    if (next >= commands.length) return;
    prompt.lastIndex = scanFrom;
    const m = prompt.exec(output);
    if (m) {
      scanFrom = m.index + m[0].length;
      child.stdin.write(commands[next++] + '\n');
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);

  return await new Promise<BootResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `qemu -smp ${smp} did not exit within ${TOTAL_TIMEOUT_MS / 1000} s (marker ${
            Number.isNaN(markerSeconds) ? 'never seen' : `at ${markerSeconds.toFixed(2)} s`
          }, ${next}/${commands.length} commands typed). Last output:\n${output.slice(-2000)}`,
        ),
      );
    }, TOTAL_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ output, markerSeconds, exitSeconds: (performance.now() - start) / 1000, exitCode: code });
    });
  });
}

for (const smp of [1, 2]) {
  test(`default image boots in QEMU (-smp ${smp}): marker, modules, shell, poweroff`, { timeout: TOTAL_TIMEOUT_MS + 30_000 }, async (t) => {
    if (!haveQemu()) {
      if (process.env['CI']) assert.fail(`${QEMU} is not installed (test/setup.sh installs qemu-system-misc)`);
      t.skip(`${QEMU} not installed (apt-get install qemu-system-misc)`);
      return;
    }
    const r = await bootAndRun(smp, ['uname -a', 'ls /', 'cat /proc/modules', 'poweroff']);
    t.diagnostic(`-smp ${smp}: ${BOOT_MARKER} after ${r.markerSeconds.toFixed(2)} s, qemu exited after ${r.exitSeconds.toFixed(2)} s`);

    assert.ok(r.output.includes(BOOT_MARKER), `marker ${BOOT_MARKER} printed`);
    assert.equal(r.exitCode, 0, 'qemu exited cleanly');
    assert.doesNotMatch(r.output, /vessel-init: module .* failed/, 'all modules loaded');
    assert.doesNotMatch(r.output, /Kernel panic|Oops|BUG:/);

    const afterMarker = r.output.slice(r.output.indexOf(BOOT_MARKER));
    assert.match(afterMarker, /Linux vessel \S+ .*riscv64/, '`uname -a` ran in the shell');
    assert.match(afterMarker, /\binit\b[\s\S]*\bproc\b/, '`ls /` listed the root directory');
    for (const mod of ['virtio_mmio', 'virtio_blk', 'virtio_net', 'virtio_balloon', 'virtio_rng', 'ext4']) {
      assert.match(afterMarker, new RegExp(`^${mod} \\d+ `, 'm'), `${mod} is loaded`);
    }
    assert.match(afterMarker, /reboot: Power down/, 'poweroff went through the kernel');
  });
}
