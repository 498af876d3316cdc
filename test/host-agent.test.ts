// The QEMU guest agent under `vessel host`, end to end: a VM from the default image (its full
// root disk, qemu-ga started by rcS on the org.qemu.guest_agent.0 port of the multiport
// virtio-console) runs commands through `vessel vm exec` and powers off through
// `vessel vm shutdown`; a kernel+initramfs VM, which has no agent, is refused at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

import { ensureDefaultImage } from '../images/build-image.js';
import { CLI, TEST_MS, VesselProcess } from './vessel-cli.js';

const run = promisify(execFile);

async function vm(dir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, 'vm', '--host', path.join(dir, 'host.sock'), ...args], { timeout: 180_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

async function vmOk(dir: string, args: string[]): Promise<string> {
  const r = await vm(dir, args);
  assert.equal(r.code, 0, `vessel vm ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

interface VmJson { state: string; desired_state: string; pid: number | null; guest_agent?: { connected: boolean; version: string | null }; last_exit: { reason: string; stop?: string; exit_code: number | null } | null }
const show = async (dir: string, name: string): Promise<VmJson> => JSON.parse(await vmOk(dir, ['show', name, '--json'])) as VmJson;

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

test('host guest agent: vessel vm exec and shutdown through qemu-ga in a default-image VM; a VM without the agent is refused at once', { timeout: TEST_MS }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = fs.mkdtempSync('/tmp/vga-');
  const host = VesselProcess.cli(['host', '--state-dir', dir]);
  t.after(() => {
    for (const f of fs.existsSync(path.join(dir, 'vms')) ? fs.readdirSync(path.join(dir, 'vms')) : []) spawnSync('pkill', ['-9', '-f', `vmm --id ${f}`]);
    host.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await host.waitFor('API on', 0, 30_000);

  // The full root disk (with qemu-ga); the kernel+initramfs VM (without) comes once it is up,
  // so the two do not share the test machine's cores while the first boots.
  await vmOk(dir, ['create', 'ga', '--net', 'none']);

  const t0 = Date.now();
  const s = await until('the guest agent to connect (vessel vm show)', async () => {
    const v = await show(dir, 'ga');
    return v.guest_agent?.connected ? v : undefined;
  }, 150_000);
  const bootS = (Date.now() - t0) / 1000;
  assert.match(s.guest_agent?.version ?? '', /^\d+\.\d+/, 'guest-info gives qemu-ga\'s version');
  assert.match(await vmOk(dir, ['show', 'ga']), /^Guest agent:\s+connected \(qemu-ga \d/m);

  await vmOk(dir, ['create', 'bare', '--kernel', image.kernel, '--initrd', image.initrd, '--memory', '128M', '--net', 'none']);
  let t1 = Date.now();
  const uname = await vm(dir, ['exec', 'ga', '--', 'uname', '-m']);
  const execMs = Date.now() - t1;
  assert.equal(uname.code, 0, uname.stderr);
  assert.equal(uname.stdout, 'riscv64\n');
  const three = await vm(dir, ['exec', 'ga', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.equal(three.code, 3, 'vessel vm exec exits with the command\'s code');
  assert.equal(three.stdout, 'out\n');
  assert.equal(three.stderr, 'err\n');

  // No agent in an initramfs guest: a sentence at once, never a hang.
  t1 = Date.now();
  const none = await vm(dir, ['exec', 'bare', '--', 'uname', '-m']);
  const noneMs = Date.now() - t1;
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /VM "bare" has no guest agent/);
  assert.ok(noneMs < 10_000, `refused quickly (${noneMs} ms)`);
  const bareShutdown = await vm(dir, ['shutdown', 'bare']);
  assert.notEqual(bareShutdown.code, 0);
  assert.match(bareShutdown.stderr, /has no guest agent/);
  assert.equal((await show(dir, 'bare')).state, 'running', 'a refused shutdown leaves the VM running');
  assert.equal((await show(dir, 'bare')).guest_agent?.connected, false);

  // A clean poweroff through the agent: the VM ends stopped, its last exit a guest poweroff.
  t1 = Date.now();
  assert.match(await vmOk(dir, ['shutdown', 'ga']), /^ga stopped$/m);
  const shutdownS = (Date.now() - t1) / 1000;
  const after = await show(dir, 'ga');
  assert.equal(after.state, 'stopped');
  assert.equal(after.desired_state, 'stopped');
  assert.equal(after.pid, null);
  assert.match(after.last_exit?.reason ?? '', /power/i, JSON.stringify(after.last_exit));
  assert.equal(after.last_exit?.exit_code, 0);
  const log = await vmOk(dir, ['logs', 'ga', '--tail', '5']);
  assert.match(log, /reboot: Power down/);
  const gone = await vm(dir, ['exec', 'ga', '--', 'true']);
  assert.match(gone.stderr, /VM "ga" is stopped/);
  t.diagnostic(`agent up ${bootS.toFixed(1)} s after create; exec uname ${execMs} ms; no-agent refusal ${noneMs} ms; shutdown ${shutdownS.toFixed(1)} s`);
  await vmOk(dir, ['delete', '--force', 'bare']);
});
