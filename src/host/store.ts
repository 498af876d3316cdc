/**
 * The host's state in SQLite (better-sqlite3) at `<state dir>/host.db`: VM definitions with
 * their desired state, what runs now (the VM process's pid and its start time, so that a
 * restarted host re-adopts it and never mistakes a reused pid), and an event log. Writes are
 * synchronous and in WAL mode: once a request is answered, what it changed is on disk.
 * A write that fails (a full disk) changes nothing and surfaces as StateStoreError.
 */
import Database from 'better-sqlite3';
import type { VmSpec } from './vm-spec.js';

export type DesiredState = 'running' | 'paused' | 'stopped';

export interface VmRecord {
  id: string;
  name: string;
  /** The tenant the VM belongs to (tenants.ts); null or absent: the admin's own. Names are unique per tenant. */
  tenantId?: string | null;
  createdAt: string;
  spec: VmSpec;
  desired: DesiredState;
}

export interface ExitRecord {
  exit_code: number | null;
  signal?: string | null;
  /** How the guest or the process ended: poweroff, reboot, panic, error, signal (from the VMM's exit file). */
  stop?: string;
  reason: string;
  at: string;
}

export interface RuntimeRecord {
  vmId: string;
  pid: number;
  /** /proc/<pid>/stat's starttime (clock ticks since boot): tells a reused pid apart. */
  pidStart: string;
  startedAt: string;
}

export interface VmEvent {
  id: number;
  vm_id: string | null;
  vm_name: string | null;
  at: string;
  kind: string;
  message: string;
}

/** A state write or read that failed; `full` when the state directory's disk is full. */
export class StateStoreError extends Error {
  override name = 'StateStoreError';
  constructor(message: string, readonly full: boolean, readonly sqliteCode?: string) {
    super(message);
  }
}

/** 2: a VM's tenant in vms.tenant_id (was the table vm_owners), names unique per tenant, not host-wide. */
const SCHEMA_VERSION = 2;

const vmsTable = (table: string): string => `
  CREATE TABLE ${table} (
    id TEXT PRIMARY KEY,
    tenant_id TEXT,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    spec TEXT NOT NULL,
    desired TEXT NOT NULL CHECK (desired IN ('running', 'paused', 'stopped'))
  );
  CREATE UNIQUE INDEX vms_tenant_name ON ${table} (COALESCE(tenant_id, ''), name);
`;

interface VmRow { id: string; tenant_id: string | null; name: string; created_at: string; spec: string; desired: DesiredState }
interface RuntimeRow { vm_id: string; pid: number; pid_start: string; started_at: string }

export class StateStore {
  private readonly db: Database.Database;

  constructor(readonly file: string) {
    try {
      this.db = new Database(file);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.migrate();
    } catch (e) {
      throw this.failure(e, `cannot open the state database ${file}`);
    }
  }

