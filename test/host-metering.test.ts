// The pricing side of metering and the tenants' token and quota rules, on a real state store:
// a prices file is read with its mistakes named; GET /usage's sums, costs and the dedicated-server
// comparison add up for meter rows of known size; tokens are found by hash only; quota sentences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { loadPrices, Metering, DEFAULT_PRICES } from '../src/host/metering.js';
import { StateStore } from '../src/host/store.js';
import { Tenants, QuotaError, type Principal } from '../src/host/tenants.js';
import type { Supervisor } from '../src/host/supervisor.js';
import type { UsageSampler } from '../src/host/usage.js';
import type { MemoryBalancer } from '../src/host/memory.js';

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-meter-'));
}

test('prices: a file overrides the defaults field by field; unknown fields and bad values are named', () => {
  const dir = tmp();
  try {
    const f = path.join(dir, 'p.yaml');
    fs.writeFileSync(f, 'currency: USD\nvcpu_hour: 0.01\ndedicated_server: { monthly: 99 }\n');
    const p = loadPrices(f);
    assert.equal(p.currency, 'USD');
    assert.equal(p.vcpu_hour, 0.01);
    assert.equal(p.memory_gib_hour, DEFAULT_PRICES.memory_gib_hour);
    assert.deepEqual(p.dedicated_server, { ...DEFAULT_PRICES.dedicated_server, monthly: 99 });
    fs.writeFileSync(f, '{"vcpu_hours": 1}');
    assert.throws(() => loadPrices(f), /unknown field "vcpu_hours"/);
    fs.writeFileSync(f, 'network_gib: -1\n');
    assert.throws(() => loadPrices(f), /network_gib must be a number of at least 0/);
    fs.writeFileSync(f, 'cpu_basis: sometimes\n');
    assert.throws(() => loadPrices(f), /cpu_basis must be "allotted" or "used"/);
    assert.throws(() => loadPrices(path.join(dir, 'none.yaml')), /--prices .*none\.yaml: ENOENT/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('usage: sums per tenant and VM, costs at the prices, and dedicated servers for the peak', () => {
  const dir = tmp();
  const store = new StateStore(path.join(dir, 'host.db'));
  try {
    const tenants = new Tenants(store);
    const prices = { ...DEFAULT_PRICES, vcpu_hour: 3.6, memory_gib_hour: 36, disk_gib_month: 730, network_gib: 1, dedicated_server: { name: 's', monthly: 730, vcpus: 2, memory_gib: 1 } };
    // Only usage() is used here: no VM runs, so the sampler and the supervisor are never asked.
    const m = new Metering(store, {} as Supervisor, {} as UsageSampler, {} as MemoryBalancer, tenants, prices, 1000);
    const { tenant } = tenants.create('acme');
    const insert = store.database.prepare(`INSERT INTO meter (at, seconds, tenant_id, tenant_name, vm_id, vm_name, vcpu_s_alloc, vcpu_s_used,
      mem_mib_s_alloc, mem_mib_s_held, disk_gib_s, net_rx_bytes, net_tx_bytes) VALUES (?, 10, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    // Two VMs of acme for two 10-s intervals: a (2 vCPUs, 1024 MiB, half held), b (1 vCPU, 512 MiB) in the second only; one admin VM.
    const at = (s: number): string => new Date(Date.UTC(2026, 11, 1, 0, 0, s)).toISOString();
    insert.run(at(10), tenant.id, 'acme', 'a', 'a', 20, 5, 10240, 5120, 10, 1000, 24);
    insert.run(at(20), tenant.id, 'acme', 'a', 'a', 20, 7, 10240, 5120, 10, 0, 0);
    insert.run(at(20), tenant.id, 'acme', 'b', 'b', 10, 1, 5120, 5120, 0, 0, 0);
    insert.run(at(20), null, null, 'c', 'c', 10, 10, 1280, 1280, 0, 0, 0);
    const u = m.usage(at(0), at(3600), tenant.id) as { hours: number; tenants: { tenant: string; vms: { vm_name: string; vcpu_seconds_allotted: number; vcpu_seconds_used: number; memory_gib_hours_held: number; disk_gib_hours: number; net_rx_bytes: number; cost: { cpu: number; memory: number; disk: number; network: number; total: number } }[]; totals: { vcpu_seconds_allotted: number; cost: { total: number } }; dedicated: { servers: number; peak_vcpus: number; peak_memory_gib: number; cost: number } }[] };
    assert.equal(u.tenants.length, 1, 'one tenant asked for');
    const t = u.tenants[0];
    assert.equal(t.tenant, 'acme');
    const a = t.vms.find((v) => v.vm_name === 'a');
    assert.ok(a);
    assert.equal(a.vcpu_seconds_allotted, 40);
    assert.equal(a.vcpu_seconds_used, 12);
    assert.equal(a.net_rx_bytes, 1000);
    assert.equal(a.memory_gib_hours_held, Math.round((10240 / 1024 / 3600) * 1e5) / 1e5);
    // 40 vCPU-s at 3.6 an hour = 0.04; 10 GiB-s held at 36 an hour = 0.1; 20 GiB-s of disk at 730 a month = 20/3600; 1024 bytes at 1 a GiB.
    assert.equal(a.cost.cpu, 0.04);
    assert.equal(a.cost.memory, 0.1);
    assert.equal(a.cost.disk, Math.round((20 / 3600) * 1e4) / 1e4);
    assert.equal(a.cost.network, Math.round((1024 / 1024 ** 3) * 1e4) / 1e4);
    assert.equal(t.totals.vcpu_seconds_allotted, 50);
    // The peak: 2 + 1 vCPUs and 1.5 GiB in the second interval: 2 servers of 2 vCPUs and 1 GiB, for one hour at 1 an hour.
    assert.equal(t.dedicated.peak_vcpus, 3);
    assert.equal(t.dedicated.peak_memory_gib, 1.5);
    assert.equal(t.dedicated.servers, 2);
    assert.equal(t.dedicated.cost, 2);
    // The admin's view has the admin's own VM (tenant null) too; a window before the rows has nothing.
    const all = m.usage(at(0), at(3600)) as { tenants: { tenant: string | null }[] };
    assert.deepEqual(all.tenants.map((x) => x.tenant).sort(), ['acme', null].sort());
    assert.equal((m.usage(at(0), at(5)) as { tenants: unknown[] }).tenants.length, 0);
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('tenants: tokens found by their hash only; the admin token; quotas name each excess', () => {
  const dir = tmp();
  const store = new StateStore(path.join(dir, 'host.db'));
  try {
    const tenants = new Tenants(store);
    const { tenant, token } = tenants.create('acme', { vcpus: 4, memory_mib: 1024 });
    const who = (t: string, admin = 'admin-token-0123456789', now?: number) => tenants.authenticate(t, admin, now) as Principal | null;
    assert.equal(who(token)?.tenant?.name, 'acme');
    assert.equal(who('admin-token-0123456789')?.admin, true);
    assert.equal(tenants.authenticate(token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A'), 'admin-token-0123456789'), null);
    const stored = store.database.prepare('SELECT token_sha256 FROM tenants').get() as { token_sha256: string };
    assert.match(stored.token_sha256, /^[0-9a-f]{64}$/);
    const again = tenants.newToken(tenant).token;
    assert.equal(tenants.authenticate(token, 'x'.repeat(20)), null, 'the old token stops working');
    assert.equal(who(again)?.tenant?.id, tenant.id);
    // A token with a time to live works until then, and is then refused with the reason.
    const { token: brief, tenant: t2 } = tenants.newToken(tenant, 60);
    assert.ok(t2.token_expires_at && Math.abs(Date.parse(t2.token_expires_at) - Date.now() - 60_000) < 5000);
    assert.equal(who(brief)?.tenant?.id, tenant.id);
    const later = tenants.authenticate(brief, 'x'.repeat(20), Date.now() + 61_000);
    assert.match((later as { expired: string }).expired, /^the token of tenant "acme" expired at \S+; the host's admin can give it a new one \(vessel tenant token acme\)$/);
    assert.equal(tenants.get('acme').token_expires_at, t2.token_expires_at);
    assert.throws(() => tenants.create('Bad Name'), /tenant name "Bad Name" is not 1 to 32 of lower-case letters/);
    const held = { vcpus: 3, memory_mib: 512, disk_gib: 0, vms: 2 };
    assert.throws(() => Tenants.checkQuota(tenant, held, { vcpus: 2, memory_mib: 1024, vms: 1 }, 'VM "x"'), (e: unknown) => {
      assert.ok(e instanceof QuotaError);
      assert.equal((e as Error).message, 'tenant "acme" is over the vCPU quota of 4 vCPUs (it has 3 vCPUs and VM "x" needs 2 vCPUs more: 1 vCPU over) and the memory quota of 1024 MiB (it has 512 MiB and VM "x" needs 1024 MiB more: 512 MiB over)');
      return true;
    });
    Tenants.checkQuota(tenant, held, { vcpus: 1, memory_mib: 512, vms: 5 }, 'VM "y"');
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
