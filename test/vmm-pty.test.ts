// `vessel vmm --console pty[:LINK]` and PUT /serial {"vessel_console": "pty..."}: the serial console
// on a real pseudo-terminal made by socat. One guest boot: the test opens the pty's slave side
// itself (O_RDWR|O_NOCTTY, as a terminal program would), reads the boot from it, runs a command
// through it, and sees the link go when the VMM ends. The errors (socat missing, a bad link) need
// no boot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tty from 'node:tty';

import { ensureDefaultImage } from '../images/build-image.js';
import { api, faultOf, tempDir, waitForApi } from './vmm-client.js';
import { BOOT_MS, CLI, COMMAND_MS, PROMPT, TEST_MS, VesselProcess } from './vessel-cli.js';

const MARKER = 'VESSEL-INIT-OK';
const PTY_NOTICE = /vessel vmm: serial console on (\/dev\/pts\/\d+)/;

/** The slave side of a pty, read as a terminal program would; collects everything it reads. */
class PtyClient {
  text = '';
  private readonly fd: number;
  private readonly input: tty.ReadStream;
  private waiters: Array<() => void> = [];

  constructor(ptyPath: string) {
    this.fd = fs.openSync(ptyPath, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
    this.input = new tty.ReadStream(this.fd);
    this.input.on('data', (c: Buffer) => { this.text += c.toString('latin1'); this.notify(); });
    // EIO once the relay closes the master side: the end of this pty.
    this.input.on('error', () => this.notify());
  }

  type(text: string): void {
    fs.writeSync(this.fd, text);
  }

  async waitFor(what: string | RegExp, from: number, timeoutMs: number): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const end = matchEnd(this.text, what, from);
      if (end !== null) return end;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no ${String(what)} on the pty within ${timeoutMs / 1000} s; it showed:\n${this.text.slice(-2000)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  close(): void {
    this.input.destroy();
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** The index just past the first match of `what` in `text` at or after `from`, or null. */
function matchEnd(text: string, what: string | RegExp, from: number): number | null {
  if (typeof what === 'string') {
    const i = text.indexOf(what, from);
    return i < 0 ? null : i + what.length;
  }
  const m = new RegExp(what.source, what.flags.replace('g', '') + 'g');
  m.lastIndex = from;
  const r = m.exec(text);
  return r ? r.index + r[0].length : null;
}

test('vmm --console pty: a missing socat or an unusable link is refused with the reason (exit 2 / 400)', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t, 'vessel-vmm-pty-err-');
  // A PATH with setpriv but no socat.
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const setpriv = spawnSync('sh', ['-c', 'command -v setpriv'], { encoding: 'utf8' }).stdout.trim();
  assert.ok(setpriv !== '', 'setpriv (util-linux) is installed');
  fs.symlinkSync(setpriv, path.join(bin, 'setpriv'));
  const noSocat = { ...process.env, PATH: bin };

  const r = spawnSync(process.execPath, [CLI, 'vmm', '--api-sock', path.join(dir, 'a.sock'), '--console', 'pty'], { cwd: dir, env: noSocat, encoding: 'utf8', input: '', timeout: 60_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--console: a pty console needs socat, which is not installed: apt-get install socat/);

  fs.writeFileSync(path.join(dir, 'regular'), 'x');
  const bad = spawnSync(process.execPath, [CLI, 'vmm', '--api-sock', path.join(dir, 'b.sock'), '--console', `pty:${path.join(dir, 'regular')}`], { cwd: dir, encoding: 'utf8', input: '', timeout: 60_000 });
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /--console: pty link ".*regular" exists and is not a symbolic link/);
  assert.equal(fs.readFileSync(path.join(dir, 'regular'), 'utf8'), 'x', 'the file is left alone');

  // The API: the same checks give 400s.
  const sock = path.join(dir, 'api.sock');
  const vmm = new VesselProcess(process.execPath, [CLI, 'vmm', '--api-sock', sock], { cwd: dir, env: noSocat });
  t.after(() => vmm.kill());
  await waitForApi(vmm, sock);
  assert.equal(faultOf(await api(sock, 'PUT', '/serial', { vessel_console: 'pty' })), 'a pty console needs socat, which is not installed: apt-get install socat');
  assert.match(faultOf(await api(sock, 'PUT', '/serial', { vessel_console: 'pty:a,b' })), /^pty link "a,b" contains one of/);
  assert.match(faultOf(await api(sock, 'PUT', '/serial', { vessel_console: 'pty:/no/such/dir/tty' })), /^pty link "\/no\/such\/dir\/tty": directory "\/no\/such\/dir" does not exist/);
});

test('vmm --config-file with a pty:LINK console: the boot and a command run through the pty; the link goes with the VMM', { timeout: TEST_MS }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = tempDir(t, 'vessel-vmm-pty-');
  const link = path.join(dir, 'console');
  const apiSock = path.join(dir, 'api.sock');
  const config = path.join(dir, 'vm.json');
  fs.writeFileSync(config, JSON.stringify({
    'boot-source': { kernel_image_path: image.kernel, initrd_path: image.initrd },
    'machine-config': { vcpu_count: 1, mem_size_mib: 128 },
    serial: { vessel_console: `pty:${link}` },
  }));
  const vmm = new VesselProcess(process.execPath, [CLI, 'vmm', '--config-file', config, '--api-sock', apiSock], { cwd: dir });
  t.after(() => vmm.kill());
  for (let i = 0; i < 600 && !PTY_NOTICE.test(vmm.stderr) && !vmm.exit; i++) await new Promise((r) => setTimeout(r, 50));
  const ptyPath = PTY_NOTICE.exec(vmm.stderr)?.[1];
  assert.ok(ptyPath !== undefined, `the VMM says where the pty is\n${vmm.describe()}`);
  assert.equal(fs.readlinkSync(link), ptyPath, 'the link points at the pty');

  const pty = new PtyClient(link);
  t.after(() => pty.close());
  const marker = await pty.waitFor(MARKER, 0, BOOT_MS);
  await pty.waitFor(PROMPT, marker, COMMAND_MS);
  const typedAt = pty.text.length;
  pty.type('echo PTY-$((6*7))\n');
  await pty.waitFor(/PTY-42\r?\n/, typedAt, COMMAND_MS);
  assert.equal(vmm.stdout, '', 'the serial console is not on the VMM\'s stdout');
  const cfg = (await api(apiSock, 'GET', '/vm/config')).body as { serial: unknown };
  assert.deepEqual(cfg.serial, { vessel_console: `pty:${link}` });

  vmm.child.kill('SIGTERM');
  assert.equal((await vmm.waitExit(30_000)).code, 143);
  assert.equal(fs.existsSync(link) || isSymlink(link), false, 'the link is removed');
});

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
