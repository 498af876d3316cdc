/**
 * Where a VMM's serial console (the UART, the guest's ttyS0) goes: the VMM process's own
 * stdin/stdout (the default, as in Firecracker), a file (output only), a Unix domain socket
 * server that `vessel console PATH` attaches to (one client at a time, 64 KiB of output kept
 * while none is connected), or a new pseudo-terminal (serial-pty.ts), optionally with a
 * symbolic link to it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HvcSocketError, HvcSocketServer } from './hvc-socket.js';
import { attachConsole } from './terminal.js';
import { checkPtyConsole, PtyConsole, PtyConsoleError } from './serial-pty.js';

export type SerialSpec =
  | { kind: 'stdio' }
  | { kind: 'file'; path: string }
  | { kind: 'unix'; path: string }
  | { kind: 'pty'; link?: string };

/** A serial console setting that cannot be used; the message says why. */
export class SerialSpecError extends Error {
  override name = 'SerialSpecError';
}

/** Parses `stdio`, `file:PATH`, `unix:PATH`, `pty` or `pty:LINK` (the --console flag and the vessel_console field). */
export function parseSerialSpec(text: string): SerialSpec {
  if (text === 'stdio') return { kind: 'stdio' };
  if (text === 'pty') return { kind: 'pty' };
  const m = /^(file|unix|pty):(.+)$/.exec(text);
  if (!m) throw new SerialSpecError(`console "${text}" is not one of stdio, file:PATH, unix:PATH, pty, pty:LINK`);
  if (m[1] === 'pty') return { kind: 'pty', link: m[2] };
  return { kind: m[1] as 'file' | 'unix', path: m[2] };
}

export function formatSerialSpec(spec: SerialSpec): string {
  switch (spec.kind) {
    case 'stdio': return 'stdio';
    case 'pty': return spec.link === undefined ? 'pty' : `pty:${spec.link}`;
    default: return `${spec.kind}:${spec.path}`;
  }
}

/**
 * Checks what can be checked before the VM starts: a file console's file can be opened for
 * appending (it is created), a socket console's directory exists and its path is not a file
 * other than a socket, a pty console's programs are installed and its link can be made.
 */
export function checkSerialSpec(spec: SerialSpec): void {
  if (spec.kind === 'pty') {
    try {
      checkPtyConsole(spec.link);
    } catch (e) {
      if (e instanceof PtyConsoleError) throw new SerialSpecError(e.message);
      throw e;
    }
  }
  if (spec.kind === 'file') {
    try {
      fs.closeSync(fs.openSync(spec.path, 'a'));
    } catch (e) {
      throw new SerialSpecError(`serial output file "${spec.path}" cannot be opened: ${(e as Error).message}`);
    }
  } else if (spec.kind === 'unix') {
    const dir = path.dirname(spec.path);
    if (!fs.existsSync(dir)) throw new SerialSpecError(`console socket "${spec.path}": directory "${dir}" does not exist`);
    let st: fs.Stats | undefined;
    try { st = fs.lstatSync(spec.path); } catch { /* absent: fine */ }
    if (st && !st.isSocket()) throw new SerialSpecError(`console socket "${spec.path}" exists and is not a socket`);
  }
}

export interface SerialHandlers {
  /** Bytes typed into the console, for the guest. */
  onInput: (bytes: Uint8Array) => void;
  /** Ctrl-A x on a terminal. */
  onQuit: () => void;
  /** The output can no longer be written (e.g. stdout is a closed pipe). */
  onOutputClosed: (why: string) => void;
}

export interface SerialConsole {
  write(data: Uint8Array): void;
  close(): void;
}

export async function openSerial(spec: SerialSpec, h: SerialHandlers): Promise<SerialConsole> {
  switch (spec.kind) {
    case 'stdio': {
      let closed = false;
      const onError = (e: NodeJS.ErrnoException): void => {
        if (closed) return;
        closed = true;
        h.onOutputClosed(`console output closed (${e.code ?? e.message})`);
      };
      process.stdout.on('error', onError);
      const input = attachConsole(h.onInput, h.onQuit);
      return {
        write: (data) => { if (!closed) process.stdout.write(data); },
        close: () => { input.detach(); process.stdout.off('error', onError); },
      };
    }
    case 'file': {
      let fd: number;
      try {
        fd = fs.openSync(spec.path, 'a');
      } catch (e) {
        throw new SerialSpecError(`serial output file "${spec.path}" cannot be opened: ${(e as Error).message}`);
      }
      return {
        write: (data) => {
          if (fd < 0) return;
          try {
            fs.writeSync(fd, data);
          } catch (e) {
            fs.closeSync(fd);
            fd = -1;
            h.onOutputClosed(`serial output file "${spec.path}" cannot be written: ${(e as Error).message}`);
          }
        },
        close: () => { if (fd >= 0) fs.closeSync(fd); fd = -1; },
      };
    }
    case 'unix': {
      let server: HvcSocketServer;
      try {
        server = await HvcSocketServer.listen(spec.path, h.onInput, 'console socket');
      } catch (e) {
        if (e instanceof HvcSocketError) throw new SerialSpecError(e.message);
        throw e;
      }
      return { write: (data) => server.write(data), close: () => server.close() };
    }
    case 'pty': {
      let pty: PtyConsole;
      try {
        pty = await PtyConsole.open(spec.link, h.onInput, h.onOutputClosed);
      } catch (e) {
        if (e instanceof PtyConsoleError) throw new SerialSpecError(e.message);
        throw e;
      }
      // Like QEMU's "char device redirected to /dev/pts/N": the user needs to know where to attach.
      process.stderr.write(`vessel vmm: serial console on ${pty.ptyPath}${spec.link !== undefined ? ` (link ${spec.link})` : ''}\n`);
      return { write: (data) => pty.write(data), close: () => pty.close() };
    }
  }
}
