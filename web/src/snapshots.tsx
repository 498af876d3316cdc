// A VM's snapshots on its page: take one (a name, or the host's default), and restore or delete
// one after a confirmation. Restoring rolls the VM back in place: what it did since is lost.
import { useState } from 'preact/hooks';
import { api, type Vm } from './api.js';
import { mib } from './format.js';
import { Confirm, ErrorLine, usePoll } from './ui.js';

interface Snapshot { name: string; created_at: string; vm_state: string; vcpus: number; memory_mib: number; disks: { name: string }[]; size_bytes: number }

export function Snapshots(props: { vm: Vm; onChanged: () => void }) {
  const vm = props.vm;
  const path = `/vms/${vm.id}/snapshots`;
  const { data, error, reload } = usePoll(() => api<Snapshot[]>('GET', path), 5000, [vm.id]);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<{ snap: Snapshot; action: 'restore' | 'delete' } | null>(null);
  const canTake = vm.state === 'running' || vm.state === 'paused';
  const take = async (e: Event): Promise<void> => {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const name = String(new FormData(form).get('name') ?? '').trim();
    setBusy(true);
    setFailure(null);
    try {
      await api('POST', path, name ? { name } : {});
      form.reset();
      reload();
    } catch (err) {
      setFailure((err as Error).message);
    }
    setBusy(false);
  };
  return (
    <>
      <h2>Snapshots</h2>
      <form class="snapshot-form" onSubmit={take}>
        <label>Snapshot name (optional) <input name="name" placeholder="snap-YYYYMMDD-HHMMSS" /></label>
        <button type="submit" disabled={busy || !canTake} title={canTake ? undefined : 'A snapshot is of a running or paused VM'}>{busy ? 'Taking snapshot…' : 'Take snapshot'}</button>
      </form>
      <ErrorLine error={failure ?? error} />
      {data && data.length > 0 && (
        <table class="snapshots">
          <thead><tr><th>Name</th><th>Taken</th><th>State</th><th>Disks</th><th>Size</th><th><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            {data.map((s) => (
              <tr key={s.name} data-snapshot={s.name}>
                <td data-label="Name">{s.name}</td>
                <td data-label="Taken">{new Date(s.created_at).toLocaleString()}</td>
                <td data-label="State">{s.vm_state}, {s.vcpus} vCPU, {mib(s.memory_mib)}</td>
                <td data-label="Disks">{s.disks.map((d) => d.name).join(', ') || 'none'}</td>
                <td data-label="Size">{mib(s.size_bytes / 1048576)}</td>
                <td class="actions">
                  <button aria-label={`restore ${s.name}`} onClick={() => setConfirm({ snap: s, action: 'restore' })}>Restore</button>
                  <button aria-label={`delete ${s.name}`} class="danger-outline" onClick={() => setConfirm({ snap: s, action: 'delete' })}>Delete</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {data && data.length === 0 && <p class="muted">No snapshots.</p>}
      {confirm && (
        <Confirm
          title={`${confirm.action === 'restore' ? 'Restore' : 'Delete'} ${confirm.snap.name}?`}
          message={confirm.action === 'restore'
            ? `VM "${vm.name}" goes back to ${new Date(confirm.snap.created_at).toLocaleString()}: its memory and disks as they were then. What it did since is lost.`
            : `Snapshot "${confirm.snap.name}" of VM "${vm.name}" will be deleted. This cannot be undone.`}
          action={confirm.action === 'restore' ? 'Restore' : 'Delete'} danger
          onConfirm={async () => {
            if (confirm.action === 'restore') await api('POST', `${path}/${encodeURIComponent(confirm.snap.name)}/restore`);
            else await api('DELETE', `${path}/${encodeURIComponent(confirm.snap.name)}`);
            reload();
            props.onChanged();
          }}
          onClose={() => setConfirm(null)} />
      )}
    </>
  );
}
