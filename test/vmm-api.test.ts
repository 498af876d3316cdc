// The VMM's REST API without booting a guest: a real `vessel vmm` process on a real Unix socket,
// every endpoint's success and error paths (precise 400 fault_messages), the OpenAPI document
// matching the served routes, --config-file and --console usage errors, and signal cleanup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { ApiSpec } from '../src/vmm/api/spec.js';
import { apiOperations } from '../src/vmm/api/operations.js';
import { Vmm } from '../src/vmm/vmm.js';
import { ensureDefaultImage } from '../images/build-image.js';
import { api, faultOf, startVmm, tempDir } from './vmm-client.js';
import { CLI, REPO_ROOT, VesselProcess } from './vessel-cli.js';

test('the OpenAPI document lists exactly the operations the VMM serves, each with a request schema where it takes a body', () => {
  const spec = new ApiSpec();
  const handlers = apiOperations(new Vmm('test', { kind: 'stdio' }, () => {}));
  assert.deepEqual(spec.operations.map((o) => o.id).sort(), Object.keys(handlers).sort());
  const routes = spec.operations.map((o) => `${o.method.toUpperCase()} ${o.path}`).sort();
  for (const r of ['GET /', 'PUT /actions', 'PUT /boot-source', 'PUT /machine-config', 'GET /machine-config', 'PUT /drives/{drive_id}', 'PATCH /drives/{drive_id}',
    'PUT /network-interfaces/{iface_id}', 'PATCH /vm', 'PUT /snapshot/create', 'PUT /snapshot/load', 'GET /vm/config', 'PUT /logger', 'PUT /metrics', 'GET /metrics', 'PUT /serial']) {
    assert.ok(routes.includes(r), `${r} is in the document`);
  }
  for (const op of spec.operations) {
    assert.equal(op.body !== undefined, op.method !== 'get', `${op.id}: a body schema exactly for PUT/PATCH`);
    // Compiles every validator (they are compiled on first use): a bad schema throws here.
    assert.equal(op.body?.validate([]) ?? false, false, `${op.id}: an array is no valid body`);
    for (const p of op.params) assert.equal(p.validate('rootfs'), true, `${op.id}: "rootfs" is a valid ${p.name}`);
  }
  assert.equal(spec.validator('FullVmConfiguration')({}), true, 'an empty config file is valid');
});

