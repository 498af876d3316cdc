// The QEMU guest agent under `vessel host`, end to end: a VM from the default image (its full
// root disk, qemu-ga started by rcS on the org.qemu.guest_agent.0 port of the multiport
// virtio-console) runs commands through `vessel vm exec` and powers off through
// `vessel vm shutdown`; a kernel+initramfs VM, which has no agent, is refused at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ensureDefaultImage } from '../images/build-image.js';
import { TEST_MS } from './vessel-cli.js';
import { removeStateDir, shortStateDir, startHost, until, vm, vmOk } from './host-cli.js';

interface VmJson { state: string; desired_state: string; pid: number | null; guest_agent?: { connected: boolean; version: string | null }; last_exit: { reason: string; stop?: string; exit_code: number | null } | null }
const show = async (dir: string, name: string): Promise<VmJson> => JSON.parse(await vmOk(dir, ['show', name, '--json'])) as VmJson;

test('host guest agent: vessel vm exec and shutdown through qemu-ga in a default-image VM; a VM without the agent is refused at once', { timeout: TEST_MS }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = shortStateDir('vga-');
  const host = await startHost(dir);
  t.after(() => { host.kill(); removeStateDir(dir); });

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
