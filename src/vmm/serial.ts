/**
 * Where a VMM's serial console (the UART, the guest's ttyS0) goes: the VMM process's own
 * stdin/stdout (the default, as in Firecracker), a file (output only), or a Unix domain socket
 * server that `vessel console PATH` attaches to (one client at a time, 64 KiB of output kept
 * while none is connected).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HvcSocketError, HvcSocketServer } from '../cli/hvc-socket.js';
import { attachConsole } from '../cli/terminal.js';

export type SerialSpec =
  | { kind: 'stdio' }
  | { kind: 'file'; path: string }
  | { kind: 'unix'; path: string };

/** A serial console setting that cannot be used; the message says why. */
export class SerialSpecError extends Error {
  override name = 'SerialSpecError';
}

/** Parses `stdio`, `file:PATH` or `unix:PATH` (the --console flag and the vessel_console field). */
export function parseSerialSpec(text: string): SerialSpec {
  if (text === 'stdio') return { kind: 'stdio' };
  if (text === 'pty') throw new SerialSpecError('console "pty" is not supported yet: use "unix:PATH" and attach with `vessel console PATH`');
  const m = /^(file|unix):(.+)$/.exec(text);
  if (!m) throw new SerialSpecError(`console "${text}" is not one of stdio, file:PATH, unix:PATH`);
  return { kind: m[1] as 'file' | 'unix', path: m[2] };
}

export function formatSerialSpec(spec: SerialSpec): string {
  return spec.kind === 'stdio' ? 'stdio' : `${spec.kind}:${spec.path}`;
}

/**
 * Checks what can be checked before the VM starts: a file console's file can be opened for
 * appending (it is created), a socket console's directory exists and its path is not a file
 * other than a socket.
 */
export function checkSerialSpec(spec: SerialSpec): void {
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
  }
}
