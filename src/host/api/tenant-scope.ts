/**
 * What the host API's VM operations ask about tenants: which VMs a caller sees (a tenant its
 * own; another tenant's VM is "no such VM", word for word as a name nobody has), what a tenant
 * may put in a create (no host paths, no TAP devices: those are the admin's), the quotas at
 * create (one create per tenant at a time, so two at once cannot both fit), and admin-only paths.
 */
import { ensureDefaultImage, ImageBuildError } from '../../../images/build-image.js';
import { ConflictError, NotFoundError, UnavailableError } from '../errors.js';
import type { Metering } from '../metering.js';
import type { StateStore, VmRecord } from '../store.js';
import type { Supervisor, VmHandle } from '../supervisor.js';
import { snapshotBytes } from '../snapshots.js';
import { ForbiddenError, sumAllotments, allotmentOf, Tenants, type Allotment, type Principal, type Tenant } from '../tenants.js';
import { DEFAULT_SPEC, type VmSpec } from '../vm-spec.js';

export interface TenantContext {
  tenants: Tenants;
  metering: Metering;
  store: StateStore;
}

interface CreateFields {
  name: string;
  kernel?: string;
  initrd?: string;
  disks?: unknown[];
  nets?: string[];
  image?: 'default' | 'initramfs';
  tenant?: string;
}

/** What these VMs hold against quotas: their allotments, and their snapshots' bytes on disk as disk. */
export function heldBy(vms: VmHandle[]): Allotment {
  const a = sumAllotments(vms.map((v) => v.record.spec));
  a.disk_gib += vms.reduce((n, v) => n + snapshotBytes(v), 0) / 2 ** 30;
  return a;
}

