// Fast error paths of `vessel run` (nothing boots): bad files, bad options, too little memory.
// Each must exit non-zero with a one-line message meant for a person, never a stack trace.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { ensureDefaultImage, type ImageInfo } from '../images/build-image.js';
import { CLI, REPO_ROOT } from './vessel-cli.js';

let dir = '';
let image: ImageInfo;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-cli-'));
  image = await ensureDefaultImage({ quiet: true });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Result { code: number | null; stdout: string; stderr: string }

function vessel(...args: string[]): Result {
  // A kernel that did get past validation would start booting: the timeout bounds that mistake.
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000, input: '' });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertNoStackTrace(r: Result): void {
  assert.doesNotMatch(r.stderr, /^\s+at /m, `no stack trace in stderr:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /internal error/, `not reported as an internal error:\n${r.stderr}`);
}

/** A file-level error: exit code 2, a message naming the file, no VM output. */
function assertBadInput(r: Result, message: RegExp): void {
  assert.equal(r.code, 2, `exit code 2 (bad input); stderr:\n${r.stderr}`);
  assert.match(r.stderr, message);
  assert.equal(r.stdout, '', 'no guest started');
  assertNoStackTrace(r);
}

test('a missing kernel file: exit 2, "does not exist"', () => {
  const missing = path.join(dir, 'no-such-Image');
  const r = vessel('run', '--kernel', missing);
  assertBadInput(r, /kernel ".*no-such-Image" does not exist/);
});

test('a missing initrd file: exit 2, "does not exist"', () => {
  const r = vessel('run', '--kernel', image.kernel, '--initrd', path.join(dir, 'no-such-initrd'));
  assertBadInput(r, /initrd ".*no-such-initrd" does not exist/);
});

test('an empty kernel file: exit 2, "is empty"', () => {
  const empty = path.join(dir, 'empty');
  fs.writeFileSync(empty, '');
  assertBadInput(vessel('run', '--kernel', empty), /kernel ".*empty" is empty/);
});

test('a directory as the kernel: exit 2, clear message', () => {
  const r = vessel('run', '--kernel', dir);
  assert.equal(r.code, 2, `exit code 2; stderr:\n${r.stderr}`);
  assert.match(r.stderr, /^vessel: .*(directory|not a file|not a RISC-V)/m);
  assertNoStackTrace(r);
});

test('a truncated kernel (first 1 MiB of the real Image): exit 2, "truncated"', () => {
  const truncated = path.join(dir, 'Image.truncated');
  const fd = fs.openSync(image.kernel, 'r');
  const head = Buffer.alloc(1 << 20);
  fs.readSync(fd, head, 0, head.length, 0);
  fs.closeSync(fd);
  fs.writeFileSync(truncated, head);
  assertBadInput(vessel('run', '--kernel', truncated), /Image\.truncated: truncated/);
});

test('a text file as the kernel: exit 2, "not a RISC-V kernel Image"', () => {
  const text = path.join(dir, 'notes.txt');
  fs.writeFileSync(text, 'This is not a kernel.\n'.repeat(10));
  assertBadInput(vessel('run', '--kernel', text), /notes\.txt: not a RISC-V kernel Image/);
});

test('a tiny file as the kernel: exit 2, "too short"', () => {
  const tiny = path.join(dir, 'tiny');
  fs.writeFileSync(tiny, 'MZ');
  assertBadInput(vessel('run', '--kernel', tiny), /tiny: .*too short/);
});

test('an ELF file (/bin/ls) as the kernel: exit 2, says it is an ELF file', () => {
  assertBadInput(vessel('run', '--kernel', '/bin/ls'), /\/bin\/ls: not a RISC-V kernel Image.*ELF/);
});

test('a gzip-compressed kernel: exit 2, says to decompress it', () => {
  assertBadInput(vessel('run', '--kernel', image.initrd), /not a RISC-V kernel Image.*gzip/);
});

for (const [option, value, message] of [
  ['--memory', '12x', /--memory|memory size/],
  ['--memory', '', /--memory|memory size/],
  ['--cpus', '0', /--cpus must be an integer from 1 to 64/],
  ['--cpus', '1.5', /--cpus must be an integer/],
  ['--cpus', '65', /--cpus must be an integer from 1 to 64/],
  ['--timeout', '-1', /--timeout must be an integer/],
  // Beyond setTimeout's 2^31-1 ms, which would fire at once.
  ['--timeout', '3000000', /--timeout must be an integer from 0 to 2147483/],
] as const) {
  test(`${option} "${value}": commander rejects it, exit 2`, () => {
    const r = vessel('run', '--kernel', image.kernel, option, value);
    assert.equal(r.code, 2, `exit code 2 (bad input); stderr:\n${r.stderr}`);
    assert.match(r.stderr, /error: option/);
    assert.match(r.stderr, message);
    assert.equal(r.stdout, '', 'no guest started');
    assertNoStackTrace(r);
  });
}

test('an unknown option and an unknown command: exit 2 with usage', () => {
  for (const args of [['run', '--bogus'], ['frobnicate']]) {
    const r = vessel(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: exit code 2`);
    assert.match(r.stderr, /Usage: vessel/);
    assert.match(r.stderr, /error: unknown (option|command)/);
    assertNoStackTrace(r);
  }
});

test('--memory 16M with the default kernel: exit 2, memory is too small', () => {
  const r = vessel('run', '--memory', '16M');
  assertBadInput(r, /memory of 16 MiB is too small .*use at least \d+ MiB/);
});

test('--memory below the board minimum: exit 2 with the allowed range', () => {
  const r = vessel('run', '--kernel', image.kernel, '--memory', '8M');
  assert.equal(r.code, 2, `exit code 2; stderr:\n${r.stderr}`);
  assert.match(r.stderr, /memory must be 16 MiB\.\.2 GiB/);
  assertNoStackTrace(r);
});

test('--help lists the run options, exit 0', () => {
  const r = vessel('run', '--help');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /default: "?256M"?/);
  for (const o of ['--kernel', '--initrd', '--append', '--cpus', '--memory', '--timeout']) assert.match(r.stdout, new RegExp(o));
});
