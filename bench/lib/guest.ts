// A guest on a serial console, driven like `expect`: a child process (Vessel's CLI or QEMU) or,
// for instruction counts, Vessel's Machine inside the benchmark process.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

import { Machine, type StopReason } from '../../src/machine/machine.js';

export class GuestError extends Error {}

/** How a Guest talks to its engine: a child process, or (for --ips) a Machine in this process. */
export interface Port {
  write(data: string): void;
  /** Ends the engine; resolves when it is gone. */
  kill(): Promise<void>;
  /** CPU seconds the engine has used so far (user + system), if known. */
  cpuSeconds(): number | undefined;
  /** Instructions the guest has retired so far (in-process Vessel only). */
  instructions(): number | undefined;
}

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

let clockTicks: number | undefined;
/** utime + stime of a live process from /proc/<pid>/stat, in seconds (all its threads). */
function procCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    clockTicks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    return (Number(f[11]) + Number(f[12])) / clockTicks;
  } catch {
    return undefined;
  }
}

/**
 * One booted engine. All console output (stdout and stderr) is kept as latin1 text; `waitFor`
 * finds a pattern at or after an offset and reports the host time it arrived.
 */
export class Guest {
  readonly start = performance.now();
  output = '';
  exited: Exit | null = null;
  private readonly waiters = new Set<() => void>();
  readonly exitPromise: Promise<void>;
  private readonly port: Port;

  constructor(readonly label: string, open: (onData: (chunk: Uint8Array) => void, onExit: (e: Exit) => void) => Port, verbose: boolean) {
    let resolveExit!: () => void;
    this.exitPromise = new Promise((resolve) => { resolveExit = resolve; });
    this.port = open((chunk) => {
      if (verbose) process.stderr.write(chunk);
      this.output += Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('latin1');
      for (const w of [...this.waiters]) w();
    }, (e) => {
      if (this.exited) return;
      this.exited = e;
      for (const w of [...this.waiters]) w();
      resolveExit();
    });
  }

  /** An engine in a child process. */
  static spawn(label: string, command: string, args: string[], verbose: boolean): Guest {
    return new Guest(label, (onData, onExit) => {
      const child: ChildProcess = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.stdin!.on('error', () => { /* the engine went away; reported through its exit */ });
      child.on('error', (e) => { onData(Buffer.from(`\n[spawn error: ${e.message}]\n`)); onExit({ code: null, signal: null }); });
      child.on('close', (code, signal) => onExit({ code, signal }));
      let gone: Promise<void> | null = null;
      return {
        write: (data) => { child.stdin!.write(data); },
        kill: () => gone ??= new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) { resolve(); return; }
          child.once('close', () => resolve());
          child.kill('SIGTERM');
          setTimeout(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); }, 5000).unref();
        }),
        cpuSeconds: () => procCpuSeconds(child.pid),
        instructions: () => undefined,
      };
    }, verbose);
  }

  /** Vessel's Machine in this process: the only way to read its instruction count. */
  static inProcess(label: string, kernel: string, initrd: string, cpus: number, memoryMiB: number, cmdline: string, verbose: boolean): Guest {
    return new Guest(label, (onData, onExit) => {
      const cpu0 = process.cpuUsage();
      const machine = new Machine({
        cpus,
        memoryBytes: memoryMiB << 20,
        boot: { kind: 'linux', kernel: readFileSync(kernel), kernelName: kernel, initrd: readFileSync(initrd), cmdline },
        onConsoleOutput: onData,
      });
      const done = machine.run().then(
        (r: StopReason) => onExit({ code: r.kind === 'poweroff' ? r.code : 1, signal: null }),
        (e: unknown) => { onData(Buffer.from(`\n[machine error: ${e instanceof Error ? e.message : String(e)}]\n`)); onExit({ code: null, signal: null }); },
      );
      return {
        write: (data) => machine.sendInput(Buffer.from(data, 'latin1')),
        kill: async () => { machine.stop({ kind: 'poweroff', code: 0 }); await done; },
        cpuSeconds: () => { const u = process.cpuUsage(cpu0); return (u.user + u.system) / 1e6; },
        instructions: () => machine.instructionsRetired,
      };
    }, verbose);
  }

  /** Seconds since spawn. */
  elapsed(): number {
    return (performance.now() - this.start) / 1000;
  }

  type(line: string): void {
    this.port.write(line + '\n');
  }

  cpuSeconds(): number | undefined { return this.port.cpuSeconds(); }
  instructions(): number | undefined { return this.port.instructions(); }

  /** Resolves with the match and the host time (s since spawn) when `re` matches at or after `from`. */
  waitFor(re: RegExp, from: number, timeoutS: number, what: string): Promise<{ match: RegExpExecArray; at: number }> {
    const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g');
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = (): void => {
        g.lastIndex = from;
        const m = g.exec(this.output);
        if (m) { finish(); resolve({ match: m, at: this.elapsed() }); return; }
        if (this.exited) {
          finish();
          reject(new GuestError(`${this.label} exited (${this.exited.signal ?? `code ${this.exited.code}`}) while waiting for ${what}`));
        }
      };
      const finish = (): void => { this.waiters.delete(check); clearTimeout(timer); };
      timer = setTimeout(() => {
        finish();
        reject(new GuestError(`${this.label}: no ${what} within ${timeoutS} s`));
      }, timeoutS * 1000);
      this.waiters.add(check);
      check();
    });
  }

  tail(lines = 20): string {
    return this.output.replace(/\r/g, '').split('\n').slice(-lines).join('\n');
  }

  async kill(): Promise<void> {
    if (this.exited) return;
    await this.port.kill();
    await this.exitPromise;
  }
}

