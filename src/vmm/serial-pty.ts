/**
 * `--console pty[:LINK]`: the serial console on a new pseudo-terminal, as QEMU's `-serial pty`.
 * A terminal program (screen, minicom, picocom, `socat - /dev/pts/N`) opens the pty's slave side
 * like a serial line; LINK, when given, is a symbolic link to it that is removed on exit.
 *
 * Node cannot open a pty pair: posix_openpt/grantpt/unlockpt are not exposed, and npm's node-pty
 * only spawns a program on the slave side (forkpty) instead of handing out a bare pair; the other
 * pty addons are native builds that need a compiler at install time. So, as for TAP networking
 * (src/net/tap.ts), Debian's `socat` does the part Node cannot: its PTY address creates the pty
 * (raw, no echo) and relays the master side to socat's own stdin/stdout, which are pipes to
 * Vessel. socat keeps the slave side open itself, so a terminal program may come and go without
 * ending the relay. It ends when Vessel closes the pipe, and, because it runs under
 * `setpriv --pdeathsig SIGTERM`, also when Vessel is killed.
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { RELAY_START_TIMEOUT_MS, socatErrorLine, startSocatRelay } from '../net/socat-relay.js';

export class PtyConsoleError extends Error {
  override name = 'PtyConsoleError';
}

/** The programs the relay needs, with the Debian package that has each. */
const RELAY_PROGRAMS = [['setpriv', 'util-linux'], ['socat', 'socat']] as const;
/** socat prints this notice (with -d -d) before it relays: the pty's path. */
const PTY_NOTICE = /\bPTY is (\/\S+)/;
/**
 * Guest output waiting in the pipe to socat beyond this is dropped: socat stops reading while
 * nobody reads the pty and its buffer is full, and the guest must not fill Vessel's memory then.
 */
const MAX_PENDING_OUTPUT = 64 * 1024;

/** Whether an executable `name` is on $PATH. */
function onPath(name: string): boolean {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    if (dir === '') continue;
    try {
      fs.accessSync(path.join(dir, name), fs.constants.X_OK);
      return true;
    } catch { /* not here */ }
  }
  return false;
}

/**
 * Checks what can be checked before the VM starts: LINK (if any) can be made — its directory
 * exists, it is not an existing file other than a symbolic link (an old link is replaced), and it
 * has none of the characters that separate socat's address options — and setpriv and socat are
 * installed.
 */
export function checkPtyConsole(link: string | undefined): void {
  if (link !== undefined) checkPtyLink(link);
  for (const [program, pkg] of RELAY_PROGRAMS) {
    if (!onPath(program)) throw new PtyConsoleError(`a pty console needs ${program}, which is not installed: apt-get install ${pkg}`);
  }
}

function checkPtyLink(link: string): void {
  if (/[,:!"'\\\s]/.test(link)) throw new PtyConsoleError(`pty link "${link}" contains one of , : ! " ' \\ or white space, which socat's address syntax does not allow`);
  const dir = path.dirname(link);
  if (!fs.existsSync(dir)) throw new PtyConsoleError(`pty link "${link}": directory "${dir}" does not exist`);
  let st: fs.Stats | undefined;
  try { st = fs.lstatSync(link); } catch { /* absent: fine */ }
  if (st && !st.isSymbolicLink()) throw new PtyConsoleError(`pty link "${link}" exists and is not a symbolic link`);
}

export class PtyConsole {
  private closed = false;
  private readonly removeLinkOnExit = (): void => this.removeLink();

  private constructor(readonly ptyPath: string, private readonly link: string | undefined, private readonly relay: ChildProcess, onInput: (bytes: Uint8Array) => void, onRelayEnded: (why: string) => void) {
    relay.stdout?.on('data', (chunk: Buffer) => onInput(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)));
    // EPIPE and the like: the relay is gone; its exit is reported below.
    relay.stdin?.on('error', () => {});
    relay.on('exit', (code, signal) => {
      if (!this.closed) onRelayEnded(`the pty console's relay (socat) ended (${signal ?? `exit code ${code}`})`);
    });
    if (link !== undefined) process.on('exit', this.removeLinkOnExit);
  }

  /** Creates the pty (and LINK to it) once the relay runs; `onInput` gets what is typed into it. */
  static async open(link: string | undefined, onInput: (bytes: Uint8Array) => void, onRelayEnded: (why: string) => void): Promise<PtyConsole> {
    checkPtyConsole(link);
    const { relay, ptyPath } = await startRelay(link);
    return new PtyConsole(ptyPath, link, relay, onInput, onRelayEnded);
  }

  /** Guest output, for whoever has the pty open (kept by the pty while nobody does, up to its buffer). */
  write(data: Uint8Array): void {
    const input = this.relay.stdin;
    if (this.closed || !input || !input.writable || input.writableLength > MAX_PENDING_OUTPUT) return;
    input.write(Uint8Array.from(data));
  }

  /** Ends the relay (which closes the pty) and removes the link now rather than when socat gets to it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.relay.stdin?.end();
    this.relay.kill('SIGTERM');
    this.removeLink();
    process.off('exit', this.removeLinkOnExit);
  }

  private removeLink(): void {
    if (this.link === undefined) return;
    try {
      if (fs.readlinkSync(this.link) === this.ptyPath) fs.unlinkSync(this.link);
    } catch { /* already gone */ }
  }
}

/** Spawns socat between a new pty and its stdin/stdout; resolves with the pty's path when it relays. */
async function startRelay(link: string | undefined): Promise<{ relay: ChildProcess; ptyPath: string }> {
  const pty = ['PTY', 'rawer', ...(link !== undefined ? [`link=${link}`] : [])].join(',');
  const { relay, stderr } = await startSocatRelay([pty, 'STDIO'], ['pipe', 'pipe', 'pipe'], {
    cannotSpawn: (e) => new PtyConsoleError(e.code === 'ENOENT'
      ? 'a pty console needs setpriv and socat: apt-get install util-linux socat'
      : `cannot start socat for the pty console: ${e.message}`),
    noSocat: () => new PtyConsoleError('a pty console needs socat: apt-get install socat'),
    ended: (err) => new PtyConsoleError(`socat could not make the pty console: ${socatErrorLine(err)}`),
    timedOut: (err) => new PtyConsoleError(`socat did not start the pty console within ${RELAY_START_TIMEOUT_MS / 1000} s:\n${err.trim()}`),
  });
  const ptyPath = PTY_NOTICE.exec(stderr)?.[1];
  if (ptyPath === undefined) {
    relay.kill('SIGKILL');
    throw new PtyConsoleError(`socat relays but did not say which pty it made:\n${stderr.trim()}`);
  }
  return { relay, ptyPath };
}
