// `vessel run --net` without booting: the spec parser, and the CLI's error paths (exit code 2
// with one line for a person) for bad specs, bad user-network settings, a TAP that is busy,
// a device that is not a TAP, and no permission.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { NetOptionError, parseNetOption } from '../src/vmm/net-option.js';
import { TapBackend, TUN_DEVICE } from '../src/net/tap.js';
import { BOOT_MARKER } from '../images/build-image.js';
import { BOOT_MS, CLI, COMMAND_MS, initramfsOnly, REPO_ROOT, ShellSession, TEST_MS, VesselProcess } from './vessel-cli.js';

let dir = '';
/** Non-empty, so `vessel run` gets past its file checks to opening the network (it is no kernel). */
let kernel = '';

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-net-cli-'));
  kernel = path.join(dir, 'not-a-kernel');
  fs.writeFileSync(kernel, 'not a kernel');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const isRoot = process.getuid?.() === 0;
const hasTun = fs.existsSync(TUN_DEVICE);

function vessel(args: string[], opts: { withoutNetAdmin?: boolean } = {}): { code: number | null; stdout: string; stderr: string } {
  // Without CAP_NET_ADMIN in the bounding set, neither vessel nor its socat may create a TAP.
  const [cmd, argv] = opts.withoutNetAdmin
    ? ['setpriv', ['--bounding-set=-net_admin', process.execPath, CLI, ...args]]
    : [process.execPath, [CLI, ...args]];
  const r = spawnSync(cmd, argv, { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000, input: '' });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Like vessel(), without blocking this process's event loop (which serves a socket meanwhile). */
function vesselAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    let stdout = '', stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function assertBadInput(r: { code: number | null; stdout: string; stderr: string }, message: RegExp): void {
  assert.equal(r.code, 2, `exit code 2 (bad input); stderr:\n${r.stderr}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /^\s+at |internal error/m, `a message, not a stack trace:\n${r.stderr}`);
  assert.equal(r.stdout, '', 'no guest started');
}

test('parseNetOption: user with its settings passed through, tap=NAME, passt, mac= for each', () => {
  assert.deepEqual(parseNetOption('user'), { kind: 'user', settings: '', mac: undefined });
  assert.deepEqual(parseNetOption('user,hostfwd=tcp:127.0.0.1:2222-:22,mac=52:54:00:00:00:09,hostfwd=tcp::8080-:80'),
    { kind: 'user', settings: 'hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp::8080-:80', mac: '52:54:00:00:00:09' });
  assert.deepEqual(parseNetOption('tap=vtap0'), { kind: 'tap', ifname: 'vtap0', mac: undefined });
  assert.deepEqual(parseNetOption('tap=br-0.1_x,mac=02:00:00:00:00:01'), { kind: 'tap', ifname: 'br-0.1_x', mac: '02:00:00:00:00:01' });
  assert.deepEqual(parseNetOption('passt'), { kind: 'passt', mac: undefined });
  assert.deepEqual(parseNetOption('passt,mac=02:00:00:00:00:02'), { kind: 'passt', mac: '02:00:00:00:00:02' });
  const bad: [string, RegExp][] = [
    ['', /unknown network ""/],
    ['socket,listen=:1234', /unknown network "socket" \(expected user\[,hostfwd=\.\.\.\]\[,mac=\.\.\.\], tap=NAME\[,mac=\.\.\.\] or passt\[,mac=\.\.\.\]\)/],
    ['passt,hostfwd=tcp::22-:22', /unknown setting "hostfwd=tcp::22-:22" for passt/],
    ['tap', /tap needs a device name, tap=NAME/],
    ['tap=', /the TAP device name is empty/],
    ['tap=sixteen-chars-xx', /longer than 15 characters/],
    ['tap=a/b', /is not valid/],
    ['tap=a b', /is not valid/],
    ['tap=..', /is not valid/],
    ['tap=vtap0,script=no', /unknown setting "script=no" for tap/],
    ['tap=vtap0,mac=52:54:00:12:34', /not six hex octets/],
    ['user,mac=01:00:5e:00:00:01', /multicast/],
    ['user,mac=52:54:00:00:00:01,mac=52:54:00:00:00:02', /mac= is given twice/],
  ];
  for (const [spec, message] of bad) {
    assert.throws(() => parseNetOption(spec), (e: unknown) => e instanceof NetOptionError && message.test(e.message), `--net "${spec}"`);
  }
});

test('vessel run --net: bad specs exit 2 before anything starts', () => {
  assertBadInput(vessel(['run', '--kernel', kernel, '--net', 'bogus']), /--net "bogus": unknown network "bogus"/);
  assertBadInput(vessel(['run', '--kernel', kernel, '--net', 'tap=no/slash']), /TAP device name "no\/slash" is not valid/);
  assertBadInput(vessel(['run', '--kernel', kernel, '--net', 'user', '--net', 'tap=x,vhost=on']), /unknown setting "vhost=on" for tap/);
  assertBadInput(vessel(['run', '--kernel', kernel, '--net', 'user,mac=ff:ff:ff:ff:ff:ff']), /multicast/);
});

test('vessel run --net none: only alone', () => {
  assertBadInput(vessel(['run', '--kernel', kernel, '--net', 'none', '--net', 'user']), /--net none means no network device; it cannot be combined with other --net options/);
});

test('vessel run without --net has the user-mode network as eth0 (as QEMU); --net none has no network device', { timeout: TEST_MS }, async (t) => {
  for (const [args, expected] of [[[], /^eth0$/m], [['--net', 'none'], /^no-eth0$/m]] as const) {
    const vm = VesselProcess.cli(['run', ...initramfsOnly(), ...args]);
    t.after(() => vm.kill());
    const shell = new ShellSession(vm, BOOT_MARKER);
    await shell.waitForShell(BOOT_MS);
    const out = await shell.run('ls /sys/class/net | grep -x eth0 || echo no-eth0', COMMAND_MS);
    assert.match(out, expected, `${args.join(' ') || 'no --net'}: ${out}`);
    vm.kill();
    await vm.exited;
  }
});

test('vessel run --net user,<bad setting>: the user network\'s own message, exit 2', () => {
  assertBadInput(vessel(['run', '--kernel', kernel, '--net', 'user,restrict=on']), /--net user: unknown setting "restrict=on"/);
  assertBadInput(vessel(['run', '--kernel', kernel, '--net', 'user,hostfwd=tcp:127.0.0.1:99999-:22']), /host port 99999 is out of range/);
});

test('vessel run --net user,hostfwd=... on a host port in use: exit 2 before the guest starts', async () => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const { port } = taken.address() as net.AddressInfo;
  try {
    const r = await vesselAsync(['run', '--kernel', kernel, '--net', `user,hostfwd=tcp:127.0.0.1:${port}-:22`]);
    assertBadInput(r, new RegExp(`127\\.0\\.0\\.1:${port}`));
  } finally {
    taken.close();
  }
});

test('vessel run --net tap=lo: a device that is not a TAP, exit 2', (t) => {
  if (!hasTun) { t.skip(`${TUN_DEVICE} is missing on this host`); return; }
  const r = vessel(['run', '--kernel', kernel, '--net', 'tap=lo']);
  assertBadInput(r, isRoot ? /lo exists and is not a TAP device/ : /no permission to open \/dev\/net\/tun; run as root/);
});

test('vessel run --net tap=NAME without permission: exit 2, "run as root"', (t) => {
  if (!hasTun) { t.skip(`${TUN_DEVICE} is missing on this host`); return; }
  // As root, run without CAP_NET_ADMIN; otherwise this process has no permission already.
  const r = vessel(['run', '--kernel', kernel, '--net', 'tap=vsl-noperm0'], { withoutNetAdmin: isRoot });
  assertBadInput(r, isRoot
    ? /TAP vsl-noperm0: not permitted; run as root \(with CAP_NET_ADMIN\), or create it for your user first \(ip tuntap add dev vsl-noperm0 mode tap user \$USER\)/
    : /TAP vsl-noperm0: no permission to open \/dev\/net\/tun; run as root/);
});

test('vessel run --net tap=NAME while another program holds the TAP: exit 2, "busy"', async (t) => {
  if (!hasTun) { t.skip(`${TUN_DEVICE} is missing on this host`); return; }
  if (!isRoot) { t.skip('creating a TAP needs root'); return; }
  // The first opener creates the (non-persistent) TAP and holds it while the CLI tries.
  const holder = await TapBackend.open('vsl-busy0');
  try {
    assertBadInput(vessel(['run', '--kernel', kernel, '--net', 'tap=vsl-busy0']), /TAP vsl-busy0 is busy: another VM or program is attached to it/);
  } finally {
    holder.close();
  }
});
