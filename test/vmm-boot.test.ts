// The VMM against a real booted guest: Firecracker's getting-started curl flow with real
// `curl --unix-socket`, the serial console on the VMM's stdin/stdout, pause/resume (the harts stop:
// instret and typed input stand still; the guest clock skips the paused time unless asked),
// metrics that move, a disk image swapped under the running guest, poweroff ending the VMM with 0.
// A second, short test starts a VM from --config-file with its console on a Unix socket that
// `vessel console` attaches to, and ends it with SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

import { ensureDefaultImage } from '../images/build-image.js';
import { api, startVmm, tempDir } from './vmm-client.js';
import { BOOT_MS, CLI, COMMAND_MS, POWEROFF_MS, ShellSession, TEST_MS, VesselProcess } from './vessel-cli.js';

const run = promisify(execFile);
const MARKER = 'VESSEL-INIT-OK';

interface Metrics {
  state: string;
  uptime_ms: number;
  paused_ms: number;
  vcpu: { hart: number; instructions_retired: number }[];
  mmio_exits: number;
  block: Record<string, { read_bytes: number; read_ops: number; write_ops: number }>;
}

test('vmm: the curl flow boots a guest; pause stops the harts and the guest clock, resume continues; metrics move; a drive is swapped; poweroff exits 0', { timeout: TEST_MS }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = tempDir(t, 'vessel-vmm-boot-');
  const { vmm, sock } = await startVmm(dir);
  t.after(() => vmm.kill());
  /** One real curl request; returns "<body>\n<status>". */
  const curl = async (method: string, url: string, body?: unknown): Promise<{ status: number; body: string }> => {
    const args = ['-sS', '--unix-socket', sock, '-X', method, `http://localhost${url}`, '-H', 'Accept: application/json', '-w', '\n%{http_code}'];
    if (body !== undefined) args.push('-H', 'Content-Type: application/json', '-d', JSON.stringify(body));
    const { stdout } = await run('curl', args);
    const nl = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(nl + 1)), body: stdout.slice(0, nl) };
  };
  const put = async (url: string, body: unknown, method = 'PUT'): Promise<void> => {
    const r = await curl(method, url, body);
    assert.equal(r.status, 204, `${method} ${url}: ${r.body}`);
  };
  const metrics = async (): Promise<Metrics> => (await api(sock, 'GET', '/metrics')).body as Metrics;
  const disk = path.join(dir, 'rootfs.img');
  fs.writeFileSync(disk, Buffer.alloc(1 << 20, 0x5a));

  // Firecracker's getting-started flow, with our kernel and initramfs.
  await put('/logger', { log_path: path.join(dir, 'vmm.log'), level: 'Info', show_level: true, show_log_origin: true });
  await put('/metrics', { metrics_path: path.join(dir, 'metrics.json') });
  await put('/machine-config', { vcpu_count: 1, mem_size_mib: 128 });
  await put('/boot-source', { kernel_image_path: image.kernel, initrd_path: image.initrd, boot_args: 'console=ttyS0 earlycon=sbi' });
  await put('/drives/rootfs', { drive_id: 'rootfs', path_on_host: disk, is_root_device: true, is_read_only: false });
  await put('/network-interfaces/eth0', { iface_id: 'eth0', guest_mac: '06:00:AC:10:00:02', vessel_user_network: {} });
  await put('/entropy', {});
  await put('/actions', { action_type: 'InstanceStart' });

  let shell = new ShellSession(vmm, MARKER);
  await shell.waitForShell(BOOT_MS);
  t.diagnostic(`InstanceStart to ${MARKER}: ${shell.markerSeconds.toFixed(1)} s after the VMM started`);
  assert.match(await shell.run('cat /proc/cmdline'), /console=ttyS0 earlycon=sbi root=\/dev\/vda rw/);
  // Keep kernel messages (e.g. drop_caches notes) off the console the session reads. Commands stay
  // shorter than a console line: the shell would wrap a longer echo.
  await shell.run('dmesg -n 1');
  // eth0 is on Vessel's user-mode network, which answers ARP and ping for its gateway.
  assert.equal((await shell.run('cat /sys/class/net/eth0/address')).trim(), '06:00:ac:10:00:02');
  await shell.run('ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up');
  assert.match(await shell.run('ping -c 1 -W 5 10.0.2.2'), /1 packets received/);
  assert.equal((await shell.run('cat /sys/block/vda/size')).trim(), '2048', 'the 1 MiB root drive is vda');

  // Configuration is refused after the start, and so is a second start.
  const late = await curl('PUT', '/boot-source', { kernel_image_path: image.kernel });
  assert.equal(late.status, 400);
  assert.equal(JSON.parse(late.body).fault_message, 'PUT /boot-source is only possible before InstanceStart; the VM is Running');
  const again = await curl('PUT', '/actions', { action_type: 'InstanceStart' });
  assert.equal(JSON.parse(again.body).fault_message, 'InstanceStart: the VM is already started');

  // Pause: the harts stop between two requests; typed input waits; the guest clock stands still.
  const uptime = async (): Promise<number> => Number((await shell.run('cat /proc/uptime')).trim().split(/\s+/)[0]);
  const guestBefore = await uptime();
  const hostBefore = performance.now();
  const sent = performance.now();
  const paused = await api(sock, 'PATCH', '/vm', { state: 'Paused' });
  const pauseMs = performance.now() - sent;
  assert.equal(paused.status, 204, paused.text);
  t.diagnostic(`PATCH /vm Paused answered in ${pauseMs.toFixed(1)} ms (request to reply, host side)`);
  assert.equal(((await api(sock, 'GET', '/')).body as { state: string }).state, 'Paused');
  const m1 = await metrics();
  const typedAt = vmm.stdout.length;
  vmm.send('echo typed-while-paused\n');
  await new Promise((r) => setTimeout(r, 2500));
  const m2 = await metrics();
  assert.equal(m2.state, 'Paused');
  assert.deepEqual(m2.vcpu, m1.vcpu, 'no hart retires an instruction while paused');
  assert.equal(m2.mmio_exits, m1.mmio_exits);
  assert.ok(!vmm.stdout.includes('typed-while-paused'), 'the guest does not echo input while paused');
  assert.ok(m2.paused_ms >= 2000, `paused_ms counts (${m2.paused_ms})`);
  await put('/vm', { state: 'Paused' }, 'PATCH'); // pausing a paused VM changes nothing
  await put('/vm', { state: 'Resumed' }, 'PATCH');
  // The line typed while paused runs now; the session continues after its prompt.
  shell = new ShellSession(vmm, 'typed-while-paused');
  await shell.waitForShell(COMMAND_MS, typedAt);
  const guestAfter = await uptime();
  const hostSeconds = (performance.now() - hostBefore) / 1000;
  t.diagnostic(`guest clock advanced ${(guestAfter - guestBefore).toFixed(2)} s over ${hostSeconds.toFixed(2)} s of host time with ~2.5 s paused`);
  assert.ok(guestAfter - guestBefore < hostSeconds - 2, `the guest clock skipped the paused time (guest ${guestAfter - guestBefore} s, host ${hostSeconds} s)`);
  const m3 = await metrics();
  assert.ok(m3.vcpu[0].instructions_retired > m2.vcpu[0].instructions_retired, 'the hart runs again');

  // With vessel_advance_clock the guest does see the paused time pass.
  const guestBefore2 = await uptime();
  await put('/vm', { state: 'Paused' }, 'PATCH');
  await new Promise((r) => setTimeout(r, 2000));
  await put('/vm', { state: 'Resumed', vessel_advance_clock: true }, 'PATCH');
  const guestAfter2 = await uptime();
  assert.ok(guestAfter2 - guestBefore2 >= 2, `the guest clock moved by the paused time (${guestAfter2 - guestBefore2} s)`);

  // The shell still answers; the counters moved.
  assert.equal((await shell.run('echo still-here')).trim(), 'still-here');
  const m4 = await metrics();
  assert.equal(m4.state, 'Running');
  assert.ok(m4.vcpu[0].instructions_retired > m3.vcpu[0].instructions_retired);
  assert.ok(m4.mmio_exits > 1000, `device accesses are counted (${m4.mmio_exits})`);
  assert.ok(m4.block.rootfs.read_ops > 0 && m4.block.rootfs.read_bytes > 0, `the guest read the drive (${JSON.stringify(m4.block)})`);
  assert.ok(m4.uptime_ms > m4.paused_ms && m4.paused_ms >= 4000, `uptime ${m4.uptime_ms} ms, paused ${m4.paused_ms} ms`);
  const net = (m4 as Metrics & { net: Record<string, { rx_packets: number; tx_packets: number; rx_bytes: number }> }).net.eth0;
  assert.ok(net.tx_packets >= 2 && net.rx_packets >= 2 && net.rx_bytes > 0, `ARP and ping went both ways (${JSON.stringify(net)})`);
  const reads = m4.block.rootfs.read_ops;
  await shell.run('echo 3 >/proc/sys/vm/drop_caches');
  assert.equal((await shell.run('dd if=/dev/vda of=/dev/null bs=4k count=64 2>/dev/null; echo done')).trim(), 'done');
  assert.ok((await metrics()).block.rootfs.read_ops > reads, 'reads by the guest are counted');

  // PATCH /drives: a bigger image replaces the drive's file under the running guest.
  const bigger = path.join(dir, 'bigger.img');
  fs.writeFileSync(bigger, Buffer.alloc(2 << 20, 0xa5));
  await put('/drives/rootfs', { drive_id: 'rootfs', path_on_host: bigger }, 'PATCH');
  assert.equal((await shell.run('sleep 1; cat /sys/block/vda/size')).trim(), '4096', 'the guest sees the new capacity');
  await shell.run('echo 3 >/proc/sys/vm/drop_caches');
  assert.equal((await shell.run('dd if=/dev/vda bs=512 skip=3000 count=1 2>/dev/null|od -An -tx1|head -1')).trim().split(/\s+/)[0], 'a5', 'and reads the new file');
  // Growing the same file and PATCHing without a path re-reads its size.
  fs.truncateSync(bigger, 3 << 20);
  await put('/drives/rootfs', { drive_id: 'rootfs' }, 'PATCH');
  assert.equal((await shell.run('sleep 1; cat /sys/block/vda/size')).trim(), '6144');
  // PUT /vm.resize-disk (Cloud Hypervisor-like): the VMM grows the file itself; shrinking is refused.
  // A loop in the guest's shell waits for the new size: the time from the request to its output
  // is how long the guest takes to see it. (The shell is not used after this: poweroff follows.)
  shell.vm.send('while [ "$(cat /sys/block/vda/size)" = 6144 ]; do :; done; echo SEEN-$((4096*2))\n');
  await new Promise((r) => setTimeout(r, 1500));
  const from = shell.vm.stdout.length;
  const t0 = performance.now();
  await put('/vm.resize-disk', { id: 'rootfs', desired_size: 4 << 20 });
  assert.equal(fs.statSync(bigger).size, 4 << 20, 'the VMM extended the image');
  await shell.vm.waitFor('SEEN-8192', from, 30_000);
  t.diagnostic(`PUT /vm.resize-disk 3 -> 4 MiB: the guest's /sys/block/vda/size showed it ${(performance.now() - t0).toFixed(0)} ms after the request`);
  const shrink = await curl('PUT', '/vm.resize-disk', { id: 'rootfs', desired_size: 1 << 20 });
  assert.equal(JSON.parse(shrink.body).fault_message, `drive "rootfs" is ${4 << 20} bytes; shrinking it to ${1 << 20} bytes is not supported (it would cut off the guest's data)`);
  assert.equal(fs.statSync(bigger).size, 4 << 20);
  const gone = await curl('PATCH', '/drives/rootfs', { drive_id: 'rootfs', path_on_host: path.join(dir, 'nope.img') });
  assert.equal(JSON.parse(gone.body).fault_message, `disk "${path.join(dir, 'nope.img')}" does not exist`);

  await put('/actions', { action_type: 'FlushMetrics' });
  assert.equal((await api(sock, 'GET', '/vm/config')).status, 200);

  // poweroff ends the VMM with 0; the socket file goes, a last metrics line is written.
  shell.sendLast('poweroff -f');
  const exit = await vmm.waitExit(POWEROFF_MS);
  assert.equal(exit.code, 0, vmm.describe());
  assert.equal(fs.existsSync(sock), false, 'the API socket is removed');
  const lines = fs.readFileSync(path.join(dir, 'metrics.json'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Metrics);
  assert.ok(lines.length >= 2, 'FlushMetrics and the stop each wrote a line');
  assert.equal(lines[lines.length - 1].state, 'Stopped');
  const log = fs.readFileSync(path.join(dir, 'vmm.log'), 'utf8');
  for (const what of ['VM started', 'VM paused', 'VM resumed', 'drive image replaced', 'VM stopped']) assert.ok(log.includes(`"msg":"${what}"`), `the log has "${what}"`);
});

