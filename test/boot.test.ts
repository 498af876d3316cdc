// End-to-end boot tests through the real CLI: `node dist/src/cli/main.js run ...` as a child
// process with piped stdio (the console works without a TTY), the default Debian guest image,
// commands typed into the guest's shell once its prompt is up, and the CLI's exit codes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

import { BOOT_MARKER, cpioNewc, ensureDefaultImage } from '../images/build-image.js';
import { BOOT_MS, COMMAND_MS, initramfsOnly, POWEROFF_MS, ShellSession, TEST_MS, VesselProcess } from './vessel-cli.js';

const running: VesselProcess[] = [];
after(() => { for (const vm of running) vm.kill(); });

function start(args: string[]): VesselProcess {
  // The initramfs shell; a test's own --initrd goes with the default kernel.
  const vm = VesselProcess.cli(['run', ...(args.includes('--initrd') ? [] : initramfsOnly()), ...args]);
  running.push(vm);
  return vm;
}

/** Types `poweroff` and checks that vessel exits by itself with code 0. */
async function powerOff(shell: ShellSession): Promise<number> {
  shell.sendLast('poweroff');
  const exit = await shell.vm.waitExit(POWEROFF_MS);
  assert.equal(exit.signal, null, `vessel was not killed by a signal\n${shell.vm.describe()}`);
  assert.equal(exit.code, 0, `poweroff makes vessel exit 0\n${shell.vm.describe()}`);
  assert.match(shell.vm.stdout, /reboot: Power down/, 'the kernel powered down');
  return exit.seconds;
}

async function bootToShell(args: string[]): Promise<ShellSession> {
  const vm = start(args);
  const shell = new ShellSession(vm, BOOT_MARKER);
  await shell.waitForShell(BOOT_MS);
  return shell;
}

function timings(shell: ShellSession, exitSeconds: number): string {
  return `${BOOT_MARKER} at ${shell.markerSeconds.toFixed(1)} s, prompt at ${shell.promptSeconds.toFixed(1)} s, exit at ${exitSeconds.toFixed(1)} s`;
}

test('a guest reboot restarts the VM with the same kernel and initrd', { timeout: 2 * TEST_MS }, async (t) => {
  await ensureDefaultImage({ quiet: true });
  const shell = await bootToShell([]);
  await shell.run('echo before-reboot > /tmp/state', COMMAND_MS);
  shell.sendLast('reboot');
  const restart = await shell.vm.waitFor('reboot: Restarting system', 0, POWEROFF_MS);
  await shell.waitForShell(BOOT_MS, restart.end);
  const linuxBanners = shell.vm.stdout.match(/Linux version /g) ?? [];
  assert.equal(linuxBanners.length, 2, `the kernel booted twice\n${shell.vm.describe()}`);
  // A fresh board: the initramfs is unpacked anew, so the file written before the reboot is gone.
  const state = await shell.run('cat /tmp/state 2>&1; echo rc=$?', COMMAND_MS);
  assert.match(state, /rc=1/, `file from before the reboot is gone: ${state}`);
  const exitSeconds = await powerOff(shell);
  t.diagnostic(`reboot then poweroff: exit at ${exitSeconds.toFixed(1)} s`);
});

for (const cpus of [1, 2, 4]) {
  test(`boots the default image with ${cpus} hart${cpus > 1 ? 's' : ''}: shell commands, poweroff exits 0`, { timeout: TEST_MS }, async (t) => {
    await ensureDefaultImage({ quiet: true });
    const shell = await bootToShell(cpus === 1 ? [] : ['--cpus', String(cpus)]);

    const uname = await shell.run('uname -a', COMMAND_MS);
    assert.match(uname, /^Linux vessel \S+ .*riscv64/m, `uname -a: ${uname}`);

    const cpuinfo = await shell.run('cat /proc/cpuinfo', COMMAND_MS);
    assert.match(cpuinfo, /^hart\s*:\s*0$/m, `cpuinfo has a hart line: ${cpuinfo}`);
    assert.match(cpuinfo, /^isa\s*:\s*rv64imafdc/m, `cpuinfo has an isa line: ${cpuinfo}`);
    const processors = cpuinfo.match(/^processor\s*:\s*\d+$/gm) ?? [];
    assert.equal(processors.length, cpus, `/proc/cpuinfo lists ${cpus} processor(s): ${cpuinfo}`);

    const ls = await shell.run('ls /', COMMAND_MS);
    for (const entry of ['bin', 'dev', 'etc', 'init', 'proc', 'sys']) {
      assert.match(ls, new RegExp(`\\b${entry}\\b`), `ls / lists ${entry}: ${ls}`);
    }

    const arith = await shell.run('echo $((6*7))', COMMAND_MS);
    assert.match(arith, /^42$/m, `echo $((6*7)): ${arith}`);

    if (cpus > 1) {
      const nproc = await shell.run('nproc', COMMAND_MS);
      assert.match(nproc, new RegExp(`^${cpus}$`, 'm'), `nproc: ${nproc}`);
    }

    const exitSeconds = await powerOff(shell);
    assert.doesNotMatch(shell.vm.stdout, /Kernel panic|Oops|BUG:/);
    t.diagnostic(`--cpus ${cpus}: ${timings(shell, exitSeconds)}`);
  });
}

