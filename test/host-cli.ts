// Helpers for the end-to-end tests of `vessel host` and `vessel vm`: a host on a temporary state
// directory that its test removes with every VM process it left, the `vessel vm` verbs run as
// a user runs them, and polling for what a VM does next.
// Not a test file itself (the test script runs only `*.test.js`).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

import { CLI, VesselProcess } from './vessel-cli.js';

const run = promisify(execFile);

export interface CliResult { code: number; stdout: string; stderr: string }

/** A short state directory (`/tmp/<prefix>XXXXXX`): a VM's socket paths must fit a Unix socket address. */
export function shortStateDir(prefix: string): string {
  return fs.mkdtempSync(`/tmp/${prefix}`);
}

/** Kills every VM process of the state directory (they run detached from the host) and removes it. */
export function removeStateDir(dir: string): void {
  for (const id of fs.existsSync(path.join(dir, 'vms')) ? fs.readdirSync(path.join(dir, 'vms')) : []) {
    // A pattern starting with "--" would be read by pkill as an option.
    spawnSync('pkill', ['-9', '-f', `vmm --id ${id}`]);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/** `vessel host --state-dir <dir> ...`, resolved once its API listens. */
export async function startHost(dir: string, extra: string[] = []): Promise<VesselProcess> {
  const host = VesselProcess.cli(['host', '--state-dir', dir, ...extra]);
  await host.waitFor('API on', 0, 30_000);
  return host;
}

/** `vessel vm --host <dir>/host.sock <args>` to completion, with its exit code and output. */
export async function vm(dir: string, args: string[], timeoutMs = 180_000): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, 'vm', '--host', path.join(dir, 'host.sock'), ...args], { timeout: timeoutMs });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/**
 * `vessel <args>` against the host of `dir` (VESSEL_HOST) to completion, as the tenant whose
 * token is `token` (VESSEL_TOKEN), or as the admin without one.
 */
export async function cli(dir: string, args: string[], token?: string): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, VESSEL_HOST: path.join(dir, 'host.sock') };
  delete env['VESSEL_TOKEN'];
  if (token !== undefined) env['VESSEL_TOKEN'] = token;
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** As `vm`, failing the test unless the command exits 0; returns its stdout. */
export async function vmOk(dir: string, args: string[]): Promise<string> {
  const r = await vm(dir, args);
  assert.equal(r.code, 0, `vessel vm ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** Calls `f` until it returns something other than undefined or false; fails after `ms`. */
export async function until<T>(what: string, f: () => Promise<T | undefined | false> | T | undefined | false, ms: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
