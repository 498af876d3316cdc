// The host side of `--hvc`: the Unix domain socket server without a VM (backlog, one client at
// a time, socket file handling), and the CLI's usage error for a path that is not a socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { HVC_BACKLOG_BYTES, HvcSocketError, HvcSocketServer } from '../src/vmm/hvc-socket.js';
import { CLI, REPO_ROOT } from './vessel-cli.js';

function tmpdir(t: { after: (f: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-hvcsock-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A client that collects what it receives. */
async function client(sock: string): Promise<{ s: net.Socket; text: () => string; closed: Promise<void> }> {
  const s = net.connect(sock);
  let text = '';
  s.on('data', (c: Buffer) => { text += c.toString('latin1'); });
  const closed = new Promise<void>((resolve) => s.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
  return { s, text: () => text, closed };
}

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), what);
};

test('hvc socket: output without a client is kept up to 64 KiB (oldest dropped) and sent on connect; input reaches the VM', async (t) => {
  const sock = path.join(tmpdir(t), 'hvc.sock');
  const input: string[] = [];
  const server = await HvcSocketServer.listen(sock, (b) => input.push(Buffer.from(b).toString('latin1')));
  t.after(() => server.close());
  assert.ok(fs.lstatSync(sock).isSocket());
  server.write(new Uint8Array(HVC_BACKLOG_BYTES).fill(0x61)); // 'a' × 64 KiB
  server.write(new TextEncoder().encode('tail'));
  assert.equal(server.buffered, HVC_BACKLOG_BYTES);
  const c = await client(sock);
  await until(() => c.text().length === HVC_BACKLOG_BYTES, `the backlog arrives (${c.text().length} bytes)`);
  assert.equal(c.text().slice(-4), 'tail', 'newest bytes kept');
  assert.equal(c.text().slice(0, 4), 'aaaa');
  assert.equal(server.buffered, 0);
  server.write(new TextEncoder().encode('live'));
  await until(() => c.text().endsWith('live'), 'live output goes straight to the client');
  c.s.write('typed\n');
  await until(() => input.join('') === 'typed\n', 'client input reaches the VM');

  // A second client is turned away while the first is connected.
  const second = await client(sock);
  await second.closed;
  assert.match(second.text(), /already has a client/);
  // After the first leaves, output is kept again for the next one.
  c.s.destroy();
  await c.closed;
  await until(() => !server.connected, 'the server notices the client left');
  server.write(new TextEncoder().encode('while-away'));
  const third = await client(sock);
  await until(() => third.text() === 'while-away', 'the next client gets what it missed');
  server.close();
  await third.closed;
  assert.equal(fs.existsSync(sock), false, 'close removes the socket file');
});

test('hvc socket: a stale socket file is replaced; a live one or a regular file is refused', async (t) => {
  const dir = tmpdir(t);
  const sock = path.join(dir, 'hvc.sock');
  const first = await HvcSocketServer.listen(sock, () => {});
  await assert.rejects(HvcSocketServer.listen(sock, () => {}), (e: unknown) => e instanceof HvcSocketError && /in use by another server/.test(e.message));
  first.close();
  // A socket file with no server behind it: left by a process that was killed while listening.
  const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(sock)}, () => console.log('ready'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.kill('SIGKILL');
  await new Promise<void>((resolve) => child.once('close', () => resolve()));
  assert.ok(fs.lstatSync(sock).isSocket(), 'the stale socket file is there');
  const second = await HvcSocketServer.listen(sock, () => {});
  const c = await client(sock);
  c.s.destroy();
  second.close();
  assert.equal(fs.existsSync(sock), false);
  const file = path.join(dir, 'plain');
  fs.writeFileSync(file, 'x');
  await assert.rejects(HvcSocketServer.listen(file, () => {}), /exists and is not a socket/);
  assert.equal(fs.readFileSync(file, 'utf8'), 'x', 'the file is left alone');
});

test('vessel run --hvc on a regular file is a usage error (exit 2)', (t) => {
  const file = path.join(tmpdir(t), 'plain');
  fs.writeFileSync(file, 'x');
  const r = spawnSync(process.execPath, [CLI, 'run', '--kernel', file, '--hvc', file], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000, input: '' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--hvc ".*plain" exists and is not a socket/);
});