test('vmm API: configuration endpoints accept valid requests and refuse bad ones with 400 and a precise fault_message', async (t) => {
  const dir = tempDir(t);
  const { vmm, sock } = await startVmm(dir, ['--id', 'api-test']);
  t.after(() => vmm.kill());
  const kernel = path.join(dir, 'kernel');
  fs.writeFileSync(kernel, 'not a kernel, but a non-empty file');
  fs.writeFileSync(path.join(dir, 'empty'), '');
  fs.writeFileSync(path.join(dir, 'disk.img'), Buffer.alloc(1 << 20));
  fs.writeFileSync(path.join(dir, 'data.img'), Buffer.alloc(1 << 20));
  fs.writeFileSync(path.join(dir, 'tiny.img'), Buffer.alloc(100));
  fs.mkdirSync(path.join(dir, 'subdir'));
  const fault = async (method: string, url: string, body: unknown, expected: RegExp | string): Promise<void> => {
    const msg = faultOf(await api(sock, method, url, body));
    if (typeof expected === 'string') assert.equal(msg, expected, `${method} ${url} ${JSON.stringify(body)}`);
    else assert.match(msg, expected, `${method} ${url} ${JSON.stringify(body)}`);
  };
  const ok = async (method: string, url: string, body?: unknown): Promise<unknown> => {
    const r = await api(sock, method, url, body);
    assert.ok(r.status === 204 || r.status === 200, `${method} ${url} ${JSON.stringify(body)}: ${r.status} ${r.text}`);
    if (r.status === 204) assert.equal(r.text, '');
    return r.body;
  };

  assert.deepEqual(await ok('GET', '/'), { app_name: 'vessel', id: 'api-test', state: 'Not started', vmm_version: '0.1.0' });

  // Routing and JSON.
  await fault('POST', '/boot-source', { kernel_image_path: kernel }, 'invalid request method and/or path: POST /boot-source');
  await fault('GET', '/no/such/path', undefined, 'invalid request method and/or path: GET /no/such/path');
  await fault('PUT', '/boot-source', '{"kernel_image_path": ', /^the request body is not valid JSON: /);
  await fault('PUT', '/boot-source', undefined, 'PUT /boot-source needs a JSON body');
  await fault('PUT', '/boot-source', '[1,2]', 'the request body must be a JSON object, got an array');
  await fault('PUT', '/logger', JSON.stringify({ level: 'x'.repeat(70_000) }), /body is too large|Request body is too large/i);

  // PUT /boot-source
  await fault('PUT', '/boot-source', {}, 'missing required field "kernel_image_path"');
  await fault('PUT', '/boot-source', { kernel_image_path: 7 }, 'field "kernel_image_path" must be a string, got an integer');
  await fault('PUT', '/boot-source', { kernel_image_path: '' }, 'field "kernel_image_path" must not be empty');
  await fault('PUT', '/boot-source', { kernel_image_path: kernel, kernel_path: 'x' }, 'unknown field "kernel_path" (known fields: kernel_image_path, initrd_path, boot_args)');
  await fault('PUT', '/boot-source', { kernel_image_path: path.join(dir, 'missing') }, `kernel "${path.join(dir, 'missing')}" does not exist`);
  await fault('PUT', '/boot-source', { kernel_image_path: path.join(dir, 'subdir') }, `kernel "${path.join(dir, 'subdir')}" is a directory, not a file`);
  await fault('PUT', '/boot-source', { kernel_image_path: path.join(dir, 'empty') }, `kernel "${path.join(dir, 'empty')}" is empty`);
  await fault('PUT', '/boot-source', { kernel_image_path: kernel, initrd_path: 'nope.cpio' }, 'initrd "nope.cpio" does not exist');
  await fault('PUT', '/boot-source', { kernel_image_path: kernel, boot_args: ['console=ttyS0'] }, 'field "boot_args" must be a string, got an array');
  await ok('PUT', '/boot-source', { kernel_image_path: kernel, boot_args: 'console=ttyS0 quiet' });

  // /machine-config
  assert.deepEqual(await ok('GET', '/machine-config'), { vcpu_count: 1, mem_size_mib: 128, smt: false, max_vcpus: 1 });
  await fault('PUT', '/machine-config', { vcpu_count: 2 }, 'missing required field "mem_size_mib"');
  await fault('PUT', '/machine-config', { vcpu_count: 0, mem_size_mib: 128 }, 'field "vcpu_count" must be >= 1, got 0');
  await fault('PUT', '/machine-config', { vcpu_count: 65, mem_size_mib: 128 }, 'field "vcpu_count" must be <= 64, got 65');
  await fault('PUT', '/machine-config', { vcpu_count: 1.5, mem_size_mib: 128 }, 'field "vcpu_count" must be an integer, got a number');
  await fault('PUT', '/machine-config', { vcpu_count: '2', mem_size_mib: 128 }, 'field "vcpu_count" must be an integer, got a string');
  await fault('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 8 }, 'field "mem_size_mib" must be >= 16, got 8');
  await fault('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 4096 }, 'field "mem_size_mib" must be <= 2048, got 4096');
  await fault('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128, smt: true }, /smt cannot be enabled/);
  await fault('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128, cpu_template: 'T2' }, /^unknown field "cpu_template"/);
  // max_vcpus (Cloud Hypervisor's name): the board's harts, at least vcpu_count, vcpu_count when omitted.
  await fault('PUT', '/machine-config', { vcpu_count: 2, mem_size_mib: 128, max_vcpus: 1 }, 'max_vcpus 1 is less than vcpu_count 2: the board must have at least the harts the guest is given');
  await fault('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128, max_vcpus: 65 }, 'field "max_vcpus" must be <= 64, got 65');
  await ok('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128, max_vcpus: 4 });
  assert.deepEqual(await ok('GET', '/machine-config'), { vcpu_count: 1, mem_size_mib: 128, smt: false, max_vcpus: 4 });
  await fault('PATCH', '/machine-config', { vcpu_count: 5 }, 'max_vcpus 4 is less than vcpu_count 5: the board must have at least the harts the guest is given');
  await ok('PUT', '/machine-config', { vcpu_count: 2, mem_size_mib: 256 });
  await ok('PATCH', '/machine-config', { mem_size_mib: 64 });
  await fault('PATCH', '/machine-config', { mem_size_mib: null }, 'field "mem_size_mib" must be an integer, got null');
  assert.deepEqual(await ok('GET', '/machine-config'), { vcpu_count: 2, mem_size_mib: 64, smt: false, max_vcpus: 2 });
  // PUT /vm.resize (Cloud Hypervisor's): only on a started VM.
  await fault('PUT', '/vm.resize', { desired_vcpus: 2 }, 'PUT /vm.resize is only possible after InstanceStart; the VM is not started');
  await fault('PUT', '/vm.resize', { desired_vcpus: 0 }, 'field "desired_vcpus" must be >= 1, got 0');
  await fault('PUT', '/vm.resize', { desired_ram: 64 << 20 }, 'PUT /vm.resize is only possible after InstanceStart; the VM is not started');
  await fault('PUT', '/vm.resize', {}, 'PUT /vm.resize needs desired_vcpus, desired_ram or both');
  await fault('PUT', '/vm.resize', { desired_vcpus: 1, desired_disk: 1 << 30 }, /^unknown field "desired_disk"/);

  // /drives
  await fault('PUT', '/drives/root-fs', { drive_id: 'root-fs', path_on_host: 'disk.img', is_root_device: true }, /^path parameter drive_id is "root-fs", which is not valid: Letters, digits and underscores/);
  await fault('PUT', '/drives/rootfs', { drive_id: 'other', path_on_host: 'disk.img', is_root_device: true }, 'drive_id "other" in the body does not match "rootfs" in the path');
  await fault('PUT', '/drives/rootfs', { drive_id: 'rootfs', path_on_host: 'disk.img' }, 'missing required field "is_root_device"');
  await fault('PUT', '/drives/rootfs', { drive_id: 'rootfs', path_on_host: 'disk.img', is_root_device: 'yes' }, 'field "is_root_device" must be a boolean (true or false), got a string');
  await fault('PUT', '/drives/rootfs', { drive_id: 'rootfs', path_on_host: 'missing.img', is_root_device: true }, 'disk "missing.img" does not exist');
  await fault('PUT', '/drives/rootfs', { drive_id: 'rootfs', path_on_host: 'tiny.img', is_root_device: true }, 'disk "tiny.img" is smaller than one 512-byte sector');
  await fault('PUT', '/drives/rootfs', { drive_id: 'rootfs', path_on_host: 'disk.img', is_root_device: true, cache_type: 'Unsafe' }, /^unknown field "cache_type"/);
  await ok('PUT', '/drives/rootfs', { drive_id: 'rootfs', path_on_host: 'disk.img', is_root_device: true });
  await fault('PUT', '/drives/data', { drive_id: 'data', path_on_host: 'disk.img', is_root_device: true }, 'drive "rootfs" is already the root device; only one drive can be');
  await ok('PUT', '/drives/data', { drive_id: 'data', path_on_host: 'data.img', is_root_device: false, is_read_only: true });
  await fault('PATCH', '/drives/data', { drive_id: 'data', path_on_host: 'data.img' }, 'PATCH /drives/data is only possible after InstanceStart; the VM is not started');
  await fault('PUT', '/vm.resize-disk', { id: 'rootfs', desired_size: 1 << 20 }, 'PUT /vm.resize-disk is only possible after InstanceStart; the VM is not started');
  await fault('PUT', '/vm.resize-disk', { id: 'rootfs', desired_size: 1000 }, /^field "desired_size" must be a multiple of 512/);
  await fault('PUT', '/vm.resize-disk', { id: 'rootfs' }, 'missing required field "desired_size"');

  // /network-interfaces
  await fault('PUT', '/network-interfaces/eth0', { iface_id: 'eth0' }, 'a network interface needs exactly one of host_dev_name (a TAP device) or vessel_user_network');
  await fault('PUT', '/network-interfaces/eth0', { iface_id: 'eth0', host_dev_name: 'tap0', vessel_user_network: {} }, 'a network interface needs exactly one of host_dev_name (a TAP device) or vessel_user_network');
  await fault('PUT', '/network-interfaces/eth0', { iface_id: 'eth0', host_dev_name: 'a-very-long-tap-device-name' }, /^field "host_dev_name" is "a-very-long-tap-device-name", which is not valid: Name of a TAP device/);
  await fault('PUT', '/network-interfaces/eth0', { iface_id: 'eth0', host_dev_name: 'tap0', guest_mac: '06:00:AC:10:00' }, /^field "guest_mac" is "06:00:AC:10:00", which is not valid/);
  await fault('PUT', '/network-interfaces/eth0', { iface_id: 'eth0', host_dev_name: 'tap0', guest_mac: '01:00:5e:00:00:01' }, 'guest_mac 01:00:5e:00:00:01 is a multicast address (lowest bit of the first byte set)');
  await fault('PUT', '/network-interfaces/eth0', { iface_id: 'eth1', host_dev_name: 'tap0' }, 'iface_id "eth1" in the body does not match "eth0" in the path');
  await fault('PUT', '/network-interfaces/eth0', { iface_id: 'eth0', vessel_user_network: { host_forwards: 'tcp::2222-:22' } }, 'field "vessel_user_network.host_forwards" must be an array, got a string');
  await fault('PUT', '/network-interfaces/eth0', { iface_id: 'eth0', vessel_user_network: { host_forwards: ['tcp::99999-:22'] } }, 'network interface "eth0": hostfwd=tcp::99999-:22: host port 99999 is out of range (0-65535)');
  await fault('PUT', '/network-interfaces/eth0', { iface_id: 'eth0', vessel_user_network: { host_forwards: ['udp::5353-:53'] } }, 'network interface "eth0": hostfwd=udp::5353-:53: only tcp forwarding is supported');

  // /logger
  await fault('PUT', '/logger', { level: 'Verbose' }, /^field "level" must be one of "Error", "Warning", "Info", "Debug", "Trace", "Off"/);
  await fault('PUT', '/logger', { log_path: path.join(dir, 'subdir') }, `log file "${path.join(dir, 'subdir')}" is a directory`);
  await fault('PUT', '/logger', { log_path: path.join(dir, 'no', 'log') }, /^log file ".*no\/log" cannot be opened: ENOENT/);
  await ok('PUT', '/logger', { log_path: 'vmm.log', level: 'debug', show_level: true, show_log_origin: true });

  // /metrics
  await fault('PUT', '/metrics', {}, 'missing required field "metrics_path"');
  await fault('PUT', '/metrics', { metrics_path: path.join(dir, 'no', 'm') }, /^metrics file ".*no\/m" cannot be opened: ENOENT/);
  await fault('PUT', '/actions', { action_type: 'FlushMetrics' }, /^FlushMetrics: no metrics sink: PUT \/metrics first/);
  await ok('PUT', '/metrics', { metrics_path: 'metrics.json' });
  await fault('PUT', '/metrics', { metrics_path: 'metrics2.json' }, 'metrics are already written to "metrics.json"; the sink can be set once');
  await ok('PUT', '/actions', { action_type: 'FlushMetrics' });
  const line = JSON.parse(fs.readFileSync(path.join(dir, 'metrics.json'), 'utf8').trim().split('\n').pop() as string) as { state: string; vcpu: unknown[] };
  assert.equal(line.state, 'Not started');
  assert.deepEqual(line.vcpu, []);

  // /serial and /entropy
  await fault('PUT', '/serial', { serial_out_path: path.join(dir, 'no', 'serial') }, /^serial output file ".*no\/serial" cannot be opened: ENOENT/);
  await fault('PUT', '/serial', { vessel_console: `pty:${path.join(dir, 'no', 'tty')}` }, /^pty link ".*no\/tty": directory ".*no" does not exist/);
  await fault('PUT', '/serial', { vessel_console: 'tcp:1234' }, /^field "vessel_console" is "tcp:1234", which is not valid/);
  await fault('PUT', '/serial', { vessel_console: `unix:${path.join(dir, 'no', 's')}` }, /^console socket ".*no\/s": directory ".*no" does not exist/);
  await fault('PUT', '/serial', { serial_out_path: 'a', vessel_console: 'stdio' }, 'give serial_out_path or vessel_console, not both');
  await ok('PUT', '/serial', { serial_out_path: 'serial.txt' });
  await fault('PUT', '/entropy', { rate_limiter: {} }, 'unknown field "rate_limiter" (no fields are allowed)');
  await ok('PUT', '/entropy', {});

  // /vm and /actions before the start
  await fault('PATCH', '/vm', { state: 'Paused' }, 'Pausing is only possible after InstanceStart; the VM is not started');
  await fault('PATCH', '/vm', { state: 'Resumed' }, 'Resuming is only possible after InstanceStart; the VM is not started');
  await fault('PATCH', '/vm', { state: 'paused' }, 'field "state" must be one of "Paused", "Resumed"; got "paused"');
  await fault('PATCH', '/vm', { state: 'Paused', vessel_advance_clock: true }, 'vessel_advance_clock goes with "state": "Resumed" only');
  await fault('PUT', '/actions', { action_type: 'Reboot' }, 'field "action_type" must be one of "FlushMetrics", "InstanceStart", "SendCtrlAltDel"; got "Reboot"');
  await fault('PUT', '/actions', { action_type: 'SendCtrlAltDel' }, /^SendCtrlAltDel is an x86 keyboard action/);
  await fault('PUT', '/snapshot/create', { mem_file_path: 'm', snapshot_path: 's' }, 'PUT /snapshot/create: the VM must be paused first (PATCH /vm {"state": "Paused"}); it is not started');
  await fault('PUT', '/snapshot/create', { snapshot_path: 's' }, 'missing required field "mem_file_path"');
  await fault('PUT', '/snapshot/load', { snapshot_path: 's', mem_backend: { backend_type: 'File', backend_path: 'm' }, resume_vm: true },
    /^PUT \/snapshot\/load: loading a snapshot is not allowed after boot configuration/);

  // GET /vm/config shows what was configured, in the --config-file shape.
  assert.deepEqual(await ok('GET', '/vm/config'), {
    'boot-source': { kernel_image_path: kernel, boot_args: 'console=ttyS0 quiet' },
    'machine-config': { vcpu_count: 2, mem_size_mib: 64, smt: false, max_vcpus: 2 },
    drives: [
      { drive_id: 'rootfs', path_on_host: 'disk.img', is_root_device: true },
      { drive_id: 'data', path_on_host: 'data.img', is_root_device: false, is_read_only: true },
    ],
    'network-interfaces': [],
    logger: { log_path: 'vmm.log', level: 'debug', show_level: true, show_log_origin: true },
    metrics: { metrics_path: 'metrics.json' },
    serial: { serial_out_path: 'serial.txt' },
    entropy: {},
  });

  // InstanceStart with a file that is no RISC-V kernel: refused, and the VM is still configurable.
  await fault('PUT', '/actions', { action_type: 'InstanceStart' }, /^InstanceStart: .*kernel.*/);
  assert.equal((await ok('GET', '/') as { state: string }).state, 'Not started');
  const image = await ensureDefaultImage({ quiet: true });
  await ok('PUT', '/boot-source', { kernel_image_path: image.kernel });
  await ok('PATCH', '/machine-config', { mem_size_mib: 16 });
  await fault('PUT', '/actions', { action_type: 'InstanceStart' }, /^InstanceStart: guest memory of 16 MiB is too small for this kernel and initrd: use at least \d+ MiB$/);
  await ok('PUT', '/network-interfaces/eth0', { iface_id: 'eth0', vessel_user_network: { host_forwards: ['tcp:127.0.0.1:0-:22'] }, guest_mac: '06:00:AC:10:00:02' });
  await fault('PUT', '/network-interfaces/eth1', { iface_id: 'eth1', host_dev_name: 'tap1', guest_mac: '06:00:ac:10:00:02' }, 'guest_mac 06:00:ac:10:00:02 is already used by interface "eth0"');
  // The user network is opened for InstanceStart and closed again when the board cannot be built.
  await fault('PUT', '/actions', { action_type: 'InstanceStart' }, /^InstanceStart: guest memory of 16 MiB is too small/);
  assert.equal((await ok('GET', '/') as { state: string }).state, 'Not started');

  // The log has the requests, with level and origin as asked.
  const log = fs.readFileSync(path.join(dir, 'vmm.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(log.some((l) => l.msg === 'request refused' && l.level === 'info' && l.origin === 'api'), 'refused requests are logged');
  assert.ok(log.every((l) => l.id === 'api-test'));
  assert.equal(vmm.exit, null, 'the VMM is still running');
  assert.equal(vmm.stderr, '', 'nothing on stderr');
});

test('vmm API: PUT /vm.resize on a started VM sets the vCPU allotment within max_vcpus; GET /machine-config, /vm/config and /metrics follow; desired_ram without a balloon is a 409, a bad size a 400', async (t) => {
  const image = await ensureDefaultImage({ quiet: true });
  const dir = tempDir(t);
  const { vmm, sock } = await startVmm(dir, ['--console', `file:${path.join(dir, 'serial.txt')}`]);
  t.after(() => vmm.kill());
  const ok = async (method: string, url: string, body?: unknown): Promise<unknown> => {
    const r = await api(sock, method, url, body);
    assert.ok(r.status === 204 || r.status === 200, `${method} ${url} ${JSON.stringify(body)}: ${r.status} ${r.text}`);
    return r.body;
  };
  await ok('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128, max_vcpus: 2 });
  await ok('PUT', '/boot-source', { kernel_image_path: image.kernel, initrd_path: image.initrd });
  await ok('PUT', '/actions', { action_type: 'InstanceStart' });
  const vcpus = async () => ({ config: await ok('GET', '/machine-config'), metrics: (await ok('GET', '/metrics') as { vcpus: unknown }).vcpus });
  assert.deepEqual(await vcpus(), { config: { vcpu_count: 1, mem_size_mib: 128, smt: false, max_vcpus: 2 }, metrics: { max: 2, allotted: 1, online: 1 } });
  assert.equal(faultOf(await api(sock, 'PUT', '/vm.resize', { desired_vcpus: 3 })), 'desired_vcpus 3 is more than the VM\'s max_vcpus 2 (the harts its device tree lists, fixed at boot)');
  assert.equal(faultOf(await api(sock, 'PATCH', '/machine-config', { vcpu_count: 2 })), 'PATCH /machine-config is only possible before InstanceStart; the VM is Running');
  // Paused, so that the booting guest cannot bring hart 1 up meanwhile: online stays 1.
  await ok('PATCH', '/vm', { state: 'Paused' });
  await ok('PUT', '/vm.resize', { desired_vcpus: 2 });
  assert.deepEqual(await vcpus(), { config: { vcpu_count: 2, mem_size_mib: 128, smt: false, max_vcpus: 2 }, metrics: { max: 2, allotted: 2, online: 1 } });
  assert.deepEqual((await ok('GET', '/vm/config') as Record<string, unknown>)['machine-config'], { vcpu_count: 2, mem_size_mib: 128, smt: false, max_vcpus: 2 });
  await ok('PUT', '/vm.resize', { desired_vcpus: 1 });
  assert.deepEqual((await vcpus()).metrics, { max: 2, allotted: 1, online: 1 });
  // desired_ram (Cloud Hypervisor's, bytes) moves the balloon: this VM has none (409), and a bad
  // size is a 400 before that; a refused request changes the vCPUs in it neither.
  const noBalloon = await api(sock, 'PUT', '/vm.resize', { desired_vcpus: 2, desired_ram: 64 << 20 });
  assert.deepEqual({ status: noBalloon.status, body: noBalloon.body }, { status: 409, body: { fault_message: 'PUT /vm.resize: desired_ram needs a balloon device, and this VM has none (PUT /balloon before InstanceStart); its memory stays 128 MiB' } });
  assert.match(faultOf(await api(sock, 'PUT', '/vm.resize', { desired_ram: 256 << 20 })), /^desired_ram 256 MiB is more than the VM's memory at boot \(mem_size_mib 128\)/);
  assert.match(faultOf(await api(sock, 'PUT', '/vm.resize', { desired_ram: 32 << 20 })), /^desired_ram 32 MiB is below 64 MiB/);
  assert.equal(faultOf(await api(sock, 'PUT', '/vm.resize', { desired_ram: (64 << 20) + 4096 })), `desired_ram ${(64 << 20) + 4096} is not a whole number of MiB (the balloon moves in MiB)`);
  assert.deepEqual((await vcpus()).metrics, { max: 2, allotted: 1, online: 1 });
  assert.equal(vmm.exit, null, 'the VMM is still running');
});

test('vmm API: curl speaks to it like Firecracker\'s getting-started flow (form-encoded -d bodies are read as JSON)', async (t) => {
  const dir = tempDir(t);
  const { vmm, sock } = await startVmm(dir);
  t.after(() => vmm.kill());
  const curl = (...args: string[]) => spawnSync('curl', ['-sS', '--unix-socket', sock, '-w', '\n%{http_code}', ...args], { encoding: 'utf8' });
  const r1 = curl('-X', 'PUT', 'http://localhost/machine-config', '-H', 'Accept: application/json', '-H', 'Content-Type: application/json', '-d', '{"vcpu_count": 1, "mem_size_mib": 128}');
  assert.equal(r1.error, undefined, 'curl runs (test/setup.sh installs it)');
  assert.equal(r1.stdout, '\n204', r1.stderr);
  const r2 = curl('-X', 'PUT', 'http://localhost/machine-config', '-d', '{"vcpu_count": "two", "mem_size_mib": 128}');
  assert.equal(r2.stdout, '{"fault_message":"field \\"vcpu_count\\" must be an integer, got a string"}\n400');
  const r3 = curl('http://localhost/');
  assert.match(r3.stdout, /^\{"app_name":"vessel","id":"anonymous-instance","state":"Not started","vmm_version":"[^"]+"\}\n200$/);
});

function runCli(args: string[], cwd = REPO_ROOT): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 60_000, input: '' });
  return { status: r.status, stderr: r.stderr };
}

test('vessel vmm: bad options, config files and sockets are usage errors (exit 2) with the reason', async (t) => {
  const dir = tempDir(t);
  const write = (name: string, content: unknown): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
    return p;
  };
  const cases: [string[], RegExp][] = [
    [['vmm'], /vessel vmm needs --api-sock PATH, --config-file FILE, or both/],
    [['vmm', '--config-file', path.join(dir, 'missing.json')], /--config-file ".*missing.json" cannot be read: ENOENT/],
    [['vmm', '--config-file', write('bad.json', '{"boot-source": ')], /--config-file ".*bad.json" is not valid JSON/],
    [['vmm', '--config-file', write('unknown.json', { 'boot-source': { kernel_image_path: 'k' }, vsock: {} })], /--config-file ".*unknown.json": unknown field "vsock" \(known fields: boot-source, machine-config, drives/],
    [['vmm', '--config-file', write('type.json', { 'machine-config': { vcpu_count: 1, mem_size_mib: '128' } })], /--config-file ".*type.json": field "machine-config.mem_size_mib" must be an integer, got a string/],
    [['vmm', '--config-file', write('drive.json', { drives: [{ drive_id: 'rootfs', path_on_host: 'nope.img', is_root_device: true }] })], /--config-file ".*drive.json": disk ".*\/nope.img" does not exist/], // relative to the file's folder
    [['vmm', '--config-file', write('nokernel.json', { 'machine-config': { vcpu_count: 1, mem_size_mib: 128 } })], /--config-file ".*nokernel.json": InstanceStart: no boot source: PUT \/boot-source first/],
    [['vmm', '--api-sock', path.join(dir, 'api.sock'), '--console', 'serial0'], /--console: console "serial0" is not one of stdio, file:PATH, unix:PATH, pty, pty:LINK/],
    [['vmm', '--api-sock', path.join(dir, 'no', 'api.sock')], /--api-sock ".*no\/api.sock": directory ".*no" does not exist/],
    [['vmm', '--api-sock', write('regular', 'x')], /--api-sock ".*regular" exists and is not a socket/],
    [['console', path.join(dir, 'nothing.sock')], /console ".*nothing.sock": no such socket/],
  ];
  for (const [args, expected] of cases) {
    const r = runCli(args, dir);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, expected, args.join(' '));
  }
  assert.equal(fs.readFileSync(path.join(dir, 'regular'), 'utf8'), 'x', 'a regular file at --api-sock is left alone');
});

test('vessel vmm: SIGTERM and SIGINT end it with 128+signal and remove the API socket; a stale socket file is replaced', async (t) => {
  const dir = tempDir(t);
  for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    const { vmm, sock } = await startVmm(dir);
    t.after(() => vmm.kill());
    vmm.child.kill(signal);
    const exit = await vmm.waitExit(30_000);
    assert.equal(exit.code, code, vmm.describe());
    assert.equal(fs.existsSync(sock), false, `${signal}: the socket file is removed`);
  }
  // A socket file left by a killed VMM does not stop the next one.
  const first = await startVmm(dir);
  first.vmm.child.kill('SIGKILL');
  await first.vmm.exited;
  assert.ok(fs.lstatSync(first.sock).isSocket(), 'SIGKILL leaves the socket file behind');
  const second = await startVmm(dir);
  t.after(() => second.vmm.kill());
  assert.equal((await api(second.sock, 'GET', '/')).status, 200);
  // ... but a live one is refused.
  const third = new VesselProcess(process.execPath, [CLI, 'vmm', '--api-sock', second.sock], { cwd: dir });
  const exit = await third.waitExit(30_000);
  assert.equal(exit.code, 2);
  assert.match(third.stderr, /--api-sock ".*api.sock" is in use by another server/);
});
