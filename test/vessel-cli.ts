// Helpers for end-to-end tests that drive the real `vessel` CLI as a child process.
// Not a test file itself (the test script runs only `*.test.js`).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { readDefaultImage } from '../images/build-image.js';

/** The repository root (this file runs from dist/test/). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

/** Time limits for end-to-end tests: a boot can take minutes on a loaded 2-core machine. */
export const BOOT_MS = 240_000;
export const COMMAND_MS = 90_000;
export const POWEROFF_MS = 60_000;
export const TEST_MS = 480_000;

/** The busybox shell's prompt in the default image (PS1='\w \$ ', HOME=/root). */
export const PROMPT = '~ # ';

/** A TCP port on 127.0.0.1 that was free a moment ago (for a host forward to listen on). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/**
 * `vessel run` arguments that boot the default image's kernel and initramfs shell without its
 * root disk. Plain `vessel run` boots the cached rootfs.ext4 read-write (and locks it), which
 * tests running in parallel must not do; a test that wants the root disk boots a copy.
 */
export function initramfsOnly(): string[] {
  const image = readDefaultImage();
  if (!image) throw new Error('the default guest image is not built: run `npm run image` (test/setup.sh does)');
  return ['--kernel', image.kernel, '--initrd', image.initrd];
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Seconds since the process was spawned. */
  seconds: number;
}

/** A running `vessel` process: collects stdout and stderr, waits for text, types input. */
export class VesselProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly started = performance.now();
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;
  exit: Exit | null = null;
  private waiters: Array<() => void> = [];

  constructor(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.child = spawn(cmd, args, { cwd: opts.cwd ?? REPO_ROOT, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (c: Buffer) => { this.stdout += c.toString('latin1'); this.notify(); });
    this.child.stderr.on('data', (c: Buffer) => { this.stderr += c.toString('latin1'); this.notify(); });
    this.child.stdin.on('error', () => { /* the VM may exit while we type */ });
    this.exited = new Promise<Exit>((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code, signal) => {
        this.exit = { code, signal, seconds: this.elapsed() };
        this.notify();
        resolve(this.exit);
      });
    });
    this.exited.catch(() => { /* reported by whoever awaits it */ });
  }

  /** Spawns `node dist/src/cli/main.js <args>`. */
  static cli(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): VesselProcess {
    return new VesselProcess(process.execPath, [CLI, ...args], opts);
  }

  elapsed(): number {
    return (performance.now() - this.started) / 1000;
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /**
   * Waits until stdout holds `what` at or after `from`; returns the index just past the match.
   * Fails with the tail of the output if the process exits first or `timeoutMs` passes.
   */
  async waitFor(what: string | RegExp, from: number, timeoutMs: number): Promise<{ end: number; index: number }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = this.find(what, from);
      if (found) return found;
      if (this.exit) throw new Error(`vessel exited (code ${this.exit.code}, signal ${this.exit.signal}) before printing ${String(what)}\n${this.describe()}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no ${String(what)} on the console within ${(timeoutMs / 1000).toFixed(0)} s\n${this.describe()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  private find(what: string | RegExp, from: number): { end: number; index: number } | null {
    if (typeof what === 'string') {
      const i = this.stdout.indexOf(what, from);
      return i < 0 ? null : { index: i, end: i + what.length };
    }
    const re = new RegExp(what.source, what.flags.includes('g') ? what.flags : what.flags + 'g');
    re.lastIndex = from;
    const m = re.exec(this.stdout);
    return m ? { index: m.index, end: m.index + m[0].length } : null;
  }

  send(text: string): void {
    this.child.stdin.write(text);
  }

  /** Waits for the process to exit by itself within `timeoutMs`, else kills it and fails. */
  async waitExit(timeoutMs: number): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`vessel did not exit within ${timeoutMs / 1000} s\n${this.describe()}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the process if it is still running (test cleanup). */
  kill(): void {
    if (!this.exit) this.child.kill('SIGKILL');
  }

  describe(): string {
    return `--- last stdout (${this.elapsed().toFixed(1)} s) ---\n${this.stdout.slice(-2500)}\n--- stderr ---\n${this.stderr.slice(-2500)}`;
  }
}

/**
 * The serial console's shell session: waits for the boot marker and the first prompt,
 * then types one command at a time, each only after the previous prompt came back.
 */
export class ShellSession {
  /** Console offset from which the next prompt is looked for. */
  private pos = 0;
  markerSeconds = NaN;
  promptSeconds = NaN;

  constructor(readonly vm: VesselProcess, readonly marker: string) {}

  /** Waits for the marker (the first one at or after console offset `from`) and the prompt after it. */
  async waitForShell(timeoutMs: number, from = 0): Promise<void> {
    const m = await this.vm.waitFor(this.marker, from, timeoutMs);
    this.markerSeconds = this.vm.elapsed();
    const p = await this.vm.waitFor(PROMPT, m.end, timeoutMs);
    this.promptSeconds = this.vm.elapsed();
    this.pos = p.end;
  }

  /** Types `command` and returns what the console printed up to the next prompt (echo included). */
  async run(command: string, timeoutMs = 60_000): Promise<string> {
    const start = this.pos;
    this.vm.send(command + '\n');
    // Skip the echoed command line itself, then find the prompt after its output.
    const echo = await this.vm.waitFor('\n', start, timeoutMs);
    const p = await this.vm.waitFor(PROMPT, echo.end, timeoutMs);
    this.pos = p.end;
    return this.vm.stdout.slice(echo.end, p.index).replace(/\r/g, '');
  }

  /** Types a command after which no prompt is expected (e.g. poweroff). */
  sendLast(command: string): void {
    this.vm.send(command + '\n');
  }
}
