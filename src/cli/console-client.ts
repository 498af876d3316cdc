/**
 * `vessel console SOCKET`: attaches the terminal to a console served on a Unix domain socket
 * (`vessel vmm --console unix:PATH`, `vessel run --hvc PATH`). Keys go to the guest (raw on a
 * TTY); Ctrl-A x detaches and leaves the VM running. Ends with 0 when the VMM closes the
 * connection, 2 when there is nothing to connect to.
 */
import * as net from 'node:net';
import { ConfigError } from '../vmm/errors.js';
import { attachConsole } from '../vmm/terminal.js';

export async function attachSocketConsole(path: string): Promise<number> {
  const socket = net.connect(path);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'ENOENT' ? 'no such socket' : e.code === 'ECONNREFUSED' ? 'no server is listening there' : e.message;
      reject(new ConfigError(`console "${path}": ${why}`));
    });
  });
  let stdoutClosed = false;
  process.stdout.on('error', () => { stdoutClosed = true; socket.destroy(); });
  socket.on('data', (chunk: Buffer) => { if (!stdoutClosed) process.stdout.write(chunk); });
  const input = attachConsole((bytes) => socket.write(bytes), () => socket.end());
  // With a pipe on stdin, its end (EOF) does not end the session: the guest may still be talking.
  await new Promise<void>((resolve) => {
    socket.on('error', () => { /* reported as close */ });
    socket.once('close', () => resolve());
  });
  input.detach();
  return 0;
}
