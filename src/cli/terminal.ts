/**
 * The host side of the serial console: raw keyboard input, QEMU's Ctrl-A escapes
 * (Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A), and a terminal restored on every exit path.
 */
const CTRL_A = 0x01;

export interface ConsoleAttachment {
  detach(): void;
}

export function attachConsole(onInput: (bytes: Uint8Array) => void, onQuit: () => void): ConsoleAttachment {
  const stdin = process.stdin;
  const tty = stdin.isTTY === true;
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
