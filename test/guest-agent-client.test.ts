// The host's QGA client without a guest: the framing (0xFF sentinel, one JSON object per line,
// stale answers skipped), and a fake agent on a Unix socket for sync, exec and time limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { GuestAgentCommandError, GuestAgentTimeoutError, NoGuestAgentError, QgaClient, QgaReader } from '../src/host/guest-agent.js';

test('QgaReader: drops what precedes the 0xFF sentinel, splits lines, skips non-JSON', () => {
  const r = new QgaReader();
  r.expectSentinel();
  assert.deepEqual(r.push(Buffer.from('{"return": 1}\n stale')), []);
  assert.deepEqual(r.push(Buffer.from([0xff, ...Buffer.from('{"return": 7}\n{"ret')])), [{ return: 7 }]);
  assert.deepEqual(r.push(Buffer.from('urn": {}}\nnot json\n\n{"error": {"class": "X", "desc": "d"}}\n')), [{ return: {} }, { error: { class: 'X', desc: 'd' } }]);
});

/** A fake qemu-ga: answers sync after a 0xFF (with a stale answer first), exec and exec-status; `silent` answers nothing. */
async function fakeAgent(t: { after(f: () => void): void }, opts: { silent?: boolean } = {}): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qga-'));
  const sock = path.join(dir, 'qga.sock');
  const server = net.createServer((s) => {
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1').replace(/\xff/g, '');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const req = JSON.parse(buf.slice(0, nl)) as { execute: string; arguments?: Record<string, unknown> };
        buf = buf.slice(nl + 1);
        if (opts.silent) continue;
        const send = (v: unknown) => s.write(JSON.stringify(v) + '\n');
        if (req.execute === 'guest-sync-delimited') {
          send({ return: 12345 }); // left over from an earlier client
          s.write(Buffer.from([0xff]));
          send({ return: 1 }); // another id
          send({ return: req.arguments?.id });
        } else if (req.execute === 'guest-exec') send({ return: { pid: 42 } });
        else if (req.execute === 'guest-exec-status') send({ return: { exited: true, exitcode: 3, 'out-data': Buffer.from('out\n').toString('base64'), 'err-data': Buffer.from('err\n').toString('base64') } });
        else send({ error: { class: 'CommandNotFound', desc: `The command ${req.execute} has not been found` } });
      }
    });
  });
  await new Promise<void>((r) => server.listen(sock, r));
  t.after(() => { server.close(); fs.rmSync(dir, { recursive: true, force: true }); });
  return sock;
}

test('QgaClient: sync skips stale answers; exec decodes base64 output and the exit code; agent errors carry their class', async (t) => {
  const c = await QgaClient.connect(await fakeAgent(t), 'fake');
  assert.deepEqual(await c.exec(['sh', '-c', 'exit 3']), { exit_code: 3, stdout: 'out\n', stderr: 'err\n' });
  await assert.rejects(c.execute('guest-bogus'), (e: unknown) => e instanceof GuestAgentCommandError && /CommandNotFound/.test(e.message));
  c.close();
});

test('QgaClient: a silent agent times out with a sentence; no socket is "no guest agent"', async (t) => {
  const t0 = Date.now();
  await assert.rejects(QgaClient.connect(await fakeAgent(t, { silent: true }), 'fake', 300), (e: unknown) => e instanceof GuestAgentTimeoutError && /did not answer guest-sync-delimited within 0.3 s/.test(e.message));
  assert.ok(Date.now() - t0 < 2000);
  await assert.rejects(QgaClient.connect('/nonexistent/qga.sock', 'VM "x"'), NoGuestAgentError);
});
