// `vessel vmm` options for the host daemon and fixes users asked for, with one boot: a
// --config-file with paths relative to its own folder, started from another working directory,
// its console on a Unix socket plus --console-log (the log holds the whole boot while nobody is
// attached); a snapshot of it loaded by a VMM in a third directory (the snapshot stores absolute
// paths) whose metrics all count from the load (instructions too); the guest's poweroff -f there
// leaves an --exit-file record. Without a boot: --exit-file after SIGTERM and after a failed
// --config-file start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

import { ensureDefaultImage } from '../images/build-image.js';
import { api, startVmm, tempDir, waitForApi } from './vmm-client.js';
import { BOOT_MS, CLI, COMMAND_MS, POWEROFF_MS, PROMPT, TEST_MS, VesselProcess } from './vessel-cli.js';

const MARKER = 'VESSEL-INIT-OK';

interface Metrics { uptime_ms: number; vcpu: { instructions_retired: number }[]; block: Record<string, { read_ops: number }> }

function readExitFile(file: string): { exit_code: number; stop: string; reason: string; at: string } {
  const text = fs.readFileSync(file, 'utf8');
  assert.match(text, /^\{.*\}\n$/, 'one JSON line');
  assert.equal(fs.existsSync(`${file}.tmp`), false, 'written to PATH.tmp and renamed');
  const r = JSON.parse(text) as { exit_code: number; stop: string; reason: string; at: string };
  assert.ok(Math.abs(Date.parse(r.at) - Date.now()) < 120_000, `"at" is an ISO time of now: ${r.at}`);
  return r;
}