  /** The database itself, for the host's other tables (tenants.ts, metering.ts: each makes its own). */
  get database(): Database.Database {
    return this.db;
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) throw new Error(`the state database ${this.file} is of a newer Vessel (schema ${version}; this one knows ${SCHEMA_VERSION})`);
    if (version === SCHEMA_VERSION) return;
    if (version === 1) {
      this.migrateToTenantNames();
      return;
    }
    this.db.exec(`
      ${vmsTable('vms')}
      CREATE TABLE IF NOT EXISTS runtime (
        vm_id TEXT PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,
        pid INTEGER NOT NULL,
        pid_start TEXT NOT NULL,
        started_at TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS exits (
        vm_id TEXT PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,
        record TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        vm_id TEXT,
        vm_name TEXT,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS events_vm ON events (vm_id, id);
      PRAGMA user_version = ${SCHEMA_VERSION};
    `);
  }

  /**
   * Schema 1 to 2: the vms table is rebuilt (as the new table, renamed to vms once the old one is dropped) without its host-wide UNIQUE on name (SQLite cannot
   * drop a constraint), every row kept, each VM's tenant moved in from vm_owners, and the unique
   * index on (tenant, name) made. Foreign keys are off meanwhile, so that dropping the old table
   * does not cascade to runtime and exits (SQLite's documented way to change a table).
   */
  private migrateToTenantNames(): void {
    this.db.pragma('foreign_keys = OFF');
    try {
      this.db.transaction(() => {
        const owners = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'vm_owners'").get() !== undefined;
        this.db.exec(`
          ${vmsTable('vms_v2')}
          INSERT INTO vms_v2 (id, tenant_id, name, created_at, spec, desired)
            SELECT v.id, ${owners ? '(SELECT o.tenant_id FROM vm_owners o WHERE o.vm_id = v.id)' : 'NULL'}, v.name, v.created_at, v.spec, v.desired FROM vms v;
          DROP TABLE vms;
          ALTER TABLE vms_v2 RENAME TO vms;
          ${owners ? 'DROP TABLE vm_owners;' : ''}
          PRAGMA user_version = ${SCHEMA_VERSION};
        `);
        const broken = this.db.pragma('foreign_key_check') as unknown[];
        if (broken.length) throw new Error(`the state database ${this.file}: ${broken.length} rows lost their VM in the move to schema ${SCHEMA_VERSION}; nothing was changed`);
      })();
    } finally {
      this.db.pragma('foreign_keys = ON');
    }
  }

  /** Turns SQLite's errors into StateStoreError with a sentence; SQLITE_FULL says the disk is full. */
  private failure(e: unknown, what: string): Error {
    const code = (e as { code?: string }).code ?? '';
    if (code === 'SQLITE_FULL' || (e as NodeJS.ErrnoException).code === 'ENOSPC') {
      return new StateStoreError(`${what}: the state directory's disk is full (${(e as Error).message}); nothing was changed`, true);
    }
    if (code.startsWith('SQLITE_')) return new StateStoreError(`${what}: ${(e as Error).message} (${code})`, false, code);
    return e instanceof Error ? e : new Error(String(e));
  }

  private write<T>(what: string, f: () => T): T {
    try {
      return this.db.transaction(f)();
    } catch (e) {
      throw this.failure(e, what);
    }
  }

  private static vm(row: VmRow): VmRecord {
    return { id: row.id, tenantId: row.tenant_id, name: row.name, createdAt: row.created_at, spec: JSON.parse(row.spec) as VmSpec, desired: row.desired };
  }

  listVms(): VmRecord[] {
    return (this.db.prepare('SELECT * FROM vms ORDER BY created_at, name').all() as VmRow[]).map(StateStore.vm);
  }

  getVm(id: string): VmRecord | undefined {
    const row = this.db.prepare('SELECT * FROM vms WHERE id = ?').get(id) as VmRow | undefined;
    return row && StateStore.vm(row);
  }

  /**
   * The VM with this name among the tenant's (null: the admin's own VMs), else with this id,
   * else with this unique id prefix (as docker accepts); ids and prefixes only among the
   * tenant's VMs when `onlyTenant` (a prefix another tenant's VM shares must not tell it exists).
   */
  findVm(nameOrId: string, tenantId: string | null = null, onlyTenant = false): VmRecord | undefined {
    const scope = onlyTenant ? ' AND tenant_id IS ?' : '';
    const args = onlyTenant ? [tenantId] : [];
    const row = (this.db.prepare('SELECT * FROM vms WHERE name = ? AND tenant_id IS ?').get(nameOrId, tenantId)
      ?? this.db.prepare(`SELECT * FROM vms WHERE id = ?${scope}`).get(nameOrId, ...args)) as VmRow | undefined;
    if (row) return StateStore.vm(row);
    if (/^[0-9a-f]{4,}$/.test(nameOrId)) {
      const rows = this.db.prepare(`SELECT * FROM vms WHERE id LIKE ? || '%'${scope}`).all(nameOrId, ...args) as VmRow[];
      if (rows.length === 1) return StateStore.vm(rows[0]);
    }
    return undefined;
  }

  /** Every VM with this name, whichever its tenant. */
  vmsNamed(name: string): VmRecord[] {
    return (this.db.prepare('SELECT * FROM vms WHERE name = ? ORDER BY tenant_id').all(name) as VmRow[]).map(StateStore.vm);
  }

  insertVm(vm: VmRecord, event: string): void {
    this.write(`cannot record VM "${vm.name}"`, () => {
      this.db.prepare('INSERT INTO vms (id, tenant_id, name, created_at, spec, desired) VALUES (?, ?, ?, ?, ?, ?)').run(vm.id, vm.tenantId ?? null, vm.name, vm.createdAt, JSON.stringify(vm.spec), vm.desired);
      this.insertEvent(vm.id, vm.name, 'created', event);
    });
  }

  updateSpec(id: string, spec: VmSpec): void {
    this.write('cannot record the VM\'s new settings', () => {
      this.db.prepare('UPDATE vms SET spec = ? WHERE id = ?').run(JSON.stringify(spec), id);
    });
  }

  setDesired(id: string, desired: DesiredState): void {
    this.write('cannot record the VM\'s desired state', () => {
      this.db.prepare('UPDATE vms SET desired = ? WHERE id = ?').run(desired, id);
    });
  }

  deleteVm(id: string, name: string): void {
    this.write(`cannot delete VM "${name}"`, () => {
      this.db.prepare('DELETE FROM vms WHERE id = ?').run(id);
      this.db.prepare('DELETE FROM events WHERE vm_id = ?').run(id);
      this.insertEvent(null, name, 'deleted', `VM "${name}" (${id}) deleted`);
    });
  }

  getRuntime(vmId: string): RuntimeRecord | undefined {
    const row = this.db.prepare('SELECT * FROM runtime WHERE vm_id = ?').get(vmId) as RuntimeRow | undefined;
    return row && { vmId: row.vm_id, pid: row.pid, pidStart: row.pid_start, startedAt: row.started_at };
  }

  setRuntime(r: RuntimeRecord): void {
    this.write('cannot record the VM process', () => {
      this.db.prepare('INSERT OR REPLACE INTO runtime (vm_id, pid, pid_start, started_at) VALUES (?, ?, ?, ?)').run(r.vmId, r.pid, r.pidStart, r.startedAt);
    });
  }

  clearRuntime(vmId: string, exit: ExitRecord | null): void {
    this.write('cannot record the VM process\'s end', () => {
      this.db.prepare('DELETE FROM runtime WHERE vm_id = ?').run(vmId);
      if (exit) this.db.prepare('INSERT OR REPLACE INTO exits (vm_id, record) VALUES (?, ?)').run(vmId, JSON.stringify(exit));
    });
  }

  lastExit(vmId: string): ExitRecord | null {
    const row = this.db.prepare('SELECT record FROM exits WHERE vm_id = ?').get(vmId) as { record: string } | undefined;
    return row ? JSON.parse(row.record) as ExitRecord : null;
  }

  private insertEvent(vmId: string | null, vmName: string | null, kind: string, message: string): void {
    this.db.prepare('INSERT INTO events (vm_id, vm_name, at, kind, message) VALUES (?, ?, ?, ?, ?)').run(vmId, vmName, new Date().toISOString(), kind, message);
  }

  /** Appends to the event log; an event that cannot be written (full disk) is lost, not fatal. */
  event(vmId: string | null, vmName: string | null, kind: string, message: string): boolean {
    try {
      this.insertEvent(vmId, vmName, kind, message);
      return true;
    } catch {
      return false;
    }
  }

  events(opts: { vmId?: string; since?: number; limit?: number } = {}): VmEvent[] {
    const limit = opts.limit ?? 100;
    const rows = opts.vmId !== undefined
      ? this.db.prepare('SELECT * FROM events WHERE vm_id = ? AND id > ? ORDER BY id DESC LIMIT ?').all(opts.vmId, opts.since ?? 0, limit)
      : this.db.prepare('SELECT * FROM events WHERE id > ? ORDER BY id DESC LIMIT ?').all(opts.since ?? 0, limit);
    return (rows as VmEvent[]).reverse();
  }

  close(): void {
    this.db.close();
  }
}
