/**
 * Browser sessions of the web console: a page exchanges the token it was given (the ?token= of
 * the URL the host prints, or the login form) for a session cookie once, and then holds no token
 * at all: the cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's page
 * sends it) and expires. The host keeps only the SHA-256 of a session's id, in host.db (a
 * restarted host keeps its sessions, so an open page goes on), with who it is for and the hash
 * of the token it came from: a session ends with its token (replaced, its tenant deleted, the
 * admin's token changed), at its expiry, or at logout.
 */
import { createHash, randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { StateStore } from './store.js';
import { ADMIN, type Principal, type Tenants } from './tenants.js';

export const SESSION_COOKIE = 'vessel_session';
/** How long a session lasts at most (a tenant's token that expires sooner ends it sooner). */
export const SESSION_TTL_S = 12 * 3600;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

interface SessionRow { tenant_id: string | null; token_sha256: string; expires_at: string }

export class Sessions {
  private readonly db: Database.Database;

  constructor(store: StateStore, private readonly tenants: Tenants, private readonly adminToken: string) {
    this.db = store.database;
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS sessions (
        id_sha256 TEXT PRIMARY KEY,
        tenant_id TEXT,
        token_sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
      );
    `);
  }

  /** A new session for whoever `token` is (already authenticated as `who`); its id goes in the cookie. */
  open(token: string, who: Principal, now = Date.now()): { id: string; expiresAt: Date } {
    let end = now + SESSION_TTL_S * 1000;
    if (!who.admin && who.tenant.token_expires_at !== null) end = Math.min(end, Date.parse(who.tenant.token_expires_at));
    const id = randomBytes(32).toString('base64url');
    const expiresAt = new Date(end);
    this.db.prepare('DELETE FROM sessions WHERE expires_at <= ?').run(new Date(now).toISOString());
    this.db.prepare('INSERT INTO sessions (id_sha256, tenant_id, token_sha256, created_at, expires_at) VALUES (?, ?, ?, ?, ?)')
      .run(sha256(id), who.admin ? null : who.tenant.id, sha256(token), new Date(now).toISOString(), expiresAt.toISOString());
    return { id, expiresAt };
  }

  /** Who a session cookie is for: a principal, null (no such session, or its token no longer valid), or why it ended. */
  who(id: string, now = Date.now()): Principal | null | { expired: string } {
    const row = this.db.prepare('SELECT tenant_id, token_sha256, expires_at FROM sessions WHERE id_sha256 = ?').get(sha256(id)) as SessionRow | undefined;
    if (!row) return null;
    if (Date.parse(row.expires_at) <= now) {
      this.close(id);
      return { expired: `your session ended at ${row.expires_at}` };
    }
    if (row.tenant_id === null) return row.token_sha256 === sha256(this.adminToken) ? ADMIN : null;
    let tenant;
    try { tenant = this.tenants.get(row.tenant_id); } catch { return null; }
    return this.tenants.tokenHashOf(tenant) === row.token_sha256 ? { admin: false, tenant } : null;
  }

  close(id: string): void {
    this.db.prepare('DELETE FROM sessions WHERE id_sha256 = ?').run(sha256(id));
  }
}

/** The session id in a request's Cookie header, if any. */
export function sessionCookie(header: string | undefined): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim() || undefined;
  }
  return undefined;
}

/** The Set-Cookie value for a session (or, with `expiresAt` null, the one that removes it). */
export function sessionSetCookie(id: string | null, expiresAt: Date | null): string {
  const base = `${SESSION_COOKIE}=${id ?? ''}; Path=/; HttpOnly; SameSite=Strict`;
  return expiresAt ? `${base}; Expires=${expiresAt.toUTCString()}` : `${base}; Max-Age=0`;
}
