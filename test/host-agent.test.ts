// The QEMU guest agent under `vessel host`, end to end: a VM from the default image (its full
// root disk, qemu-ga started by rcS on the org.qemu.guest_agent.0 port of the multiport
// virtio-console) runs commands through `vessel vm exec` and powers off through
// `vessel vm shutdown`; a kernel+initramfs VM, which has no agent, is refused at once. Its root
// disk grows live from 256 to 512 MiB with `vessel vm set --disk` (the guest's ext4 grown by
// resize2fs through the agent), shrinking is refused. Its vCPUs change live, 1 -> 2 -> 1, through the
// VMM's allotment (PUT /vm.resize) and the agent's guest-set-vcpus: nproc follows, no reboot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

import { ensureDefaultImage } from '../images/build-image.js';
import { TEST_MS } from './vessel-cli.js';
import { api } from './vmm-client.js';
import { removeStateDir, shortStateDir, startHost, until, vm, vmOk } from './host-cli.js';

interface VmJson { id: string; state: string; vcpus?: number; max_vcpus?: number; vcpus_online?: number | null; api_socket?: string; desired_state: string; pid: number | null; guest_agent?: { connected: boolean; version: string | null }; last_exit: { reason: string; stop?: string; exit_code: number | null } | null }
const show = async (dir: string, name: string): Promise<VmJson> => JSON.parse(await vmOk(dir, ['show', name, '--json'])) as VmJson;

