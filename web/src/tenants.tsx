// The admin's tenants: what each holds against its quotas, a new tenant (its token shown once),
// quota changes, a new token, and delete (after a confirmation; refused while it has VMs).
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { Confirm, ErrorLine, Modal, usePoll } from './ui.js';

interface Quota { vcpus?: number; memory_mib?: number; disk_gib?: number; vms?: number }
interface Tenant { id: string; name: string; created_at: string; quota: Quota; used: Required<Quota>; token?: string; token_expires_at: string | null }

const KEYS: [keyof Quota, string][] = [['vms', 'VMs'], ['vcpus', 'vCPUs'], ['memory_mib', 'Memory, MiB'], ['disk_gib', 'Disk, GiB']];

/** Quota fields of a form: a number, "" for no limit (null), anything else sent as is for the API to judge. */
function quotaOf(f: FormData, keepEmpty: boolean): Record<string, unknown> {
  const q: Record<string, unknown> = {};
  for (const [k] of KEYS) {
    const v = String(f.get(k) ?? '').trim();
    if (v === '') { if (keepEmpty) q[k] = null; continue; }
    q[k] = /^\d+(\.\d+)?$/.test(v) ? Number(v) : v;
  }
  return q;
}

export function TenantsPage() {
  const { data, error, reload } = usePoll(() => api<Tenant[]>('GET', '/tenants'), 5000);
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<Tenant | null>(null);
  const [deleting, setDeleting] = useState<Tenant | null>(null);
  const [shown, setShown] = useState<Tenant | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  return (
    <section>
      <div class="title-row">
        <h1>Tenants</h1>
        <button class="primary" onClick={() => setCreating(true)}>Create tenant</button>
      </div>
      <ErrorLine error={error ?? actionError} />
      {data && data.length === 0 && <p class="empty">No tenants yet. Every VM is the admin's.</p>}
      {data && data.length > 0 && (
        <div class="table-wrap">
          <table class="vms">
            <thead><tr><th>Name</th>{KEYS.map(([, label]) => <th key={label}>{label} (used / quota)</th>)}<th>Token expires</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {data.map((t) => (
                <tr key={t.id} data-tenant={t.name}>
                  <td data-label="Name">{t.name}</td>
                  {KEYS.map(([k, label]) => <td key={k} data-label={label}>{Math.round(t.used[k] * 100) / 100} / {t.quota[k] ?? 'no limit'}</td>)}
                  <td data-label="Token expires">{t.token_expires_at ? new Date(t.token_expires_at).toLocaleString() : 'never'}</td>
                  <td class="actions">
                    <button onClick={() => setEditing(t)} aria-label={`quotas of ${t.name}`}>Quotas</button>
                    <button onClick={async () => {
                      setActionError(null);
                      try { setShown(await api<Tenant>('POST', `/tenants/${t.name}/token`)); } catch (e) { setActionError((e as Error).message); }
                    }} aria-label={`new token for ${t.name}`}>New token</button>
                    <button class="danger-outline" onClick={() => setDeleting(t)} aria-label={`delete ${t.name}`}>Delete</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {creating && <TenantForm onClose={() => setCreating(false)} onDone={(t) => { setCreating(false); setShown(t); reload(); }} />}
      {editing && <TenantForm tenant={editing} onClose={() => setEditing(null)} onDone={() => { setEditing(null); reload(); }} />}
      {deleting && <Confirm title={`Delete tenant ${deleting.name}?`} message={`Tenant "${deleting.name}" and its token will be deleted (its usage stays on record). A tenant with VMs cannot be deleted.`} action="Delete" danger
        onConfirm={async () => { await api('DELETE', `/tenants/${deleting.name}`); reload(); }} onClose={() => setDeleting(null)} />}
      {shown?.token && (
        <Modal title={`Token of ${shown.name}`} onClose={() => setShown(null)}>
          <p>Give this token to the tenant. It is shown only now: the host keeps only its hash.</p>
          <p><code class="token" data-testid="new-token">{shown.token}</code></p>
          <p>Log-in link: <code>{`${location.origin}/?token=${shown.token}`}</code></p>
          <div class="buttons"><button class="primary" onClick={() => setShown(null)} autofocus>Done</button></div>
        </Modal>
      )}
    </section>
  );
}

function TenantForm(props: { tenant?: Tenant; onClose: () => void; onDone: (t: Tenant) => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const t = props.tenant;
  return (
    <Modal title={t ? `Quotas of ${t.name}` : 'Create a tenant'} onClose={props.onClose}>
      <form noValidate onSubmit={async (e) => {
        e.preventDefault();
        const f = new FormData(e.target as HTMLFormElement);
        setBusy(true);
        setError(null);
        try {
          const r = t
            ? await api<Tenant>('PATCH', `/tenants/${t.name}`, { quota: quotaOf(f, true) })
            : await api<Tenant>('POST', '/tenants', { name: String(f.get('name') ?? ''), quota: quotaOf(f, false) });
          props.onDone(r);
        } catch (err) {
          setError((err as Error).message);
          setBusy(false);
        }
      }}>
        {!t && <label>Name <input name="name" autofocus autocomplete="off" placeholder="acme" /></label>}
        <p class="muted">Quotas: what all the tenant's VMs may hold together; empty is no limit.</p>
        <div class="grid2">
          {KEYS.map(([k, label]) => <label key={k}>{label} <input name={k} inputMode="decimal" defaultValue={t?.quota[k] !== undefined ? String(t.quota[k]) : ''} /></label>)}
        </div>
        <ErrorLine error={error} />
        <div class="buttons">
          <button type="button" onClick={props.onClose}>Cancel</button>
          <button type="submit" class="primary" disabled={busy}>{t ? 'Save' : 'Create'}</button>
        </div>
      </form>
    </Modal>
  );
}