export function tenantScope(ctx: TenantContext, sup: Supervisor) {
  const { tenants } = ctx;
  const queues = new Map<string, Promise<unknown>>();

  const ownedBy = (t: Tenant): VmHandle[] => {
    const owners = tenants.owners();
    return sup.list().filter((vm) => owners.get(vm.id) === t.id);
  };

  return {
    /**
     * The VM `ref` names for `who` (vmRef below); another tenant's VM is the same NotFoundError
     * as a name nobody has, and a bare name that several tenants use is a ConflictError for the
     * admin that lists the `tenant/name` forms.
     */
    find(who: Principal, ref: string): VmHandle {
      const rec = vmRef(who, ref);
      const vm = rec && sup.vms.get(rec.id);
      if (!vm) throw new NotFoundError(`no VM named "${ref}" (and no VM has that id)`);
      return vm;
    },

    visible(who: Principal): VmHandle[] {
      return who.admin ? sup.list() : ownedBy(who.tenant);
    },

    tenantName(vmId: string): string | null {
      const id = tenants.ownerOf(vmId);
      if (id === null) return null;
      try { return tenants.get(id).name; } catch { return null; }
    },

    adminOnly(who: Principal, what: string): void {
      if (!who.admin) throw new ForbiddenError(`${what} is for the host's admin only, not for tenant "${who.tenant.name}"`);
    },

    /** A tenant's own numbers on GET /host; the admin's count of tenants. */
    hostExtras(who: Principal): Record<string, unknown> {
      if (who.admin) return { tenants: tenants.list().length, you: { admin: true } };
      const t = who.tenant;
      return { you: { admin: false, tenant: t.name, quota: t.quota, used: heldBy(ownedBy(t)) } };
    },

    /**
     * Checks what a create asks for against who asks: a tenant may not name host files
     * (kernel, initrd, disks) or TAP devices, nor create for another tenant. `image: initramfs`
     * becomes the default image's kernel and initramfs (a VM without a root disk: quick to boot).
     */
    async createBody<T extends CreateFields>(who: Principal, body: T): Promise<T> {
      if (!who.admin) {
        const t = who.tenant.name;
        for (const k of ['kernel', 'initrd', 'disks'] as const) {
          if (body[k] !== undefined) throw new ForbiddenError(`a tenant cannot give "${k}" (a file on the host); tenant "${t}" creates VMs from the host's images ("image": "default" or "initramfs")`);
        }
        if ((body.nets ?? []).some((n) => n.startsWith('tap'))) throw new ForbiddenError(`a tenant cannot attach a TAP device; tenant "${t}" may use "user" or "none"`);
        if (body.tenant !== undefined && body.tenant !== who.tenant.name) throw new ForbiddenError(`tenant "${t}" cannot create VMs for tenant "${body.tenant}"`);
      } else if (body.tenant !== undefined) {
        tenants.get(body.tenant);
      }
      if (body.image === 'initramfs') {
        if (body.kernel !== undefined || body.initrd !== undefined || body.disks !== undefined) throw new ForbiddenError('"image" and "kernel", "initrd" or "disks" exclude each other');
        let image;
        try {
          image = await ensureDefaultImage({ quiet: true });
        } catch (e) {
          if (e instanceof ImageBuildError) throw new UnavailableError(`the default guest image is not available: ${e.message}`);
          throw e;
        }
        return { ...body, kernel: image.kernel, initrd: image.initrd, image: undefined };
      }
      return { ...body, image: undefined };
    },

    /** Runs `f` with the VM's owner-to-be (null: the admin's own VM), one create per tenant at a time. */
    serialCreate<R>(who: Principal, forTenant: string | undefined, f: (owner: Tenant | null) => Promise<R>): Promise<R> {
      const owner = who.admin ? (forTenant !== undefined ? tenants.get(forTenant) : null) : who.tenant;
      if (!owner) return f(null);
      const prev = queues.get(owner.id) ?? Promise.resolve();
      const next = prev.then(() => f(tenants.get(owner.id)), () => f(tenants.get(owner.id)));
      queues.set(owner.id, next.catch(() => undefined));
      return next;
    },

    /** Refuses a create whose asked-for vCPUs, memory, disk size or count are over a quota, before anything is made. */
    checkRequest(owner: Tenant, b: { name: string; vcpus?: number; memory_mib?: number; disk_mib?: number }): void {
      Tenants.checkQuota(owner, heldBy(ownedBy(owner)),
        { vms: 1, vcpus: b.vcpus ?? DEFAULT_SPEC.vcpus, memory_mib: b.memory_mib ?? DEFAULT_SPEC.memory_mib, disk_gib: (b.disk_mib ?? 0) / 1024 }, `VM "${b.name}"`);
    },

    /** Refuses a create that takes the tenant over a quota (QuotaError, 403). */
    checkCreate(owner: Tenant, spec: VmSpec, name: string): void {
      Tenants.checkQuota(owner, heldBy(ownedBy(owner)), allotmentOf(spec), `VM "${name}"`);
    },

    /** Refuses (QuotaError, 403) a change of a tenant's VM that adds `extra` past the tenant's quota; the admin's own VMs have none. */
    checkGrowth(vm: VmHandle, extra: Partial<Allotment>, what: string): void {
      const ownerId = tenants.ownerOf(vm.id);
      if (ownerId === null) return;
      const owner = tenants.get(ownerId);
      Tenants.checkQuota(owner, heldBy(ownedBy(owner)), extra, what);
    },

    events(who: Principal, limit: number) {
      if (who.admin) return ctxEvents(limit);
      const mine = new Set(ownedBy(who.tenant).map((v) => v.id));
      return ctxEvents(10_000).filter((e) => e.vm_id !== null && mine.has(e.vm_id)).slice(-limit);
    },
  };

  /**
   * VM names are unique per tenant, so a name alone may not say which VM. A tenant's `name`,
   * `own-tenant/name`, id or unique id prefix means one of its own VMs. The admin's
   * `tenant/name` means that tenant's VM; a bare `name` the admin's own VM of that name, else
   * the one tenant's VM of that name; an id or unique id prefix any VM.
   */
  function vmRef(who: Principal, ref: string): VmRecord | undefined {
    const slash = ref.indexOf('/');
    if (slash >= 0) {
      const tenantName = ref.slice(0, slash), name = ref.slice(slash + 1);
      if (!who.admin) return tenantName === who.tenant.name ? ctx.store.findVm(name, who.tenant.id, true) : undefined;
      let t: Tenant;
      try { t = tenants.get(tenantName); } catch { return undefined; }
      return ctx.store.vmsNamed(name).find((v) => v.tenantId === t.id);
    }
    if (!who.admin) return ctx.store.findVm(ref, who.tenant.id, true);
    const own = ctx.store.findVm(ref);
    if (own) return own;
    const named = ctx.store.vmsNamed(ref);
    if (named.length > 1) {
      const forms = named.map((v) => `${v.tenantId === null ? '' : `${nameOfTenant(v.tenantId)}/`}${v.name}`).sort();
      throw new ConflictError(`${named.length} tenants have a VM named "${ref}": say which, as ${forms.join(' or ')} (or by id)`);
    }
    return named[0];
  }

  function nameOfTenant(id: string | null | undefined): string {
    try { return tenants.get(id ?? '').name; } catch { return id ?? ''; }
  }

  function ctxEvents(limit: number) {
    return ctx.store.events({ limit });
  }
}