async function waitForText(read: () => string, what: RegExp, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!what.test(read())) {
    if (performance.now() > deadline) throw new Error(`no ${what} within ${timeoutMs / 1000} s; got:\n${read().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('vmm: config-file paths relative to the file, --console-log beside a unix console, a snapshot loaded elsewhere with metrics from the load, --exit-file at poweroff', { timeout: TEST_MS }, async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const root = tempDir(t, 'vessel-vmm-opts-');
  const cfgDir = path.join(root, 'vm');
  const cwd1 = path.join(root, 'elsewhere');
  const cwd2 = path.join(root, 'third');
  for (const d of [cfgDir, cwd1, cwd2]) fs.mkdirSync(d);
  fs.symlinkSync(image.kernel, path.join(cfgDir, 'Image'));
  fs.symlinkSync(image.initrd, path.join(cfgDir, 'initrd.cpio.gz'));
  fs.writeFileSync(path.join(cfgDir, 'data.img'), Buffer.alloc(1 << 20));
  fs.writeFileSync(path.join(cfgDir, 'vm.json'), JSON.stringify({
    'boot-source': { kernel_image_path: 'Image', initrd_path: 'initrd.cpio.gz', boot_args: 'console=ttyS0' },
    'machine-config': { vcpu_count: 1, mem_size_mib: 128 },
    drives: [{ drive_id: 'data', path_on_host: 'data.img', is_root_device: false }],
    serial: { vessel_console: 'unix:console.sock' },
    metrics: { metrics_path: 'metrics.json' },
  }));
  const sock1 = path.join(root, 'api1.sock');
  const log = path.join(root, 'console.log');
  const first = new VesselProcess(process.execPath, [CLI, 'vmm', '--config-file', '../vm/vm.json', '--api-sock', sock1, '--console-log', log], { cwd: cwd1 });
  t.after(() => first.kill());
  await waitForApi(first, sock1);
  // The console socket is in the config file's folder, not in the working directory.
  const consoleSock = path.join(cfgDir, 'console.sock');
  assert.ok(fs.lstatSync(consoleSock).isSocket(), 'unix:console.sock is relative to the config file');
  assert.ok(fs.existsSync(path.join(cfgDir, 'metrics.json')), 'so is metrics_path');
  assert.equal(fs.statSync(log).mode & 0o777, 0o644, '--console-log is created with mode 0644');
  // Nobody is attached to the socket: the log still gets everything.
  await waitForText(() => fs.readFileSync(log, 'latin1'), new RegExp(`${MARKER}[\\s\\S]*${PROMPT.replace(/[$]/g, '\\$')}`), BOOT_MS);
  const client = net.connect(consoleSock);
  t.after(() => client.destroy());
  let seen = '';
  client.on('data', (c: Buffer) => { seen += c.toString('latin1'); });
  await waitForText(() => seen, new RegExp(MARKER), COMMAND_MS); // the socket's backlog
  client.write('echo typed-$((6*7))\n');
  await waitForText(() => fs.readFileSync(log, 'latin1'), /typed-42/, COMMAND_MS);
  await waitForText(() => seen, /typed-42/, COMMAND_MS);

  const m1 = (await api(sock1, 'GET', '/metrics')).body as Metrics;
  await api(sock1, 'PATCH', '/vm', { state: 'Paused' });
  const snapRel = 'vm.snap';
  const r = await api(sock1, 'PUT', '/snapshot/create', { snapshot_path: snapRel, mem_file_path: 'vm.mem' });
  assert.equal(r.status, 204, r.text);
  const before = (await api(sock1, 'GET', '/metrics')).body as Metrics;
  assert.ok(before.vcpu[0].instructions_retired >= m1.vcpu[0].instructions_retired);
  first.kill();
  await first.exited;

  // A VMM in a third directory: the snapshot's paths are absolute, so it finds kernel and disk.
  const exitFile = path.join(root, 'exit.json');
  const second = await startVmm(cwd2, ['--exit-file', exitFile]);
  t.after(() => second.vmm.kill());
  const load = await api(second.sock, 'PUT', '/snapshot/load', { snapshot_path: path.join(cwd1, snapRel), mem_backend: { backend_type: 'File', backend_path: path.join(cwd1, 'vm.mem') } });
  assert.equal(load.status, 204, load.text);
  const cfg = (await api(second.sock, 'GET', '/vm/config')).body as { 'boot-source': { kernel_image_path: string }; drives: { path_on_host: string }[] };
  assert.equal(cfg['boot-source'].kernel_image_path, path.join(cfgDir, 'Image'));
  assert.equal(cfg.drives[0].path_on_host, path.join(cfgDir, 'data.img'));
  // Every counter starts at the load: instructions too, not only uptime and the disks.
  const m2 = (await api(second.sock, 'GET', '/metrics')).body as Metrics;
  assert.equal(m2.vcpu[0].instructions_retired, 0, 'no instruction retired yet in this VMM (paused after the load)');
  assert.equal(m2.block.data.read_ops, 0);
  assert.ok(m2.uptime_ms < 60_000);
  await api(second.sock, 'PATCH', '/vm', { state: 'Resumed' });
  second.vmm.send('\n');
  await second.vmm.waitFor(PROMPT, 0, COMMAND_MS);
  const m3 = (await api(second.sock, 'GET', '/metrics')).body as Metrics;
  assert.ok(m3.vcpu[0].instructions_retired > 0 && m3.vcpu[0].instructions_retired < before.vcpu[0].instructions_retired,
    `instructions since the load (${m3.vcpu[0].instructions_retired}), not since the first boot (${before.vcpu[0].instructions_retired})`);
  second.vmm.send('poweroff -f\n');
  const exit = await second.vmm.waitExit(POWEROFF_MS);
  assert.equal(exit.code, 0, second.vmm.describe());
  const record = readExitFile(exitFile);
  assert.equal(record.exit_code, 0);
  assert.equal(record.stop, 'poweroff');
  assert.equal(record.reason, 'the guest powered off');
});

test('vmm --exit-file: SIGTERM and a failed --config-file start are recorded', async (t) => {
  const dir = tempDir(t, 'vessel-vmm-exit-');
  const exitFile = path.join(dir, 'exit.json');
  const { vmm } = await startVmm(dir, ['--exit-file', exitFile]);
  t.after(() => vmm.kill());
  vmm.child.kill('SIGTERM');
  assert.equal((await vmm.exited).code, 143);
  assert.deepEqual(({ ...readExitFile(exitFile), at: undefined }), { exit_code: 143, stop: 'signal', reason: 'the VMM was stopped by SIGTERM', at: undefined });

  fs.writeFileSync(path.join(dir, 'nokernel.json'), JSON.stringify({ 'machine-config': { vcpu_count: 1, mem_size_mib: 128 } }));
  const failed = new VesselProcess(process.execPath, [CLI, 'vmm', '--config-file', 'nokernel.json', '--exit-file', exitFile], { cwd: dir });
  t.after(() => failed.kill());
  assert.equal((await failed.exited).code, 2, failed.describe());
  const r = readExitFile(exitFile);
  assert.equal(r.exit_code, 2);
  assert.equal(r.stop, 'error');
  assert.match(r.reason, /^--config-file "nokernel.json": InstanceStart: no boot source/);
});
