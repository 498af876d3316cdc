/**
 * The host API's tenant and usage operations (openapi.yaml: /tenants..., /usage): the admin
 * makes tenants, sets their quotas, replaces their tokens and deletes them; anyone reads the
 * usage of what they may see (a tenant its own, the admin everything or one tenant's).
 */
import { NotFoundError } from '../errors.js';
import type { Metering } from '../metering.js';
import type { Supervisor } from '../supervisor.js';
import { heldBy } from './tenant-scope.js';
import { ForbiddenError, type Principal, type Quota, type Tenant, type Tenants } from '../tenants.js';
import { BadRequestError, type HostHandler } from './server.js';

function adminOnly(who: Principal, what: string): void {
  if (!who.admin) throw new ForbiddenError(`${what} is for the host's admin only, not for tenant "${who.tenant.name}"`);
}

/** An ISO time or a date (YYYY-MM-DD, midnight UTC) from a query parameter. */
function timeOf(q: string | undefined, name: string, fallback: Date): string {
  if (q === undefined || q === '') return fallback.toISOString();
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(q) ? `${q}T00:00:00Z` : q);
  if (Number.isNaN(t)) throw new BadRequestError(`query parameter ${name} must be a date (2026-12-01) or an ISO time (2026-12-01T10:00:00Z), not "${q}"`);
  return new Date(t).toISOString();
}

export function tenantOperations(tenants: Tenants, metering: Metering, sup: Supervisor): Record<string, HostHandler> {
  const view = (t: Tenant) => {
    const owners = tenants.owners();
    const used = heldBy(sup.list().filter((vm) => owners.get(vm.id) === t.id));
    return { ...t, used: { ...used, disk_gib: Math.round(used.disk_gib * 100) / 100 } };
  };
  return {
    listTenants: ({ who }) => {
      adminOnly(who, 'GET /tenants');
      return { status: 200, body: tenants.list().map(view) };
    },
    createTenant: ({ who, body }) => {
      adminOnly(who, 'POST /tenants');
      const b = body as { name: string; quota?: Quota; token_ttl_s?: number };
      const { tenant, token } = tenants.create(b.name, b.quota ?? {}, b.token_ttl_s);
      return { status: 201, body: { ...view(tenant), token } };
    },
    getTenant: ({ who, params }) => {
      const t = tenants.get(params.tenant);
      if (!who.admin && who.tenant.id !== t.id) throw new NotFoundError(`no tenant named "${params.tenant}"`);
      return { status: 200, body: view(t) };
    },
    updateTenant: ({ who, params, body }) => {
      adminOnly(who, 'PATCH /tenants/{tenant}');
      const t = tenants.setQuota(tenants.get(params.tenant), (body as { quota: Record<keyof Quota, number | null> }).quota as Quota);
      return { status: 200, body: view(t) };
    },
    deleteTenant: ({ who, params }) => {
      adminOnly(who, 'DELETE /tenants/{tenant}');
      tenants.delete(tenants.get(params.tenant));
      return { status: 204 };
    },
    newTenantToken: ({ who, params, body }) => {
      adminOnly(who, 'POST /tenants/{tenant}/token');
      const { tenant, token } = tenants.newToken(tenants.get(params.tenant), (body as { token_ttl_s?: number } | undefined)?.token_ttl_s);
      return { status: 200, body: { ...view(tenant), token } };
    },
    getUsage: ({ who, query }) => {
      const now = new Date();
      const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
      const from = timeOf(query.from, 'from', monthStart);
      const to = timeOf(query.to, 'to', now);
      if (from >= to) throw new BadRequestError(`from (${from}) must be before to (${to})`);
      let tenantId: string | undefined;
      if (!who.admin) {
        if (query.tenant !== undefined && query.tenant !== who.tenant.name) throw new ForbiddenError(`tenant "${who.tenant.name}" can read only its own usage`);
        tenantId = who.tenant.id;
      } else if (query.tenant !== undefined) {
        tenantId = tenants.get(query.tenant).id;
      }
      return { status: 200, body: metering.usage(from, to, tenantId) };
    },
  };
}
