/**
 * The host side of the serial console: raw keyboard input, QEMU's Ctrl-A escapes
 * (Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A), and a terminal restored on every exit path.
 *
 * A process in the background of its terminal (`vessel vmm --api-sock S &` in an interactive
 * shell) would be stopped by SIGTTIN at its first read and SIGTTOU at its first mode change: it
 * leaves the terminal alone and says once, on stderr, that console input is not read.
 */
import { readFileSync } from 'node:fs';

const CTRL_A = 0x01;

/**
 * False when this process is not in its terminal's foreground process group: fields 5 (pgrp)
 * and 8 (tpgid) of /proc/self/stat differ. True when it cannot tell.
 */
export function inForeground(): boolean {
  let stat: string;
  try {
    stat = readFileSync('/proc/self/stat', 'utf8');
  } catch {
    return true;
  }
  // comm (field 2) may hold spaces and parentheses: the fields after it follow the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const pgrp = Number(rest[2]);
  const tpgid = Number(rest[5]);
  if (!Number.isInteger(pgrp) || !Number.isInteger(tpgid) || tpgid <= 0) return true;
  return pgrp === tpgid;
}

let backgroundWarned = false;

export interface ConsoleAttachment {
  detach(): void;
}

export function attachConsole(onInput: (bytes: Uint8Array) => void, onQuit: () => void): ConsoleAttachment {
  const stdin = process.stdin;
  const tty = stdin.isTTY === true;
  if (tty && !inForeground()) {
    if (!backgroundWarned) {
      backgroundWarned = true;
      process.stderr.write('vessel: running in the background of its terminal: console input is not read (output still goes to the terminal; use --console unix:PATH and `vessel console PATH` to type into the guest)\n');
    }
    return { detach(): void {} };
  }
  let escape = false;
  const restore = (): void => {
    if (tty && stdin.isRaw) stdin.setRawMode(false);
  };
  if (tty) stdin.setRawMode(true);
  process.on('exit', restore);

  const onData = (chunk: Buffer): void => {
    if (!tty) { onInput(chunk); return; }
    const out: number[] = [];
    for (const byte of chunk) {
      if (escape) {
        escape = false;
        if (byte === 0x78 /* x */) { onQuit(); return; }
        if (byte === CTRL_A) out.push(CTRL_A);
        continue;
      }
      if (byte === CTRL_A) { escape = true; continue; }
      out.push(byte);
    }
    if (out.length) onInput(Uint8Array.from(out));
  };
  stdin.on('data', onData);
  stdin.resume();
  return {
    detach(): void {
      stdin.off('data', onData);
      stdin.pause();
      restore();
      process.off('exit', restore);
    },
  };
}
