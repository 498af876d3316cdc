// The state store's move from schema 1 (VM names unique host-wide, each VM's tenant in
// vm_owners) to schema 2 (the tenant in vms.tenant_id, names unique per tenant): a database
// written by the older Vessel keeps every VM, its runtime, exit and events, and its tenant.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';

import { StateStore, StateStoreError } from '../src/host/store.js';
import { Tenants } from '../src/host/tenants.js';
import type { VmSpec } from '../src/host/vm-spec.js';

const SPEC = { vcpus: 1, memory_mib: 128, memory_min_mib: 128, cpu_weight: 100, cpu_cap: 0, kernel: '/nonexistent/Image', append: '', disks: [], nets: [], rng: true, restart: 'on-failure' } as VmSpec;

/** A host.db as schema 1 left it, with the tenants table of that time. */
function schemaOneDb(file: string): void {
  const db = new Database(file);
  db.pragma('foreign_keys = ON');
  db.exec(`
    CREATE TABLE vms (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, spec TEXT NOT NULL,
      desired TEXT NOT NULL CHECK (desired IN ('running', 'paused', 'stopped')));
    CREATE TABLE runtime (vm_id TEXT PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE, pid INTEGER NOT NULL, pid_start TEXT NOT NULL, started_at TEXT NOT NULL);
    CREATE TABLE exits (vm_id TEXT PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE, record TEXT NOT NULL);
    CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, vm_id TEXT, vm_name TEXT, at TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL);
    CREATE INDEX events_vm ON events (vm_id, id);
    CREATE TABLE tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, token_sha256 TEXT NOT NULL UNIQUE, quota TEXT NOT NULL DEFAULT '{}', token_expires_at TEXT);
    CREATE TABLE vm_owners (vm_id TEXT PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE, tenant_id TEXT NOT NULL REFERENCES tenants(id));
    PRAGMA user_version = 1;
  `);
  db.prepare("INSERT INTO tenants VALUES ('t00000000001', 'acme', 'then', 'hash', '{}', NULL)").run();
  const vm = db.prepare("INSERT INTO vms VALUES (?, ?, 'then', ?, 'running')");
  vm.run('aaaaaaaaaaaa', 'web', JSON.stringify(SPEC));
  vm.run('bbbbbbbbbbbb', 'db', JSON.stringify(SPEC));
  db.prepare("INSERT INTO vm_owners VALUES ('aaaaaaaaaaaa', 't00000000001')").run();
  db.prepare("INSERT INTO runtime VALUES ('aaaaaaaaaaaa', 4242, '99', 'then')").run();
  db.prepare("INSERT INTO exits VALUES ('bbbbbbbbbbbb', '{\"exit_code\":0,\"reason\":\"poweroff\",\"at\":\"then\"}')").run();
  db.prepare("INSERT INTO events (vm_id, vm_name, at, kind, message) VALUES ('aaaaaaaaaaaa', 'web', 'then', 'created', 'made')").run();
  db.close();
}

test('state store: schema 1 moves to names per tenant, keeping every row and each VM\'s tenant', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vessel-migrate-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'host.db');
  schemaOneDb(file);
  const store = new StateStore(file);
  const tenants = new Tenants(store);
  assert.equal(store.database.pragma('user_version', { simple: true }), 2);
  assert.deepEqual(store.listVms().map((v) => [v.id, v.name, v.tenantId, v.desired, v.spec.memory_mib]).sort(), [
    ['aaaaaaaaaaaa', 'web', 't00000000001', 'running', 128],
    ['bbbbbbbbbbbb', 'db', null, 'running', 128],
  ]);
  assert.equal(store.getRuntime('aaaaaaaaaaaa')?.pid, 4242, 'the runtime row survived the table\'s rebuild');
  assert.equal(store.lastExit('bbbbbbbbbbbb')?.reason, 'poweroff');
  assert.deepEqual(store.events({ vmId: 'aaaaaaaaaaaa' }).map((e) => e.message), ['made']);
  assert.equal(tenants.ownerOf('aaaaaaaaaaaa'), 't00000000001');
  assert.equal(tenants.ownerOf('bbbbbbbbbbbb'), null);
  assert.equal(store.database.prepare("SELECT 1 FROM sqlite_master WHERE name = 'vm_owners'").get(), undefined, 'vm_owners is gone');

  // Names per tenant: the admin may now have a "web" too; one tenant may not have two.
  store.insertVm({ id: 'cccccccccccc', name: 'web', createdAt: 'now', spec: SPEC, desired: 'stopped' }, 'created');
  assert.equal(store.findVm('web')?.id, 'cccccccccccc', 'a bare name is the admin\'s own VM');
  assert.equal(store.findVm('web', 't00000000001')?.id, 'aaaaaaaaaaaa');
  assert.deepEqual(store.vmsNamed('web').map((v) => v.id).sort(), ['aaaaaaaaaaaa', 'cccccccccccc']);
  assert.throws(() => store.insertVm({ id: 'dddddddddddd', tenantId: 't00000000001', name: 'web', createdAt: 'now', spec: SPEC, desired: 'stopped' }, 'x'),
    (e: unknown) => e instanceof StateStoreError && e.sqliteCode === 'SQLITE_CONSTRAINT_UNIQUE');
  assert.throws(() => store.insertVm({ id: 'eeeeeeeeeeee', name: 'web', createdAt: 'now', spec: SPEC, desired: 'stopped' }, 'x'),
    (e: unknown) => e instanceof StateStoreError && e.sqliteCode === 'SQLITE_CONSTRAINT_UNIQUE', 'two admin VMs of one name');
  assert.equal(store.findVm('dddd', 't00000000001', true), undefined, 'an id prefix only among the tenant\'s VMs');
  assert.equal(store.findVm('bbbb', 't00000000001', true), undefined, 'the admin\'s VM is not the tenant\'s');

  // Foreign keys still hold on the rebuilt table: deleting a VM takes its runtime with it.
  store.deleteVm('aaaaaaaaaaaa', 'web');
  assert.equal(store.getRuntime('aaaaaaaaaaaa'), undefined);
  store.close();
  const again = new StateStore(file);
  assert.deepEqual(again.listVms().map((v) => v.id).sort(), ['bbbbbbbbbbbb', 'cccccccccccc']);
  again.close();
});