test('vmm --config-file starts the VM with no API call; the console on a Unix socket takes `vessel console`; SIGTERM ends both and removes the sockets', { timeout: TEST_MS }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = tempDir(t, 'vessel-vmm-cfg-');
  const consoleSock = path.join(dir, 'console.sock');
  const apiSock = path.join(dir, 'api.sock');
  const config = path.join(dir, 'vm.json');
  fs.writeFileSync(config, JSON.stringify({
    'boot-source': { kernel_image_path: image.kernel, initrd_path: image.initrd },
    'machine-config': { vcpu_count: 1, mem_size_mib: 128 },
    serial: { vessel_console: `unix:${consoleSock}` },
  }));
  const vmm = new VesselProcess(process.execPath, [CLI, 'vmm', '--config-file', config, '--api-sock', apiSock], { cwd: dir });
  t.after(() => vmm.kill());
  for (let i = 0; i < 600 && !fs.existsSync(consoleSock); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(fs.existsSync(consoleSock), `the console socket appears\n${vmm.describe()}`);
  const client = new VesselProcess(process.execPath, [CLI, 'console', consoleSock], { cwd: dir });
  t.after(() => client.kill());
  await client.waitFor('Linux version', 0, BOOT_MS);
  assert.equal(vmm.stdout, '', 'the serial console is not on the VMM\'s stdout');
  const info = await api(apiSock, 'GET', '/');
  assert.equal((info.body as { state: string }).state, 'Running', 'the config file started the VM');
  const cfg = (await api(apiSock, 'GET', '/vm/config')).body as { serial: unknown };
  assert.deepEqual(cfg.serial, { vessel_console: `unix:${consoleSock}` });
  vmm.child.kill('SIGTERM');
  assert.equal((await vmm.waitExit(30_000)).code, 143);
  assert.equal((await client.waitExit(30_000)).code, 0, 'the console client ends when the VMM goes');
  assert.equal(fs.existsSync(consoleSock), false, 'the console socket is removed');
  assert.equal(fs.existsSync(apiSock), false, 'the API socket is removed');
});

test('vmm: serial_out_path sends the console to a file', { timeout: TEST_MS }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = tempDir(t, 'vessel-vmm-serial-');
  const { vmm, sock } = await startVmm(dir);
  t.after(() => vmm.kill());
  const out = path.join(dir, 'serial.log');
  for (const [url, body] of [
    ['/boot-source', { kernel_image_path: image.kernel, initrd_path: image.initrd }],
    ['/serial', { serial_out_path: out }],
    ['/actions', { action_type: 'InstanceStart' }],
  ] as const) assert.equal((await api(sock, 'PUT', url, body)).status, 204, url);
  for (let i = 0; i < 1200 && !fs.readFileSync(out, 'utf8').includes('Linux version'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(fs.readFileSync(out, 'utf8'), /Linux version 7\./);
  assert.equal(vmm.stdout, '');
  vmm.child.kill('SIGTERM');
  assert.equal((await vmm.waitExit(30_000)).code, 143);
});
