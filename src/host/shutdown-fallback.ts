/**
 * `vessel vm shutdown` for a guest without a guest agent. The board has no power button a guest
 * could be told about: RISC-V's virt board has no ACPI, and its ways to power off (SBI SRST, the
 * sifive_test device) are the guest's to use, not the host's. What is left is the serial console:
 * when the guest sits at a shell prompt there (the default images' root shell on ttyS0), the host
 * types `poweroff`, which runs busybox init's shutdown (rcK, file systems unmounted) as a user
 * would. Typing into a console is only done when it is safe:
 *
 *   1. the console log ends with a shell prompt (`# ` or `$ `), with at most kernel messages after
 *      it, so no program is reading the console;
 *   2. on the console socket (refused when someone is attached: nothing is typed then), Ctrl-U
 *      and Enter (an empty command line) bring a fresh prompt back within 3 s;
 *   3. then `poweroff` and Enter.
 *
 * Anything else is refused with a sentence that says why and that `vessel vm stop` ends the
 * process. Nothing here waits for the poweroff itself: the supervisor does.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { NoGuestAgentError } from './guest-agent.js';

/** Printed by the kernel: "[   12.345678] ...", from the line's start or after what was on it (a prompt). */
const KERNEL_MESSAGE = /^(.*?)\[\s*\d+\.\d+\]/;
const PROMPT = /[#$] ?$/;
const PROBE_MS = 3000;

/** Console text without escape sequences and carriage returns. */
function plain(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
}

/**
 * Whether the console output ends at a shell prompt: its last line that is not a kernel message
 * ends with "# " or "$ ", and it is the last line or only kernel messages follow it.
 */
export function atShellPrompt(tail: string): { prompt: boolean; last: string } {
  const lines = plain(tail).split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    let line = lines[i];
    if (line.trim() === '' && i === lines.length - 1) continue;
    // A kernel message may start right after the prompt, on its line.
    const k = KERNEL_MESSAGE.exec(line);
    if (k) {
      if (k[1] === '') continue;
      line = k[1];
    }
    return { prompt: PROMPT.test(line) && line.trim().length > 1, last: line.slice(-80) };
  }
  return { prompt: false, last: '' };
}

function readTail(file: string, bytes = 4096): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buf = Buffer.alloc(Math.min(bytes, size));
      fs.readSync(fd, buf, 0, buf.length, size - buf.length);
      return buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

/**
 * Types `poweroff` at the shell prompt of the VM's serial console (see above); returns what it
 * did, or throws NoGuestAgentError (409) saying why it did not.
 */
export async function consolePoweroff(name: string, consoleLog: string, consoleSock: string, noAgent: string): Promise<string> {
  const refuse = (why: string): never => {
    throw new NoGuestAgentError(`${noAgent}; ${why}. The board has no power button a guest could see (no ACPI on RISC-V; SBI SRST and the sifive_test device are the guest's own): vessel vm stop ends its process`);
  };
  const before = atShellPrompt(readTail(consoleLog));
  if (!before.prompt) refuse(`its serial console shows no shell prompt to type poweroff at (last line: ${JSON.stringify(before.last)})`);
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(consoleSock);
    s.once('connect', () => resolve(s));
    s.once('error', (e: NodeJS.ErrnoException) => reject(e));
  }).catch((e: NodeJS.ErrnoException) => refuse(`its serial console cannot be reached (${e.code ?? e.message})`));
  try {
    let seen = '';
    let flushed = false;
    const reply = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), PROBE_MS);
      socket.on('data', (c: Buffer) => {
        seen += c.toString('utf8');
        if (/already has a client/.test(seen)) { clearTimeout(timer); resolve(false); return; }
        if (flushed && atShellPrompt(seen).prompt) { clearTimeout(timer); resolve(true); }
      });
      socket.once('close', () => { clearTimeout(timer); resolve(false); });
    });
    // What the console kept while nobody was attached arrives first; only what follows the probe counts.
    await new Promise((r) => setTimeout(r, 200));
    if (/already has a client/.test(seen)) refuse('its serial console has a client attached (vessel vm console), so nothing was typed');
    seen = '';
    flushed = true;
    socket.write('\x15\r');
    if (!(await reply)) refuse(/already has a client/.test(seen) ? 'its serial console has a client attached (vessel vm console), so nothing was typed' : `its serial console gave no shell prompt back within ${PROBE_MS / 1000} s of an empty command line`);
    await new Promise<void>((resolve) => socket.write('poweroff\r', () => resolve()));
    return `VM "${name}" has no guest agent: "poweroff" was typed at the shell prompt on its serial console`;
  } finally {
    socket.end();
  }
}
