/**
 * Tenants: who may use the host API, and which VMs are whose. The admin is whoever holds the
 * host's token (`<state dir>/token`) or talks to the Unix socket without a token; a tenant is
 * made by the admin and gets its own token, shown once and kept only as its SHA-256 (a token
 * is 32 random bytes, so a plain hash is enough: there is nothing to guess). Each VM belongs
 * to at most one tenant (`vms.tenant_id` in store.ts, set when the VM is recorded; names are
 * unique per tenant); a tenant sees and touches only its own, and another tenant's VM is
 * "no such VM" (404), as if it did not exist.
 *
 * Quotas per tenant (vCPUs, memory, disk, VM count; absent = no limit) are checked here before
 * a VM is created or grown; a refusal says which quota and by how much (QuotaError, 403).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import type Database from 'better-sqlite3';
import { ConflictError, NotFoundError } from './errors.js';
import { StateStoreError, type StateStore } from './store.js';
import { SpecError, type VmSpec } from './vm-spec.js';

export interface Quota {
  vcpus?: number;
  memory_mib?: number;
  disk_gib?: number;
  vms?: number;
}

export interface Tenant {
  id: string;
  name: string;
  created_at: string;
  quota: Quota;
  /** When its token stops working (null: never, until it is replaced). */
  token_expires_at: string | null;
}

export type Principal = { admin: true; tenant: null } | { admin: false; tenant: Tenant };

export const ADMIN: Principal = { admin: true, tenant: null };

/** A request over a tenant's quota (403); the message names the quota and the excess. */
export class QuotaError extends Error {
  override name = 'QuotaError';
}

/** A request a tenant may not make at all (403): admin-only paths, host paths in a create. */
export class ForbiddenError extends Error {
  override name = 'ForbiddenError';
}

/** No token, or one the host does not know (401). */
export class UnauthorizedError extends Error {
  override name = 'UnauthorizedError';
}

export const TENANT_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const TOKEN_PREFIX = 'vt_';
const GIB = 1024 ** 3;

interface TenantRow { id: string; name: string; created_at: string; quota: string; token_expires_at: string | null }
const COLUMNS = 'id, name, created_at, quota, token_expires_at';

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** What a VM counts against its tenant's quotas. */
export interface Allotment { vcpus: number; memory_mib: number; disk_gib: number; vms: number }

/** The apparent size of a VM's disks in GiB (what the guest sees, not the sparse file's blocks). */
export function diskGib(spec: Pick<VmSpec, 'disks'>): number {
  let bytes = 0;
  for (const d of spec.disks) {
    try { bytes += fs.statSync(d.path).size; } catch { /* a missing disk counts nothing */ }
  }
  return bytes / GIB;
}

export function allotmentOf(spec: VmSpec): Allotment {
  return { vcpus: spec.vcpus, memory_mib: spec.memory_mib, disk_gib: diskGib(spec), vms: 1 };
}

const QUOTA_WORDS: Record<keyof Quota, (n: number) => string> = {
  vcpus: (n) => `${n} vCPU${n === 1 ? '' : 's'}`,
  memory_mib: (n) => `${n} MiB`,
  disk_gib: (n) => `${Math.round(n * 100) / 100} GiB`,
  vms: (n) => `${n} VM${n === 1 ? '' : 's'}`,
};

export class Tenants {
  private readonly db: Database.Database;

