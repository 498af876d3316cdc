/**
 * A Debian `socat` relay in a child process, for what Node cannot open itself: a TAP device
 * (src/net/tap.ts) and a pseudo-terminal (src/vmm/serial-pty.ts). It runs under
 * `setpriv --pdeathsig SIGTERM`, so it ends with Vessel even when Vessel is killed.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';

/** socat prints this notice (with -d -d) once both of its addresses are set up. */
const RELAY_READY = 'starting data transfer loop';
export const RELAY_START_TIMEOUT_MS = 10_000;

/** The caller's errors for each way the start can fail. */
export interface RelayErrors {
  /** The spawn failed; ENOENT means setpriv is missing. */
  cannotSpawn(e: NodeJS.ErrnoException): Error;
  /** setpriv ran but found no socat (exit 127). */
  noSocat(): Error;
  /** socat ended before relaying; `stderr` is everything it printed. */
  ended(stderr: string): Error;
  /** socat did not relay within RELAY_START_TIMEOUT_MS. */
  timedOut(stderr: string): Error;
}

/** socat's error line (`... E <call>: <strerror>`) without its prefix, or all of `stderr`. */
export function socatErrorLine(stderr: string): string {
  return stderr.split('\n').find((l) => / E /.test(l))?.replace(/^.* E /, '') ?? stderr.trim();
}

/**
 * Starts `socat -d -d <socatArgs>`; resolves once it relays, with what it printed so far
 * (notices such as the pty's path). On failure the child is killed and the caller's error given.
 */
export function startSocatRelay(socatArgs: string[], stdio: StdioOptions, errors: RelayErrors): Promise<{ relay: ChildProcess; stderr: string }> {
  return new Promise((resolve, reject) => {
    const relay = spawn('setpriv', ['--pdeathsig', 'SIGTERM', '--', 'socat', '-d', '-d', ...socatArgs], { stdio });
    let stderr = '';
    let settled = false;
    const settle = (error: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        relay.kill('SIGKILL');
        reject(error);
      } else {
        resolve({ relay, stderr });
      }
    };
    const timer = setTimeout(() => settle(errors.timedOut(stderr)), RELAY_START_TIMEOUT_MS);
    relay.stderr?.setEncoding('utf8');
    relay.stderr?.on('data', (chunk: string) => {
      if (settled) return; // the listener stays, so socat's notices keep draining
      stderr += chunk;
      if (stderr.includes(RELAY_READY)) settle(null);
    });
    relay.on('error', (e: NodeJS.ErrnoException) => settle(errors.cannotSpawn(e)));
    relay.on('exit', (code) => settle(code === 127 ? errors.noSocat() : errors.ended(stderr)));
  });
}
