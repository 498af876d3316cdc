// Tenants, quotas and metering of `vessel host`, end to end through `vessel tenant`, `vessel vm`
// (with VESSEL_TOKEN) and the API over TCP: a tenant sees only its VMs (another's is a 404), is
// held to its quotas with a sentence that names the quota and the excess, cannot name host
// files; tokens are stored hashed and replaced at once; a VM that ran a few seconds is metered
// (vCPU-seconds allotted = vCPUs x the time it ran) and priced by GET /usage with the host's
// prices file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { WebSocket } from 'ws';

import { ensureDefaultImage } from '../images/build-image.js';
import { freePort, TEST_MS } from './vessel-cli.js';
import { cli, removeStateDir, shortStateDir, startHost, until } from './host-cli.js';

const run = promisify(execFile);


async function ok(dir: string, args: string[], token?: string): Promise<string> {
  const r = await cli(dir, args, token);
  assert.equal(r.code, 0, `vessel ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

test('host tenants: isolation, quotas, hashed tokens, metering and usage prices', { timeout: TEST_MS }, async (t) => {
  await ensureDefaultImage({ quiet: true });
  // Rows every 8 s: the VM below runs about 4 s, mostly between two rows, and must be counted to the second.
  process.env['VESSEL_METER_INTERVAL_MS'] = '8000';
  const dir = shortStateDir('vt-');
  const port = await freePort();
  const prices = path.join(dir, 'prices.yaml');
  fs.writeFileSync(prices, 'currency: CHF\nvcpu_hour: 36\nmemory_gib_hour: 3.6\ndedicated_server: { name: big, monthly: 730, vcpus: 2, memory_gib: 1 }\n');
  const host = await startHost(dir, ['--listen', `127.0.0.1:${port}`, '--prices', prices]);
  t.after(() => { host.kill(); removeStateDir(dir); });
  const readAdminToken = (): string => fs.readFileSync(path.join(dir, 'token'), 'utf8').trim();
  const api = (p: string, token: string, init: RequestInit = {}) =>
    fetch(`http://127.0.0.1:${port}${p}`, { ...init, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...(init.headers ?? {}) } });

  // The admin (the socket's owner, no token) makes two tenants; each token is shown once.
  const acmeOut = await ok(dir, ['tenant', 'create', 'acme', '--vcpus', '2', '--memory', '384M', '--vms', '2']);
  const acme = /Token:\s+(\S+)/.exec(acmeOut)?.[1] as string;
  assert.ok(acme, acmeOut);
  const beta = JSON.parse(await ok(dir, ['tenant', 'create', 'beta', '--json'])).token as string;
  assert.match(await ok(dir, ['tenant', 'list']), /acme\s+\S+\s+0 \/ 2\s+0 \/ 2\s+0 \/ 384/);
  let r = await cli(dir, ['tenant', 'create', 'acme']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /a tenant named "acme" already exists/);

  // Tokens are kept as hashes: neither appears in the database files.
  const db = ['host.db', 'host.db-wal'].map((f) => path.join(dir, f)).filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f).toString('latin1')).join('');
  assert.ok(db.includes('acme') && !db.includes(acme) && !db.includes(beta), 'the store has the tenants but not their tokens');

  // A tenant creates from the host's images only, within its quotas.
  await ok(dir, ['vm', 'create', 'a1', '--image', 'initramfs', '--memory', '128M', '--net', 'none', '--no-start'], acme);
  r = await cli(dir, ['vm', 'create', 'a2', '--image', 'initramfs', '--vcpus', '2', '--memory', '128M', '--net', 'none', '--no-start'], acme);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /tenant "acme" is over the vCPU quota of 2 vCPUs \(it has 1 vCPU and VM "a2" needs 2 vCPUs more: 1 vCPU over\)/);
  r = await cli(dir, ['vm', 'create', 'a2', '--image', 'initramfs', '--memory', '512M', '--net', 'none', '--no-start'], acme);
  assert.match(r.stderr, /over the memory quota of 384 MiB .* 256 MiB over/);
  r = await cli(dir, ['vm', 'create', 'a2', '--kernel', '/etc/passwd', '--no-start'], acme);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /a tenant cannot give "kernel" \(a file on the host\)/);
  await ok(dir, ['vm', 'create', 'a2', '--image', 'initramfs', '--memory', '128M', '--net', 'none', '--no-start'], acme);
  r = await cli(dir, ['vm', 'create', 'a3', '--image', 'initramfs', '--memory', '64M', '--net', 'none', '--no-start'], acme);
  assert.match(r.stderr, /over the VM count quota of 2 VMs \(it has 2 VMs and VM "a3" needs 1 VM more: 1 VM over\)/);
  let res = await api('/vms', acme, { method: 'POST', body: JSON.stringify({ name: 'a3', image: 'initramfs', memory_mib: 64, nets: ['none'], start: false }) });
  assert.equal(res.status, 403, 'over quota is a 403 over TCP too');
  // The admin raises the quotas; the create then fits.
  await ok(dir, ['tenant', 'set', 'acme', '--vms', '3', '--vcpus', '3']);
  await ok(dir, ['vm', 'create', 'a3', '--image', 'initramfs', '--memory', '64M', '--net', 'none', '--no-start'], acme);
  await ok(dir, ['vm', 'delete', 'a3'], acme);

  // Isolation: beta sees none of acme's VMs, and each is "no such VM" to it, exactly as a name nobody has.
  assert.equal(JSON.parse(await ok(dir, ['vm', 'list', '--json'], beta)).length, 0);
  assert.deepEqual(JSON.parse(await ok(dir, ['vm', 'list', '--json'], acme)).map((v: { name: string }) => v.name).sort(), ['a1', 'a2']);
  for (const verb of [['show', 'a1'], ['start', 'a1'], ['delete', 'a1'], ['logs', 'a1']]) {
    r = await cli(dir, ['vm', ...verb], beta);
    assert.equal(r.code, 1, `beta: vm ${verb.join(' ')}`);
    assert.match(r.stderr, /no VM named "a1" \(and no VM has that id\)/);
  }
  const a1 = JSON.parse(await ok(dir, ['vm', 'show', 'a1', '--json'], acme)) as { id: string; tenant: string };
  assert.equal(a1.tenant, 'acme');
  res = await api(`/vms/${a1.id}`, beta);
  assert.equal(res.status, 404);
  const nobody = await api('/vms/zz-nobody', beta);
  assert.deepEqual((await res.json() as { fault_message: string }).fault_message.replace(a1.id, 'X'), (await nobody.json() as { fault_message: string }).fault_message.replace('zz-nobody', 'X'));
  assert.equal((await api('/vms', beta)).status, 200);
  assert.equal((await api('/tenants', beta)).status, 403, 'tenants are the admin\'s');
  assert.equal((await api('/metrics', beta)).status, 403);
  assert.equal((await api('/tenants/acme', beta)).status, 404);
  // The admin sees every VM, with its tenant.
  assert.deepEqual(JSON.parse(await ok(dir, ['vm', 'list', '--json'])).map((v: { tenant: string }) => v.tenant), ['acme', 'acme']);
  assert.match(await ok(dir, ['vm', 'list']), /^ID\s+NAME\s+TENANT\s+STATE[^]*\sa1\s+acme\s+stopped\s/m);

  // Names are unique per tenant, not host-wide: beta may have an "a1" too (a taken name tells it
  // nothing of acme), each tenant sees its own, and the admin sees both and says which by
  // tenant/name: a bare "a1" is ambiguous for it (409 with the forms to use).
  const initramfs = ['--image', 'initramfs', '--memory', '64M', '--net', 'none', '--no-start'];
  await ok(dir, ['vm', 'create', 'a1', ...initramfs], beta);
  r = await cli(dir, ['vm', 'create', 'a1', ...initramfs], beta);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /a VM named "a1" already exists/);
  const betaA1 = JSON.parse(await ok(dir, ['vm', 'show', 'a1', '--json'], beta)) as { id: string; tenant: string };
  assert.equal(betaA1.tenant, 'beta');
  assert.notEqual(betaA1.id, a1.id);
  assert.deepEqual(JSON.parse(await ok(dir, ['vm', 'list', '--json'], beta)).map((v: { id: string }) => v.id), [betaA1.id]);
  assert.deepEqual(JSON.parse(await ok(dir, ['vm', 'show', 'a1', '--json'], acme)).id, a1.id);
  assert.deepEqual(JSON.parse(await ok(dir, ['vm', 'list', '--json'])).map((v: { name: string; tenant: string }) => `${v.tenant}/${v.name}`).sort(), ['acme/a1', 'acme/a2', 'beta/a1']);
  r = await cli(dir, ['vm', 'show', 'a1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /2 tenants have a VM named "a1": say which, as acme\/a1 or beta\/a1 \(or by id\)/);
  assert.equal(JSON.parse(await ok(dir, ['vm', 'show', 'beta/a1', '--json'])).id, betaA1.id);
  assert.equal(((await (await api('/vms/acme%2Fa1', readAdminToken())).json()) as { id: string }).id, a1.id);
  r = await cli(dir, ['vm', 'show', 'beta/a1'], acme);
  assert.match(r.stderr, /no VM named "beta\/a1" \(and no VM has that id\)/, 'another tenant\'s tenant/name is no such VM');
  r = await cli(dir, ['vm', 'show', betaA1.id.slice(0, 4)], acme);
  assert.equal(r.code, 1, 'an id prefix finds only the tenant\'s own VMs');
  await ok(dir, ['vm', 'delete', 'beta/a1']);
  assert.equal(JSON.parse(await ok(dir, ['vm', 'list', '--json'], beta)).length, 0);

  // Snapshots' refusals (test/web-console takes and restores one of a running guest): a stopped
  // VM has no memory to snapshot (409), a snapshot nobody took is a 404 naming the VM's, a bad
  // name is a 400 (exit 2), and another tenant's VM is no such VM.
  assert.deepEqual(JSON.parse(await ok(dir, ['vm', 'snapshots', 'a1', '--json'], acme)), []);
  r = await cli(dir, ['vm', 'snapshot', 'a1', 'first'], acme);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /VM "a1" is stopped: a snapshot holds a running or paused VM's memory; start it first/);
  r = await cli(dir, ['vm', 'restore', 'a1', 'first'], acme);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /VM "a1" has no snapshot named "first" \(it has none\)/);
  r = await cli(dir, ['vm', 'snapshot', 'a1', 'no good'], acme);
  assert.equal(r.code, 2, r.stderr);
  r = await cli(dir, ['vm', 'snapshots', 'a1'], beta);
  assert.match(r.stderr, /no VM named "a1" \(and no VM has that id\)/);

  // The console's WebSocket: a token is needed, another tenant's VM is closed as "no such VM",
  // typing into a stopped VM gets a notice, an oversized message closes the socket (1009).
  const ws = (p: string, token?: string) => new WebSocket(`ws://127.0.0.1:${port}${p}${token ? `?token=${token}` : ''}`);
  const opened = (s: WebSocket) => new Promise<void>((res2, rej) => { s.once('open', () => res2()); s.once('error', rej); });
  const closed = (s: WebSocket) => new Promise<{ code: number; reason: string }>((res2) => s.once('close', (code, reason) => res2({ code, reason: reason.toString() })));
  const unauth = ws('/vms/a1/console');
  unauth.on('error', () => { /* the refused upgrade */ });
  const status = await new Promise<number>((res2) => { unauth.once('unexpected-response', (_req, r) => res2(r.statusCode ?? 0)); unauth.once('open', () => res2(101)); });
  assert.equal(status, 401, 'no WebSocket without a token');
  const foreign = ws('/vms/a1/console', beta);
  assert.deepEqual(await closed(foreign), { code: 4404, reason: 'no VM named "a1" (and no VM has that id)' });
  const own = ws('/vms/a1/console', acme);
  const frames: string[] = [];
  own.on('message', (d: Buffer, isBinary: boolean) => { if (!isBinary) frames.push(d.toString()); });
  await opened(own);
  own.send('ls\n');
  await until('a notice for typing into a stopped VM', () => frames.some((f) => f.startsWith('\u0000') && /VM \\"a1\\" is stopped: typing reaches it while it runs/.test(f)) || undefined, 5000);
  const ownClosed = closed(own);
  own.send(Buffer.alloc(65 * 1024, 0x61));
  assert.equal((await ownClosed).code, 1009, 'a message over 64 KiB closes the socket');

  // Tokens: a wrong one is refused on the socket too; a replaced one at once.
  r = await cli(dir, ['vm', 'list'], 'vt_not-a-token');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /the token is not valid/);
  const beta2 = (await ok(dir, ['tenant', 'token', 'beta'])).trim();
  assert.equal((await api('/vms', beta)).status, 401);
  assert.equal((await api('/vms', beta2)).status, 200);
  // A token with a time to live: refused once it is over, with the reason.
  const brief = (await ok(dir, ['tenant', 'token', 'beta', '--token-ttl', '2s'])).trim();
  assert.equal((await api('/vms', beta2)).status, 401, 'the token it replaced stops working');
  assert.equal((await api('/vms', brief)).status, 200);
  await new Promise((res2) => setTimeout(res2, 2100));
  res = await api('/vms', brief);
  assert.equal(res.status, 401);
  assert.match(((await res.json()) as { fault_message: string }).fault_message, /^the token of tenant "beta" expired at /);
  r = await cli(dir, ['tenant', 'token', 'beta', '--token-ttl', 'soon']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--token-ttl "soon" is not a time such as 90s/);
  const beta3 = (await ok(dir, ['tenant', 'token', 'beta'])).trim();
  r = await cli(dir, ['tenant', 'delete', 'acme']);
  assert.match(r.stderr, /tenant "acme" still has 2 VMs; delete them first/);

  // Metering: a1 runs for a few seconds; its vCPU-seconds allotted are the time it ran.
  const t0 = Date.now();
  await ok(dir, ['vm', 'start', 'a1'], acme);
  const t1 = Date.now();
  await new Promise((res2) => setTimeout(res2, 4000));
  const t2 = Date.now();
  await ok(dir, ['vm', 'stop', 'a1', '--force'], acme);
  const t3 = Date.now();
  type Usage = { prices: { currency: string }; tenants: { tenant: string | null; vms: { vm_name: string; vcpu_seconds_allotted: number; vcpu_seconds_used: number; memory_gib_hours_allotted: number; memory_gib_hours_held: number; cost: { cpu: number; memory: number; total: number } }[]; dedicated: { servers: number; cost: number } }[]; total: number };
  const usage = await until('a1 metered', async () => {
    const u = await (await api('/usage', acme)).json() as Usage;
    const v = u.tenants[0]?.vms.find((x) => x.vm_name === 'a1');
    return v && v.vcpu_seconds_allotted >= (t2 - t1) / 1000 ? { u, v } : undefined;
  }, 20_000);
  const { u, v } = usage;
  assert.equal(u.tenants.length, 1, 'a tenant reads only its own usage');
  assert.equal(u.tenants[0].tenant, 'acme');
  assert.ok(v.vcpu_seconds_allotted >= (t2 - t1) / 1000 - 0.05 && v.vcpu_seconds_allotted <= (t3 - t0) / 1000 + 0.05, `allotted ${v.vcpu_seconds_allotted} s for a VM that ran ${(t2 - t1) / 1000}-${(t3 - t0) / 1000} s`);
  assert.ok(v.vcpu_seconds_used > 0.2, `the booting VM used CPU: ${v.vcpu_seconds_used}`);
  assert.ok(v.memory_gib_hours_held > 0 && v.memory_gib_hours_held <= v.memory_gib_hours_allotted + 1e-6, JSON.stringify(v));
  assert.ok(Math.abs(v.memory_gib_hours_allotted - (v.vcpu_seconds_allotted * 128) / 1024 / 3600) < 1e-4, '128 MiB for as long as its one vCPU');
  // The prices file: 36 CHF per vCPU-hour = 0.01 CHF per vCPU-second.
  assert.equal(u.prices.currency, 'CHF');
  assert.ok(Math.abs(v.cost.cpu - v.vcpu_seconds_allotted * 0.01) < 0.002, `cpu cost ${v.cost.cpu} for ${v.vcpu_seconds_allotted} vCPU-s`);
  assert.equal(u.tenants[0].dedicated.servers, 1);
  assert.ok(u.tenants[0].dedicated.cost > 0);
  const beforeA1 = await (await api(`/usage?to=${new Date(t0 - 60_000).toISOString()}&from=2020-01-01`, acme)).json() as Usage;
  assert.equal(beforeA1.tenants.length, 0, 'nothing is metered before the VM ran');
  assert.equal((await (await api('/usage', beta3)).json() as Usage).tenants.length, 0, 'beta ran nothing');
  assert.equal((await api('/usage?from=yesterday', acme)).status, 400);
  const table = await ok(dir, ['usage']);
  assert.match(table, /acme\s+a1\s+\d+/);
  assert.match(table, /Total: [0-9.]+ CHF/);

  // A root disk of a chosen size: the copy and its ext4 grown before the first boot; a tenant's
  // disk quota is checked before anything is made.
  const sized = JSON.parse(await ok(dir, ['vm', 'create', 'sized', '--disk-size', '512M', '--no-start', '--net', 'none', '--json'])) as { disks: { path: string }[] };
  assert.equal(fs.statSync(sized.disks[0].path).size, 512 << 20);
  const { stdout: sb } = await run('dumpe2fs', ['-h', sized.disks[0].path]);
  const blocks = Number(/^Block count:\s+(\d+)/m.exec(sb)?.[1]), blockSize = Number(/^Block size:\s+(\d+)/m.exec(sb)?.[1]);
  assert.equal(blocks * blockSize, 512 << 20, 'the file system fills the disk');
  await ok(dir, ['vm', 'delete', 'sized']);
  r = await cli(dir, ['vm', 'create', 'sized', '--image', 'initramfs', '--disk-size', '512M', '--no-start']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /disk_mib sizes the VM's own copy of the default root disk/);
  await ok(dir, ['tenant', 'set', 'beta', '--disk', '1G']);
  r = await cli(dir, ['vm', 'create', 'big', '--disk-size', '3G', '--no-start', '--net', 'none'], beta3);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /tenant "beta" is over the disk quota of 1 GiB \(it has 0 GiB and VM "big" needs 3 GiB more: 2 GiB over\)/);
  assert.equal(fs.readdirSync(path.join(dir, 'vms')).length, 2, 'nothing was made for it (a1 and a2 only)');

  // The admin may create a VM for a tenant: it is the tenant's, in its list and its quotas.
  const adminToken = readAdminToken();
  res = await api('/vms', adminToken, { method: 'POST', body: JSON.stringify({ name: 'b1', image: 'initramfs', memory_mib: 64, nets: ['none'], start: false, tenant: 'beta' }) });
  assert.equal(res.status, 201, await res.clone().text());
  assert.deepEqual(((await (await api('/vms', beta3)).json()) as { name: string; tenant: string }[]).map((x) => [x.name, x.tenant]), [['b1', 'beta']]);
  res = await api('/vms', beta3, { method: 'POST', body: JSON.stringify({ name: 'b2', image: 'initramfs', start: false, tenant: 'acme' }) });
  assert.equal(res.status, 403, 'a tenant cannot create for another');
  await ok(dir, ['vm', 'delete', 'b1'], beta3);

  // Deleted VMs keep their bill; a tenant without VMs can be deleted.
  await ok(dir, ['vm', 'delete', 'a1', 'a2'], acme);
  await ok(dir, ['tenant', 'delete', 'acme']);
  assert.equal((await api('/vms', acme)).status, 401, 'a deleted tenant\'s token is no longer valid');
  const after = await (await api('/usage', adminToken)).json() as Usage;
  assert.ok(after.tenants.some((x) => x.tenant === 'acme' && x.vms.some((y) => y.vm_name === 'a1')), 'the admin still sees the deleted tenant\'s usage');
});