test('host guest agent: vessel vm exec and shutdown through qemu-ga in a default-image VM, whose root disk grows live (256 -> 512 MiB, ext4 grown) and whose vCPUs go 1 -> 2 -> 1 live; a VM without the agent: exec refused at once, vCPUs raised but not lowered, shutdown typed on its console', { timeout: TEST_MS }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = shortStateDir('vga-');
  const host = await startHost(dir);
  t.after(() => { host.kill(); removeStateDir(dir); });

  // The full root disk (with qemu-ga); the kernel+initramfs VM (without) comes once it is up,
  // so the two do not share the test machine's cores while the first boots.
  await vmOk(dir, ['create', 'ga', '--net', 'none', '--vcpus', '1', '--max-vcpus', '2']);

  const t0 = Date.now();
  const s = await until('the guest agent to connect (vessel vm show)', async () => {
    const v = await show(dir, 'ga');
    return v.guest_agent?.connected ? v : undefined;
  }, 150_000);
  const bootS = (Date.now() - t0) / 1000;
  assert.match(s.guest_agent?.version ?? '', /^\d+\.\d+/, 'guest-info gives qemu-ga\'s version');
  assert.match(await vmOk(dir, ['show', 'ga']), /^Guest agent:\s+connected \(qemu-ga \d/m);

  // The agent-less VM also has a read-only disk (vda) and a writable one (vdb) for the disk-grow refusals.
  const roImg = path.join(dir, 'ro.img');
  const rwImg = path.join(dir, 'rw.img');
  fs.writeFileSync(roImg, Buffer.alloc(1 << 20));
  fs.writeFileSync(rwImg, Buffer.alloc(1 << 20));
  await vmOk(dir, ['create', 'bare', '--kernel', image.kernel, '--initrd', image.initrd, '--memory', '128M', '--net', 'none', '--disk', `${roImg},readonly`, '--disk', rwImg, '--max-vcpus', '2']);
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
  assert.equal((await show(dir, 'bare')).guest_agent?.connected, false);

  // Disk live: vda (the root file system, 256 MiB) grows to 512 MiB under the running guest; the
  // guest's block device and then its ext4 (resize2fs through the agent) follow; a file written
  // before reads back intact; shrinking is refused with the current size.
  const exec = async (script: string): Promise<string> => {
    const r = await vm(dir, ['exec', 'ga', '--', 'sh', '-c', script]);
    assert.equal(r.code, 0, `${script}: ${r.stderr}`);
    return r.stdout;
  };
  const rootfs = (JSON.parse(await vmOk(dir, ['show', 'ga', '--json'])) as { disks: { path: string }[] }).disks[0].path;
  assert.equal(fs.statSync(rootfs).size, 256 << 20);
  const sum = (await exec('head -c 4194304 /dev/urandom > /root/before.bin && sync && md5sum /root/before.bin')).split(' ')[0];
  const dfKiB = async (): Promise<number> => Number((await exec('df -Pk /')).split('\n')[1].trim().split(/\s+/)[1]);
  const dfBefore = await dfKiB();
  assert.equal((await exec('cat /sys/block/vda/size')).trim(), String((256 << 20) / 512));
  const shrink = await vm(dir, ['set', 'ga', '--disk', 'vda=128M']);
  assert.equal(shrink.code, 1);
  assert.match(shrink.stderr, /disk vda of VM "ga" is 256 MiB \(268435456 bytes\); shrinking it to 128 MiB is not supported .*give at least 256 MiB/);
  const vcpus = await vm(dir, ['set', 'ga', '--vcpus', '3', '--disk', 'vda=512M']);
  assert.equal(vcpus.code, 2, 'beyond max_vcpus is invalid input');
  assert.match(vcpus.stderr, /VM "ga" has max_vcpus 2: --vcpus 3 is more than that .*nothing was changed/);
  assert.equal(fs.statSync(rootfs).size, 256 << 20, 'refusals change nothing');

  // vCPUs live, in the same running guest: 1 -> 2 -> 1; nproc follows, the guest does not reboot.
  const nproc = async (): Promise<string> => (await exec('nproc')).trim();
  const guestUptime = async (): Promise<number> => Number((await exec('cat /proc/uptime')).split(' ')[0]);
  const pid0 = (await show(dir, 'ga')).pid;
  const up0 = await guestUptime();
  assert.equal(await nproc(), '1');
  let v = await show(dir, 'ga');
  assert.deepEqual({ vcpus: v.vcpus, max: v.max_vcpus, online: v.vcpus_online }, { vcpus: 1, max: 2, online: 1 });
  t1 = Date.now();
  const up = await vmOk(dir, ['set', 'ga', '--vcpus', '2']);
  const upMs = Date.now() - t1;
  assert.match(up, /^ga: vCPU allotment raised from 1 to 2 \(of max_vcpus 2\)/m);
  assert.match(up, /^ga: the guest agent onlined cpu1: the guest has 2 CPUs online \(\d+ ms after the request\)$/m);
  assert.equal(await nproc(), '2', 'nproc follows at once');
  const nprocUpMs = Date.now() - t1;
  assert.equal((await exec('cat /sys/devices/system/cpu/online')).trim(), '0-1');
  v = await show(dir, 'ga');
  assert.deepEqual({ vcpus: v.vcpus, max: v.max_vcpus, online: v.vcpus_online }, { vcpus: 2, max: 2, online: 2 });
  assert.match(await vmOk(dir, ['show', 'ga']), /^vCPUs:\s+2 \(max 2, 2 online\)$/m);
  // The VMM itself will not lower the allotment under a hart the guest has online (409, nothing changed).
  const direct = await api(v.api_socket as string, 'PUT', '/vm.resize', { desired_vcpus: 1 });
  assert.equal(direct.status, 409, direct.text);
  assert.match((direct.body as { fault_message: string }).fault_message, /^desired_vcpus 1 allots hart 0 only, but hart 1 is still online in the guest: it must take it offline first \(cpu1: /);
  assert.equal((await vm(dir, ['set', 'ga', '--vcpus', '0'])).code, 2, 'vCPU 0 always stays');
  t1 = Date.now();
  const down = await vmOk(dir, ['set', 'ga', '--vcpus', '1']);
  const downMs = Date.now() - t1;
  assert.match(down, /^ga: the guest agent took cpu1 offline; their harts stopped/m);
  assert.match(down, /^ga: vCPU allotment lowered from 2 to 1 \(of max_vcpus 2\)/m);
  assert.equal(await nproc(), '1');
  assert.equal((await exec('cat /sys/devices/system/cpu/online')).trim(), '0');
  v = await show(dir, 'ga');
  assert.deepEqual({ vcpus: v.vcpus, online: v.vcpus_online, pid: v.pid }, { vcpus: 1, online: 1, pid: pid0 }, 'the same VM process');
  const up1 = await guestUptime();
  assert.ok(up1 > up0, `the guest's uptime continues (${up0} s -> ${up1} s): no reboot`);
  const metrics = (await api(v.api_socket as string, 'GET', '/metrics')).body as { vcpus: unknown };
  assert.deepEqual(metrics.vcpus, { max: 2, allotted: 1, online: 1 });
  t1 = Date.now();
  const grown = JSON.parse(await vmOk(dir, ['set', 'ga', '--disk', 'vda=512M', '--json'])) as { disks: { grown: boolean; live: boolean; previous_bytes: number; guest: { device: string; size_bytes: number; seen_after_ms: number } | null; filesystem: { mount_point: string; type: string; resized: boolean; size_bytes: number | null } | null; notes: string[] }[] };
  const growS = (Date.now() - t1) / 1000;
  const g0 = grown.disks[0];
  assert.equal(g0.grown, true);
  assert.equal(g0.live, true);
  assert.equal(g0.previous_bytes, 256 << 20);
  assert.deepEqual({ device: g0.guest?.device, size: g0.guest?.size_bytes }, { device: 'vda', size: 512 << 20 }, g0.notes.join('; '));
  assert.deepEqual({ mount: g0.filesystem?.mount_point, type: g0.filesystem?.type, resized: g0.filesystem?.resized }, { mount: '/', type: 'ext4', resized: true }, g0.notes.join('; '));
  assert.equal(fs.statSync(rootfs).size, 512 << 20, 'the image file was grown');
  assert.match(await vmOk(dir, ['show', 'ga']), /^Disk vda:\s+\S+ \(512 MiB\)$/m);
  assert.equal((await exec('cat /sys/block/vda/size')).trim(), String((512 << 20) / 512), 'the guest sees the new size');
  const dfAfter = await dfKiB();
  assert.ok(dfAfter > dfBefore + 200 * 1024, `df: ${dfBefore} KiB -> ${dfAfter} KiB`);
  assert.equal(g0.filesystem?.size_bytes, dfAfter * 1024);
  assert.equal((await exec('md5sum /root/before.bin')).split(' ')[0], sum, 'a file written before reads back intact');
  // The same size again: nothing grown, said so; the file system is already full size.
  const again = await vmOk(dir, ['set', 'ga', '--disk', 'vda=512M']);
  assert.match(again, /^ga: vda already 512 MiB; the image is unchanged/m);
  assert.match(again, /^ga: the ext4 file system on \/ was grown online \(resize2fs\): df shows/m);

  // The agent-less VM: a read-only disk is refused, a writable one grows live and the answer
  // says the file system is left to the guest; a disk it does not have is a 404.
  const ro = await vm(dir, ['set', 'bare', '--disk', 'vda=2M']);
  assert.equal(ro.code, 1);
  assert.match(ro.stderr, /disk vda of VM "bare" is read-only/);
  assert.match(await vmOk(dir, ['set', 'bare', '--disk', 'vdb=2M']), /vdb grown from 1 MiB to 2 MiB; the running guest was told.*\n.*no guest agent/);
  assert.equal(fs.statSync(rwImg).size, 2 << 20);
  const nodisk = await vm(dir, ['set', 'bare', '--disk', 'vdc=2M']);
  assert.match(nodisk.stderr, /VM "bare" has no disk "vdc" \(it has vda, vdb\)/);
  // vCPUs without an agent: raised (the guest must online the CPU itself), never lowered.
  const bareUp = await vmOk(dir, ['set', 'bare', '--vcpus', '2']);
  assert.match(bareUp, /^bare: vCPU allotment raised from 1 to 2 \(of max_vcpus 2\).*\nbare: VM "bare" has no guest agent: .*; the guest must online the new CPUs itself/m);
  const bareDown = await vm(dir, ['set', 'bare', '--vcpus', '1']);
  assert.equal(bareDown.code, 1);
  assert.match(bareDown.stderr, /VM "bare" has no guest agent: .*nothing was changed/);
  assert.equal((await show(dir, 'bare')).vcpus, 2, 'a refused change leaves the vCPUs as they were');

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
  // A stopped VM's disk grows offline, and the answer says so.
  assert.match(await vmOk(dir, ['set', 'ga', '--disk', 'vda=640M']), /^ga: vda grown from 512 MiB to 640 MiB offline: VM "ga" is stopped; the guest sees the new size when it next boots/m);
  assert.equal(fs.statSync(rootfs).size, 640 << 20);
  assert.match(await vmOk(dir, ['set', 'ga', '--vcpus', '2']), /vcpus 2 \(from its next start\)/);
  t.diagnostic(`agent up ${bootS.toFixed(1)} s after create; exec uname ${execMs} ms; no-agent refusal ${noneMs} ms; shutdown ${shutdownS.toFixed(1)} s; vda 256 -> 512 MiB: guest saw it ${g0.guest?.seen_after_ms} ms after the request, whole set with resize2fs ${growS.toFixed(1)} s; vcpus 1 -> 2: set ${upMs} ms (the guest showed 2 online ${/(\d+) ms after the request/.exec(up)?.[1]} ms after it), nproc 2 ${nprocUpMs} ms after the request; 2 -> 1: set ${downMs} ms`);
  // Shutdown without an agent: the initramfs guest's console is at its shell prompt, so
  // `poweroff` is typed there (a client attached to the console would be refused instead).
  await until('the initramfs guest\'s shell', async () => /built-in shell/.test(await vmOk(dir, ['logs', 'bare'])), 150_000, 1000);
  const attached = net.connect(path.join(dir, 'vms', (await show(dir, 'bare')).id, 'console.sock'));
  await new Promise((r) => attached.once('connect', r));
  const busy = await vm(dir, ['shutdown', 'bare']);
  assert.notEqual(busy.code, 0);
  assert.match(busy.stderr, /VM "bare" has no guest agent.*; its serial console has a client attached .*nothing was typed.*vessel vm stop ends its process/);
  assert.equal((await show(dir, 'bare')).state, 'running', 'a refused shutdown leaves the VM running');
  attached.destroy();
  await new Promise((r) => setTimeout(r, 200));
  const bareOff = await vmOk(dir, ['shutdown', 'bare']);
  assert.match(bareOff, /^bare: VM "bare" has no guest agent: "poweroff" was typed at the shell prompt on its serial console\nbare stopped$/m);
  const bareAfter = await show(dir, 'bare');
  assert.deepEqual({ state: bareAfter.state, code: bareAfter.last_exit?.exit_code }, { state: 'stopped', code: 0 }, JSON.stringify(bareAfter.last_exit));
  await vmOk(dir, ['delete', 'bare']);
});