export const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Shell helper typed into the guest once: `t` sets T to the guest's monotonic clock in ns
 * without forking. It reads "now at <ns> nsecs" from /proc/timer_list when the kernel has it,
 * else /proc/uptime (10 ms resolution). The sourced clock is reported as BENCH_CLOCK.
 */
export const CLOCK_SETUP = [
  't(){ if [ -r /proc/timer_list ]; then while read -r a b c d; do if [ "$a" = now ]; then T=$c; return; fi; done </proc/timer_list; fi; read u r </proc/uptime; T=$(( (${u%.*}*100 + 1${u#*.} - 100) * 10000000 )); }',
  'if [ -r /proc/timer_list ]; then echo BENCH_CLOCK=timer_list; else echo BENCH_CLOCK=uptime; fi',
];

/** The shell prompt of the default image's root shell. */
export const SHELL_PROMPT = '~ # ';

/**
 * A booted guest's shell: types lines, waits for the prompt after each, and picks result lines
 * out of the console. `from` is the console offset after the last prompt seen.
 */
export class GuestShell {
  private constructor(readonly guest: Guest, private from: number, private readonly timeoutS: number) {}

  /** Waits for `marker`, then the first prompt after it, and sets up the `t` clock helper. */
  static async boot(guest: Guest, marker: string, timeoutS: number): Promise<{ shell: GuestShell; bootS: number }> {
    const m = await guest.waitFor(new RegExp(escapeRe(marker)), 0, timeoutS, marker);
    const shell = new GuestShell(guest, m.match.index, timeoutS);
    await shell.prompt();
    for (const line of CLOCK_SETUP) await shell.run(line);
    return { shell, bootS: m.at };
  }

  private async prompt(): Promise<void> {
    const p = await this.guest.waitFor(new RegExp(escapeRe(SHELL_PROMPT)), this.from, this.timeoutS, 'shell prompt');
    this.from = p.match.index + p.match[0].length;
  }

  /** Types `line` and waits for the next prompt; returns what the command printed. */
  async run(line: string): Promise<string> {
    const start = this.from;
    this.guest.type(line);
    await this.prompt();
    return this.guest.output.slice(start, this.from);
  }

  /**
   * Types `line`, waits for a whole line matching `re` (which must not match the echoed
   * command: use `$((...))` or similar in it), then the prompt.
   */
  async result(line: string, re: RegExp, what: string): Promise<RegExpExecArray> {
    const start = this.from;
    this.guest.type(line);
    const m = await this.guest.waitFor(re, start, this.timeoutS, what);
    this.from = m.match.index;
    await this.prompt();
    return m.match;
  }

  /** `poweroff`, then waits for the engine to exit (killing it after two minutes). */
  async powerOff(): Promise<void> {
    this.guest.type('poweroff');
    const timer = setTimeout(() => void this.guest.kill(), 120_000);
    await this.guest.exitPromise;
    clearTimeout(timer);
  }
}

/** Runs `body` on a guest; on failure kills it and adds its last console lines to a GuestError. */
export async function withGuest<T>(guest: Guest, body: (guest: Guest) => Promise<T>): Promise<T> {
  try {
    return await body(guest);
  } catch (e) {
    await guest.kill();
    if (e instanceof GuestError) throw new GuestError(`${e.message}\nlast console lines:\n${guest.tail()}`);
    throw e;
  }
}
