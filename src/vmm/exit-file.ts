/**
 * `vessel vmm --exit-file PATH`: why the VMM process ended, for whoever started it (the host
 * daemon records it). One JSON line `{"exit_code": N, "stop": KIND, "reason": "...", "at": "<ISO time>"}`,
 * KIND saying how it ended: the guest's `poweroff`, `reboot` or `panic`, an `error`, a `signal`,
 * or `exit` (anything else),
 * written to PATH.tmp and renamed over PATH, so a reader sees all of it or nothing. The first
 * reason recorded wins; an exit nobody recorded is written by the process's 'exit' handler.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from './errors.js';

export type ExitKind = 'poweroff' | 'reboot' | 'panic' | 'error' | 'signal' | 'exit';

export class ExitFile {
  private written = false;
  private readonly onExit = (code: number): void => this.record(typeof process.exitCode === 'number' ? process.exitCode : code, 'the VMM process exited');

  /** Checks that PATH's folder exists; throws ConfigError. */
  constructor(readonly path: string) {
    const dir = path.length > 0 ? pathDir(path) : '';
    if (path === '') throw new ConfigError('--exit-file names no file');
    if (!fs.existsSync(dir)) throw new ConfigError(`--exit-file "${path}": directory "${dir}" does not exist`);
    process.on('exit', this.onExit);
  }

  /** Writes the exit record now (once; later calls do nothing). Never throws. */
  record(exitCode: number, reason: string, stop: ExitKind = 'exit'): void {
    if (this.written) return;
    this.written = true;
    process.off('exit', this.onExit);
    const line = JSON.stringify({ exit_code: exitCode, stop, reason, at: new Date().toISOString() }) + '\n';
    const tmp = `${this.path}.tmp`;
    try {
      fs.writeFileSync(tmp, line, { mode: 0o644 });
      fs.renameSync(tmp, this.path);
    } catch (e) {
      process.stderr.write(`vessel vmm: --exit-file "${this.path}" cannot be written: ${(e as Error).message}\n`);
    }
  }
}

function pathDir(p: string): string {
  return path.dirname(path.resolve(p));
}
