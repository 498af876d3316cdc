// virtio-console end to end: the default guest image booted through the CLI with
// `--hvc <tmp>/hvc.sock`; a node:net client on the socket sees what the guest writes to
// /dev/hvc0, and a line it sends is read by the guest from /dev/hvc0.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { BOOT_MARKER, ensureDefaultImage } from '../images/build-image.js';
import { BOOT_MS, COMMAND_MS, initramfsOnly, POWEROFF_MS, ShellSession, TEST_MS, VesselProcess } from './vessel-cli.js';

const running: VesselProcess[] = [];
after(() => { for (const vm of running) vm.kill(); });

/** Connects to the socket, retrying while the CLI has not started listening yet. */
async function connect(sock: string, timeoutMs: number): Promise<net.Socket> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(sock);
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    } catch (e) {
      if (performance.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Waits until the text received on the socket matches `what`. */
function waitForSocket(received: () => string, socket: net.Socket, what: RegExp, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      if (!what.test(received())) return false;
      clearTimeout(timer);
      socket.off('data', check);
      resolve();
      return true;
    };
    const timer = setTimeout(() => {
      socket.off('data', check);
      reject(new Error(`no ${String(what)} on the hvc socket within ${timeoutMs / 1000} s; got ${JSON.stringify(received())}`));
    }, timeoutMs);
    socket.on('data', check);
    check();
  });
}

test('virtio-console: guest writes to /dev/hvc0 reach the socket; a line from the socket is read from /dev/hvc0', { timeout: TEST_MS }, async (t) => {
  await ensureDefaultImage({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-hvc-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sock = path.join(dir, 'hvc.sock');

  // The initramfs shell: the root disk would run a getty on hvc0.
  const vm = VesselProcess.cli(['run', ...initramfsOnly(), '--hvc', sock]);
  running.push(vm);
  const client = await connect(sock, 30_000);
  t.after(() => client.destroy());
  let received = '';
  client.on('data', (c: Buffer) => { received += c.toString('latin1'); });

  const shell = new ShellSession(vm, BOOT_MARKER);
  await shell.waitForShell(BOOT_MS);

  const devs = await shell.run('ls /dev/hvc0 && cat /sys/class/tty/hvc0/dev', COMMAND_MS);
  assert.match(devs, /^\/dev\/hvc0$/m, `hvc0 exists: ${devs}`);

  await shell.run('echo hello-hvc > /dev/hvc0', COMMAND_MS);
  await waitForSocket(() => received, client, /hello-hvc/, COMMAND_MS);

  await shell.run('(head -n 1 /dev/hvc0 > /tmp/got &)', COMMAND_MS);
  // Give head time to open the tty before the line arrives (input before that is not lost,
  // but the tty would not be open to take it).
  await shell.run('sleep 1', COMMAND_MS);
  client.write('from-host\n');
  let got = '';
  for (let i = 0; i < 30 && !/^from-host$/m.test(got); i++) {
    got = await shell.run('sleep 1; cat /tmp/got', COMMAND_MS);
  }
  assert.match(got, /^from-host$/m, `the guest read the host's line from /dev/hvc0: ${JSON.stringify(got)}`);

  shell.sendLast('poweroff');
  const exit = await vm.waitExit(POWEROFF_MS);
  assert.equal(exit.code, 0, `poweroff exits 0\n${vm.describe()}`);
  assert.equal(fs.existsSync(sock), false, 'the socket file is removed on exit');
});