  constructor(private readonly store: StateStore) {
    this.db = store.database;
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS tenants (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        token_sha256 TEXT NOT NULL UNIQUE,
        quota TEXT NOT NULL DEFAULT '{}'
      );
    `);
    // Token expiry came after the table: add the column to a table made before it.
    const cols = this.db.prepare('PRAGMA table_info(tenants)').all() as { name: string }[];
    if (!cols.some((c) => c.name === 'token_expires_at')) this.db.exec('ALTER TABLE tenants ADD COLUMN token_expires_at TEXT');
  }

  private write<T>(what: string, f: () => T): T {
    try {
      return this.db.transaction(f)();
    } catch (e) {
      const code = (e as { code?: string }).code ?? '';
      if (code === 'SQLITE_FULL') throw new StateStoreError(`${what}: the state directory's disk is full; nothing was changed`, true);
      if (code === 'SQLITE_CONSTRAINT_UNIQUE') throw new ConflictError(`${what}: the name is taken`);
      throw e;
    }
  }

  private static tenant(row: TenantRow): Tenant {
    return { id: row.id, name: row.name, created_at: row.created_at, quota: JSON.parse(row.quota) as Quota, token_expires_at: row.token_expires_at ?? null };
  }

  list(): Tenant[] {
    return (this.db.prepare(`SELECT ${COLUMNS} FROM tenants ORDER BY name`).all() as TenantRow[]).map(Tenants.tenant);
  }

  /** The tenant with this name or id; NotFoundError otherwise. */
  get(nameOrId: string): Tenant {
    const row = this.db.prepare(`SELECT ${COLUMNS} FROM tenants WHERE name = ? OR id = ?`).get(nameOrId, nameOrId) as TenantRow | undefined;
    if (!row) throw new NotFoundError(`no tenant named "${nameOrId}"`);
    return Tenants.tenant(row);
  }

  /**
   * Makes a tenant; returns it with its token (the only time the token is seen), valid for
   * `ttlS` seconds when given, else until it is replaced.
   */
  create(name: string, quota: Quota = {}, ttlS?: number): { tenant: Tenant; token: string } {
    if (!TENANT_NAME_PATTERN.test(name)) throw new SpecError(`tenant name "${name}" is not 1 to 32 of lower-case letters, digits, _ or -, starting with a letter or digit`);
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const tenant: Tenant = { id: randomBytes(6).toString('hex'), name, created_at: new Date().toISOString(), quota, token_expires_at: expiry(ttlS) };
    if (this.db.prepare('SELECT 1 FROM tenants WHERE name = ?').get(name)) throw new ConflictError(`a tenant named "${name}" already exists`);
    this.write(`cannot create tenant "${name}"`, () => {
      this.db.prepare('INSERT INTO tenants (id, name, created_at, token_sha256, quota, token_expires_at) VALUES (?, ?, ?, ?, ?, ?)').run(tenant.id, name, tenant.created_at, hashToken(token), JSON.stringify(quota), tenant.token_expires_at);
    });
    this.store.event(null, null, 'tenant', `tenant "${name}" created`);
    return { tenant, token };
  }

  /** A new token for the tenant (valid `ttlS` seconds when given); the old one stops working at once. */
  newToken(t: Tenant, ttlS?: number): { tenant: Tenant; token: string } {
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const expires = expiry(ttlS);
    this.write(`cannot change the token of tenant "${t.name}"`, () => {
      this.db.prepare('UPDATE tenants SET token_sha256 = ?, token_expires_at = ? WHERE id = ?').run(hashToken(token), expires, t.id);
    });
    return { tenant: { ...t, token_expires_at: expires }, token };
  }

  setQuota(t: Tenant, quota: Quota): Tenant {
    const merged: Quota = { ...t.quota };
    for (const [k, v] of Object.entries(quota) as [keyof Quota, number | null][]) {
      if (v === null) delete merged[k]; else merged[k] = v;
    }
    this.write(`cannot change the quota of tenant "${t.name}"`, () => {
      this.db.prepare('UPDATE tenants SET quota = ? WHERE id = ?').run(JSON.stringify(merged), t.id);
    });
    return { ...t, quota: merged };
  }

  /** Deletes a tenant that has no VMs left (its VMs first: nothing is deleted behind the admin's back). */
  delete(t: Tenant): void {
    const n = (this.db.prepare('SELECT COUNT(*) AS n FROM vms WHERE tenant_id = ?').get(t.id) as { n: number }).n;
    if (n > 0) throw new ConflictError(`tenant "${t.name}" still has ${n} VM${n === 1 ? '' : 's'}; delete ${n === 1 ? 'it' : 'them'} first`);
    this.write(`cannot delete tenant "${t.name}"`, () => {
      this.db.prepare('DELETE FROM tenants WHERE id = ?').run(t.id);
    });
    this.store.event(null, null, 'tenant', `tenant "${t.name}" deleted`);
  }

  /**
   * Who sends this bearer token: the admin (the host's token), a tenant, or nobody (null: a
   * token the host does not know). Compared in constant time for the admin's token; a tenant's
   * is looked up by its hash, which tells nothing about the tokens near it.
   */
  authenticate(token: string, adminToken: string, now = Date.now()): Principal | null | { expired: string } {
    const a = Buffer.from(token), b = Buffer.from(adminToken);
    if (a.length === b.length && timingSafeEqual(a, b)) return ADMIN;
    if (!token.startsWith(TOKEN_PREFIX)) return null;
    const row = this.db.prepare(`SELECT ${COLUMNS} FROM tenants WHERE token_sha256 = ?`).get(hashToken(token)) as TenantRow | undefined;
    if (!row) return null;
    if (row.token_expires_at !== null && Date.parse(row.token_expires_at) <= now) return { expired: `the token of tenant "${row.name}" expired at ${row.token_expires_at}; the host's admin can give it a new one (vessel tenant token ${row.name})` };
    return { admin: false, tenant: Tenants.tenant(row) };
  }

  /** The SHA-256 of the tenant's token now (sessions.ts: a session ends when its token is replaced). */
  tokenHashOf(t: Tenant): string | null {
    const row = this.db.prepare('SELECT token_sha256 FROM tenants WHERE id = ?').get(t.id) as { token_sha256: string } | undefined;
    return row?.token_sha256 ?? null;
  }

  /** The tenant id owning each VM (VMs of the admin are absent). */
  owners(): Map<string, string> {
    const rows = this.db.prepare('SELECT id, tenant_id FROM vms WHERE tenant_id IS NOT NULL').all() as { id: string; tenant_id: string }[];
    return new Map(rows.map((r) => [r.id, r.tenant_id]));
  }

  ownerOf(vmId: string): string | null {
    const row = this.db.prepare('SELECT tenant_id FROM vms WHERE id = ?').get(vmId) as { tenant_id: string | null } | undefined;
    return row?.tenant_id ?? null;
  }

  /** May `who` see the VM with this id? The admin sees every VM; a tenant its own. */
  visible(who: Principal, vmId: string): boolean {
    return who.admin || this.ownerOf(vmId) === who.tenant.id;
  }

  /**
   * Refuses (QuotaError) a change that would take the tenant past a quota: `current` is what its
   * VMs hold now, `extra` what the request adds. The message names every quota exceeded.
   */
  static checkQuota(t: Tenant, current: Allotment, extra: Partial<Allotment>, what: string): void {
    const over: string[] = [];
    for (const k of ['vms', 'vcpus', 'memory_mib', 'disk_gib'] as const) {
      const limit = t.quota[k];
      const add = extra[k] ?? 0;
      if (limit === undefined || add <= 0) continue;
      const total = current[k] + add;
      if (total > limit + 1e-9) {
        over.push(`the ${k === 'vms' ? 'VM count' : k === 'vcpus' ? 'vCPU' : k === 'memory_mib' ? 'memory' : 'disk'} quota of ${QUOTA_WORDS[k](limit)} (it has ${QUOTA_WORDS[k](current[k])} and ${what} needs ${QUOTA_WORDS[k](add)} more: ${QUOTA_WORDS[k](total - limit)} over)`);
      }
    }
    if (over.length) throw new QuotaError(`tenant "${t.name}" is over ${over.join(' and ')}`);
  }
}

function expiry(ttlS: number | undefined): string | null {
  return ttlS === undefined ? null : new Date(Date.now() + ttlS * 1000).toISOString();
}

/** What the VMs in `specs` hold together. */
export function sumAllotments(specs: VmSpec[]): Allotment {
  const a: Allotment = { vcpus: 0, memory_mib: 0, disk_gib: 0, vms: 0 };
  for (const s of specs) {
    const x = allotmentOf(s);
    a.vcpus += x.vcpus; a.memory_mib += x.memory_mib; a.disk_gib += x.disk_gib; a.vms += 1;
  }
  return a;
}
