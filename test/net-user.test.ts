// `vessel run --net user,hostfwd=...` end to end, in one boot of the default initramfs: the
// guest gets its address by DHCP (busybox udhcpc), pings the gateway, resolves a name through
// 10.0.2.3, fetches a token and a 2 MiB file from a node:http server on the host's loopback
// through 10.0.2.2 (sha256 compared), uploads it back (as base64 text), and serves HTTP (busybox httpd)
// that the host reaches through the forwarded port. The user network offers the guest checksum
// and segmentation offloads, so these transfers also check them (the sha256s; and the driver
// took them: the negotiated feature bits). The same VM has `--net passt` as eth1: with eth0
// down, the guest takes a lease from passt and fetches the token and the 2 MiB file again.
//
// passt is Debian's package (test/setup.sh installs it); without it the test fails saying so.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';

import { BOOT_MARKER, ensureDefaultImage } from '../images/build-image.js';
import { BOOT_MS, COMMAND_MS, freePort, initramfsOnly, POWEROFF_MS, ShellSession, TEST_MS, VesselProcess } from './vessel-cli.js';

const running: VesselProcess[] = [];
const servers: http.Server[] = [];
after(() => {
  for (const vm of running) vm.kill();
  for (const s of servers) s.close();
});

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** The host's side: /token, /big (2 MiB of random bytes), POST /upload answers with the body's sha256 and length. */
async function hostServer(token: string, big: Buffer): Promise<number> {
  const server = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/upload') {
      const hash = createHash('sha256');
      let length = 0;
      req.on('data', (d: Buffer) => { hash.update(d); length += d.length; });
      req.on('end', () => res.end(`${hash.digest('hex')} ${length}\n`));
      return;
    }
    if (req.url === '/token') return res.end(token);
    if (req.url === '/big') {
      res.writeHead(200, { 'content-length': big.length });
      return res.end(big);
    }
    res.writeHead(404).end();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: 60_000 }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} through the forwarded port timed out`)));
    req.on('error', reject);
  });
}

/** udhcpc's script: apply the lease (address, netmask, router, DNS) it passes in its environment. */
const DHCP_SCRIPT = [
  '#!/bin/sh',
  'case "$1" in',
  '  bound|renew)',
  '    ifconfig "$interface" "$ip" netmask "$subnet" up',
  '    for r in $router; do route add default gw "$r" dev "$interface"; done',
  '    for d in $dns; do echo "nameserver $d"; done > /etc/resolv.conf;;',
  'esac',
].join('\\n');

/** virtio-net feature bits (virtio 1.2 §5.1.3) the user network offers; the guest's sysfs lists the negotiated ones. */
const OFFLOAD_BITS = { CSUM: 0, GUEST_CSUM: 1, GUEST_TSO4: 7, HOST_TSO4: 11, MRG_RXBUF: 15 };

test('--net user: DHCP, ping, DNS, wget from a host server via 10.0.2.2 (2 MiB intact), upload, hostfwd into a guest httpd; then --net passt on eth1', { timeout: TEST_MS }, async (t) => {
  const passt = spawnSync('passt', ['--version'], { encoding: 'utf8' });
  assert.ok(!passt.error, `--net passt needs Debian's passt: run \`apt-get install passt\` (or bash test/setup.sh) (${passt.error?.message})`);
  await ensureDefaultImage({ quiet: true });
  const token = `host-token-${randomBytes(8).toString('hex')}`;
  const guestToken = `guest-token-${randomBytes(8).toString('hex')}`;
  const big = randomBytes(2 * 1024 * 1024);
  const port = await hostServer(token, big);
  const forwarded = await freePort();

  const vm = VesselProcess.cli(['run', ...initramfsOnly(), '--net', `user,hostfwd=tcp:127.0.0.1:${forwarded}-:8080`, '--net', 'passt']);
  running.push(vm);
  const shell = new ShellSession(vm, BOOT_MARKER);
  await shell.waitForShell(BOOT_MS);

  await shell.run(`printf '${DHCP_SCRIPT}\\n' > /tmp/dhcp.sh && chmod +x /tmp/dhcp.sh`, COMMAND_MS);
  const dhcp = await shell.run('ip link set eth0 up && udhcpc -i eth0 -s /tmp/dhcp.sh -n -q -t 5 -T 3 2>&1; echo dhcp-rc=$?', COMMAND_MS);
  assert.match(dhcp, /^dhcp-rc=0$/m, `udhcpc got a lease: ${dhcp}`);
  assert.match(dhcp, /lease of 10\.0\.2\.15 obtained from 10\.0\.2\.2/, dhcp);
  const config = await shell.run('ip -4 addr show dev eth0; ip route; cat /etc/resolv.conf', COMMAND_MS);
  assert.match(config, /inet 10\.0\.2\.15\/24/, `eth0 has the leased address: ${config}`);
  assert.match(config, /^default via 10\.0\.2\.2 dev eth0/m, `default route via the gateway: ${config}`);
  assert.match(config, /^nameserver 10\.0\.2\.3$/m, `DNS from the lease: ${config}`);

  // The driver took the offloads (the device offers them only on the user network): sysfs shows
  // the negotiated bits as a string of 0s and 1s, bit 0 first.
  const features = await shell.run('for d in /sys/class/net/eth0/device /sys/class/net/eth1/device; do echo "features=$(cat $d/features)"; done', COMMAND_MS);
  const [userBits, passtBits] = [...features.matchAll(/^features=([01]+)$/gm)].map((m) => m[1]);
  assert.ok(userBits && passtBits, `both devices' features: ${features}`);
  for (const [name, bit] of Object.entries(OFFLOAD_BITS)) {
    assert.equal(userBits[bit], '1', `eth0 (user) negotiated ${name}: ${userBits}`);
    assert.equal(passtBits[bit], '0', `eth1 (passt) was not offered ${name}: ${passtBits}`);
  }

  const ping = await shell.run('ping -c 2 -W 10 10.0.2.2', COMMAND_MS);
  assert.match(ping, /2 packets transmitted, 2 packets received/, `ping 10.0.2.2: ${ping}`);
  const dns = await shell.run('nslookup localhost 2>&1', COMMAND_MS);
  assert.match(dns, /Address:\s+127\.0\.0\.1/, `10.0.2.3 resolves a name with the host's resolver: ${dns}`);

  const fetched = await shell.run(`wget -q -O - http://10.0.2.2:${port}/token; echo; echo wget-rc=$?`, COMMAND_MS);
  assert.match(fetched, new RegExp(`^${token}$`, 'm'), `the host server's token: ${fetched}`);
  const startBig = vm.elapsed();
  const download = await shell.run(`wget -q -O /tmp/big http://10.0.2.2:${port}/big && sha256sum /tmp/big`, COMMAND_MS);
  const downloadSeconds = vm.elapsed() - startBig;
  assert.match(download, new RegExp(`^${sha256(big)}  /tmp/big$`, 'm'), `2 MiB arrive intact: ${download}`);
  // busybox wget posts a file as a C string (up to its first NUL): upload it as base64 text.
  const upload = await shell.run(`base64 /tmp/big > /tmp/big.b64 && wc -c < /tmp/big.b64 && sha256sum /tmp/big.b64 && wget -q -O - --post-file /tmp/big.b64 http://10.0.2.2:${port}/upload`, COMMAND_MS);
  const [, uploadLength, uploadHash] = /^(\d+)\n([0-9a-f]{64})  \/tmp\/big.b64$/m.exec(upload) ?? [];
  assert.ok(uploadHash && Number(uploadLength) > 2_700_000, `the guest's base64 file: ${upload}`);
  assert.match(upload, new RegExp(`^${uploadHash} ${uploadLength}$`, 'm'), `the upload arrives intact on the host: ${upload}`);

  const httpd = await shell.run(`mkdir -p /tmp/www && echo ${guestToken} > /tmp/www/index.html && httpd -p 8080 -h /tmp/www && echo httpd-rc=$?`, COMMAND_MS);
  assert.match(httpd, /^httpd-rc=0$/m, `busybox httpd started: ${httpd}`);
  const fromGuest = await httpGet(forwarded, '/index.html');
  assert.equal(fromGuest.status, 200);
  assert.equal(fromGuest.body.trim(), guestToken, 'the host reached the guest\'s httpd through the forwarded port');

  // --net passt: eth0 goes down, eth1 takes passt's lease (the same addresses as the user network).
  const startPasst = vm.elapsed();
  const passtDhcp = await shell.run('ip addr flush dev eth0 && ip link set eth0 down && ip link set eth1 up && udhcpc -i eth1 -s /tmp/dhcp.sh -n -q -t 5 -T 3 2>&1; echo dhcp-rc=$?', COMMAND_MS);
  assert.match(passtDhcp, /^dhcp-rc=0$/m, `udhcpc got a lease from passt: ${passtDhcp}`);
  assert.match(passtDhcp, /lease of 10\.0\.2\.15 obtained/, passtDhcp);
  const viaPasst = await shell.run(`ip route; wget -q -O - http://10.0.2.2:${port}/token; echo; wget -q -O /tmp/big2 http://10.0.2.2:${port}/big && sha256sum /tmp/big2`, COMMAND_MS);
  assert.match(viaPasst, /^default via 10\.0\.2\.2 dev eth1/m, `the default route goes through passt: ${viaPasst}`);
  assert.match(viaPasst, new RegExp(`^${token}$`, 'm'), `the host server's token through passt: ${viaPasst}`);
  assert.match(viaPasst, new RegExp(`^${sha256(big)}  /tmp/big2$`, 'm'), `2 MiB arrive intact through passt: ${viaPasst}`);
  const passtSeconds = vm.elapsed() - startPasst;

  shell.sendLast('poweroff');
  const exit = await vm.waitExit(POWEROFF_MS);
  assert.equal(exit.code, 0, `poweroff makes vessel exit 0\n${vm.describe()}`);
  assert.doesNotMatch(vm.stdout, /Kernel panic|Oops|BUG:/);
  assert.doesNotMatch(vm.stderr, /internal-error/, `the user network had no internal error: ${vm.stderr}`);
  assert.doesNotMatch(vm.stderr, /passt ended/, `passt ran until the VM ended: ${vm.stderr}`);
  t.diagnostic(`--net user: prompt at ${shell.promptSeconds.toFixed(1)} s, 2 MiB download ${downloadSeconds.toFixed(1)} s (incl. sha256sum); --net passt: lease and 2 MiB ${passtSeconds.toFixed(1)} s; exit at ${exit.seconds.toFixed(1)} s`);
});
