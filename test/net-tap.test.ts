// virtio-net over TAP end to end: two real guests, each `vessel run --net tap=...`, whose TAPs
// are ports of one Linux bridge. The guests see eth0 with the MAC they were given, ping each
// other, and the bridge's own address answers them and pings them back.
//
// Everything happens inside a network namespace the test creates (bridge, TAPs, the VMs'
// loopback UDP relays, the host-side pings), so no packet reaches the machine's real network
// and leftovers never collide with the host's interfaces. Needs root and /dev/net/tun; without
// them the test is skipped with the reason.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

import { BOOT_MARKER, ensureDefaultImage } from '../images/build-image.js';
import { TUN_DEVICE } from '../src/net/tap.js';
import { BOOT_MS, CLI, COMMAND_MS, initramfsOnly, POWEROFF_MS, ShellSession, TEST_MS, VesselProcess } from './vessel-cli.js';

const NETNS = 'vessel-net-test';
const BRIDGE = 'br-vessel';
const HOST_IP = '192.168.77.254';
const VMS = [
  { tap: 'vtap0', mac: '52:54:00:77:00:01', ip: '192.168.77.1' },
  { tap: 'vtap1', mac: '52:54:00:77:00:02', ip: '192.168.77.2' },
];

const running: VesselProcess[] = [];
after(() => { for (const vm of running) vm.kill(); });

/** Runs `ip ...` inside the test's namespace. */
function inNs(...args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', NETNS, ...args], { encoding: 'utf8' });
}

/** The namespace's own ping (iputils) to a guest; its whole output, whatever the outcome. */
function pingFromHost(ip: string): string {
  const r = spawnSync('ip', ['netns', 'exec', NETNS, 'ping', '-c', '3', '-W', '10', ip], { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}${r.error ? String(r.error) : ''}`;
}

function deleteNamespace(): void {
  // Deleting the namespace deletes the bridge and the TAPs in it.
  try { execFileSync('ip', ['netns', 'del', NETNS], { stdio: 'ignore' }); } catch { /* not there */ }
}

test('TAP: two VMs on one bridge ping each other and the host; eth0 has the given MAC', { timeout: TEST_MS }, async (t) => {
  if (!fs.existsSync(TUN_DEVICE)) { t.skip(`${TUN_DEVICE} is missing: no TAP devices on this host`); return; }
  if (process.getuid?.() !== 0) { t.skip('creating a bridge and TAP devices needs root'); return; }
  await ensureDefaultImage({ quiet: true });

  deleteNamespace(); // a leftover of an interrupted run
  execFileSync('ip', ['netns', 'add', NETNS]);
  t.after(deleteNamespace);
  inNs('ip', 'link', 'set', 'lo', 'up'); // the TAP relays talk over 127.0.0.1
  inNs('ip', 'link', 'add', BRIDGE, 'type', 'bridge');
  inNs('ip', 'addr', 'add', `${HOST_IP}/24`, 'dev', BRIDGE);
  inNs('ip', 'link', 'set', BRIDGE, 'up');
  for (const { tap } of VMS) {
    inNs('ip', 'tuntap', 'add', 'dev', tap, 'mode', 'tap');
    inNs('ip', 'link', 'set', tap, 'master', BRIDGE);
    inNs('ip', 'link', 'set', tap, 'up');
  }

  const shells = VMS.map(({ tap, mac }) => {
    const vm = new VesselProcess('ip', ['netns', 'exec', NETNS, process.execPath, CLI, 'run', ...initramfsOnly(), '--cpus', '1', '--memory', '256M', '--net', `tap=${tap},mac=${mac}`]);
    running.push(vm);
    return new ShellSession(vm, BOOT_MARKER);
  });
  await Promise.all(shells.map((s) => s.waitForShell(BOOT_MS)));

  for (const [i, shell] of shells.entries()) {
    const { mac, ip } = VMS[i];
    const address = await shell.run('cat /sys/class/net/eth0/address', COMMAND_MS);
    assert.match(address, new RegExp(`^${mac}$`, 'm'), `VM ${i}: eth0 has its MAC: ${address}`);
    await shell.run(`ip addr add ${ip}/24 dev eth0 && ip link set eth0 up && echo up-ok`, COMMAND_MS);
  }

  const [a, b] = shells;
  const aToB = await a.run(`ping -c 3 -W 10 ${VMS[1].ip}`, COMMAND_MS);
  assert.match(aToB, /3 packets transmitted, 3 packets received, 0% packet loss/, `VM 0 pings VM 1:\n${aToB}`);
  const bToHost = await b.run(`ping -c 3 -W 10 ${HOST_IP}`, COMMAND_MS);
  assert.match(bToHost, /3 packets transmitted, 3 packets received, 0% packet loss/, `VM 1 pings the bridge:\n${bToHost}`);
  for (const { ip } of VMS) {
    const fromHost = pingFromHost(ip);
    assert.match(fromHost, /3 packets transmitted, 3 received, 0% packet loss/, `the bridge pings ${ip}:\n${fromHost}`);
  }
  // Bigger than one small frame: a 1472-byte payload fills the 1500-byte MTU exactly.
  const full = await a.run(`ping -c 2 -s 1472 -W 10 ${VMS[1].ip}`, COMMAND_MS);
  assert.match(full, /2 packets transmitted, 2 packets received/, `full-MTU ping:\n${full}`);

  for (const shell of shells) shell.sendLast('poweroff');
  for (const [i, shell] of shells.entries()) {
    const exit = await shell.vm.waitExit(POWEROFF_MS);
    assert.equal(exit.code, 0, `VM ${i}: poweroff exits 0\n${shell.vm.describe()}`);
  }
  // With both VMs gone their relays go too (socat ends on SIGTERM a moment later): the TAPs
  // are free for the next user.
  const detached = (links: string) => VMS.every(({ tap }) => new RegExp(`${tap}:.*NO-CARRIER`).test(links));
  let links = inNs('ip', '-o', 'link', 'show', 'master', BRIDGE);
  for (let i = 0; i < 50 && !detached(links); i++) {
    await new Promise((r) => setTimeout(r, 100));
    links = inNs('ip', '-o', 'link', 'show', 'master', BRIDGE);
  }
  assert.ok(detached(links), `no one is attached to the TAPs 5 s after exit:\n${links}`);
});