/** A static riscv64 Linux program with no libc: prints a line, then runs `body`, then exits 0. */
function crossCompile(dir: string, name: string, body: string): Buffer {
  const src = path.join(dir, `${name}.S`);
  const out = path.join(dir, name);
  fs.writeFileSync(src, `
    .section .rodata
msg: .ascii "${name}: about to execute an illegal instruction\\n"
len = . - msg
    .text
    .globl _start
_start:
    li a0, 1
    la a1, msg
    li a2, len
    li a7, 64          # write
    ecall
${body}
    li a0, 0
    li a7, 93          # exit
    ecall
`);
  const cc = spawnSync('riscv64-linux-gnu-gcc', ['-static', '-nostdlib', '-march=rv64gc', '-mabi=lp64d', '-o', out, src], { encoding: 'utf8' });
  if (cc.error) {
    assert.fail(`riscv64-linux-gnu-gcc could not be run (${cc.error.message}): run \`bash test/setup.sh\` (installs gcc-riscv64-linux-gnu)`);
  }
  assert.equal(cc.status, 0, `riscv64-linux-gnu-gcc failed: ${cc.stderr}`);
  return fs.readFileSync(out);
}

test('a guest program executing an illegal instruction gets SIGILL, the VM keeps running', { timeout: TEST_MS }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-sigill-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const programs = {
    // All-zero bits: the defined illegal instruction (c.unimp as a 16-bit parcel).
    'sigill-zero': '    .word 0x00000000',
    // A machine-mode CSR read from user mode.
    'sigill-csr': '    csrr a0, mstatus',
  };
  const entries: Parameters<typeof cpioNewc>[0] = [{ kind: 'dir', path: 'opt' }];
  for (const [name, body] of Object.entries(programs)) {
    entries.push({ kind: 'file', path: `opt/${name}`, data: crossCompile(dir, name, body), mode: 0o755 });
  }
  // The kernel unpacks concatenated archives; gzip members may follow each other.
  const base = fs.readFileSync(image.initrd);
  const pad = Buffer.alloc((4 - (base.length % 4)) % 4);
  const initrd = path.join(dir, 'initramfs-sigill.cpio.gz');
  fs.writeFileSync(initrd, Buffer.concat([base, pad, zlib.gzipSync(cpioNewc(entries))]));

  const shell = await bootToShell(['--initrd', initrd]);
  for (const name of Object.keys(programs)) {
    const out = await shell.run(`/opt/${name}; echo status=$?`, COMMAND_MS);
    assert.match(out, new RegExp(`${name}: about to execute`), `the program ran: ${out}`);
    assert.match(out, /^status=132$/m, `${name} died of SIGILL (128+4): ${out}`);
    assert.match(out, /Illegal instruction/, `the shell reports it: ${out}`);
  }
  const after = await shell.run('echo still-alive-$((40+2))', COMMAND_MS);
  assert.match(after, /^still-alive-42$/m, `the shell still works: ${after}`);
  const exitSeconds = await powerOff(shell);
  t.diagnostic(`sigill: ${timings(shell, exitSeconds)}`);
});

test('a guest kernel panic ends vessel with exit code 3', { timeout: TEST_MS }, async (t) => {
  await ensureDefaultImage({ quiet: true });
  const vm = start(['--append', 'console=ttyS0 init=/nonexistent rdinit=/nonexistent']);
  const exit = await vm.waitExit(BOOT_MS);
  assert.equal(exit.code, 3, `exit code 3 (kernel panic)\n${vm.describe()}`);
  assert.match(vm.stderr, /Kernel panic/, 'stderr reports the panic');
  assert.doesNotMatch(vm.stderr, /^\s+at /m, 'no stack trace');
  t.diagnostic(`panic: exit after ${exit.seconds.toFixed(1)} s`);
});

test('--timeout stops a running VM with exit code 124', { timeout: TEST_MS }, async (t) => {
  await ensureDefaultImage({ quiet: true });
  const vm = start(['--timeout', '5']);
  const exit = await vm.waitExit(60_000);
  assert.equal(exit.code, 124, `exit code 124\n${vm.describe()}`);
  assert.match(vm.stderr, /timeout: stopped after 5 s/, 'stderr names the timeout');
  assert.ok(exit.seconds >= 5, `ran at least 5 s (${exit.seconds.toFixed(1)} s)`);
  assert.doesNotMatch(vm.stderr, /^\s+at /m, 'no stack trace');
  t.diagnostic(`timeout: exit after ${exit.seconds.toFixed(1)} s`);
});
