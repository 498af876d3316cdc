// The VM list: every VM the token may see, with its state, allocation and use (refreshed every
// 2 s), the lifecycle actions (stop and delete ask first), and the create dialog.
import { useState } from 'preact/hooks';
import { api, vmRef, type Stats, type Vm } from './api.js';
import { duration, mib, pct } from './format.js';
import { Confirm, ErrorLine, Modal, usePoll } from './ui.js';

interface Row { vm: Vm; stats: Stats | null }

async function loadRows(): Promise<Row[]> {
  const vms = await api<Vm[]>('GET', '/vms');
  return Promise.all(vms.map(async (vm) => ({ vm, stats: vm.pid !== null ? await api<Stats>('GET', `/vms/${vm.id}/stats`).catch(() => null) : null })));
}

export type Action = 'start' | 'stop' | 'pause' | 'resume' | 'delete';

export function actionsFor(state: string): Action[] {
  switch (state) {
    case 'running': return ['pause', 'stop'];
    case 'paused': return ['resume', 'stop'];
    case 'starting': case 'stopping': return ['stop'];
    default: return ['start', 'delete'];
  }
}

/** Runs an action; stop and delete through a confirmation first. */
export function useActions(reload: () => void) {
  const [confirm, setConfirm] = useState<{ vm: Vm; action: Action } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const run = async (vm: Vm, action: Action): Promise<void> => {
    if (action === 'delete') await api('DELETE', `/vms/${vm.id}?force=true`);
    else await api('POST', `/vms/${vm.id}/${action}${action === 'stop' ? '?force=true' : ''}`);
    reload();
  };
  const request = (vm: Vm, action: Action): void => {
    setError(null);
    if (action === 'stop' || action === 'delete') { setConfirm({ vm, action }); return; }
    run(vm, action).catch((e: Error) => setError(e.message));
  };
  const dialog = confirm && (
    <Confirm
      title={`${confirm.action === 'delete' ? 'Delete' : 'Stop'} ${confirm.vm.name}?`}
      message={confirm.action === 'delete'
        ? `VM "${confirm.vm.name}" and its own disk will be deleted${confirm.vm.state !== 'stopped' ? ' (it is stopped first)' : ''}. This cannot be undone.`
        : `VM "${confirm.vm.name}" will be stopped at once, as if its power were cut. Unsaved work in the guest is lost.`}
      action={confirm.action === 'delete' ? 'Delete' : 'Stop'} danger
      onConfirm={() => run(confirm.vm, confirm.action)} onClose={() => setConfirm(null)} />
  );
  return { request, dialog, error };
}

export function VmList() {
  const { data, error, reload } = usePoll(loadRows, 2000);
  const [creating, setCreating] = useState(false);
  const actions = useActions(reload);
  const rows = data ?? [];
  return (
    <section>
      <div class="title-row">
        <h1>Virtual machines</h1>
        <button class="primary" onClick={() => setCreating(true)}>Create VM</button>
      </div>
      <ErrorLine error={error ?? actions.error} />
      {data && rows.length === 0 && <p class="empty">No VMs yet. Create one to start.</p>}
      {rows.length > 0 && (
        <div class="table-wrap">
          <table class="vms">
            <thead>
              <tr><th>Name</th><th>State</th><th>vCPUs</th><th title="the boot size / what the balloon is to leave / what it leaves / what the guest uses">Memory max / target / actual / guest used</th><th>CPU</th><th>Uptime</th><th><span class="sr-only">Actions</span></th></tr>
            </thead>
            <tbody>
              {rows.map(({ vm, stats }) => (
                <tr key={vm.id} data-vm={vm.name}>
                  <td data-label="Name"><a href={`#/vms/${encodeURIComponent(vmRef(vm))}`}>{vm.name}</a>{vm.tenant && <span class="tag">{vm.tenant}</span>}</td>
                  <td data-label="State"><span class={`state state-${vm.state}`}>{vm.state}</span></td>
                  <td data-label="vCPUs">{vm.vcpus}</td>
                  <td data-label="Memory">{mib(vm.memory_mib)} / {mib(stats?.memory.target_mib)} / {mib(stats?.memory.actual_mib)} / {mib(stats?.memory.guest_used_mib)}</td>
                  <td data-label="CPU">{pct(stats?.cpu?.percent)}</td>
                  <td data-label="Uptime">{duration(vm.uptime_s)}</td>
                  <td class="actions">
                    {actionsFor(vm.state).map((a) => (
                      <button key={a} class={a === 'delete' || a === 'stop' ? 'danger-outline' : ''} onClick={() => actions.request(vm, a)} aria-label={`${a} ${vm.name}`}>{a[0].toUpperCase() + a.slice(1)}</button>
                    ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {creating && <CreateVm onClose={() => setCreating(false)} onCreated={(name) => { setCreating(false); location.hash = `#/vms/${encodeURIComponent(name)}`; }} />}
      {actions.dialog}
    </section>
  );
}

/** The create dialog: the API checks every field and its sentence is shown as it is. */
function CreateVm(props: { onClose: () => void; onCreated: (name: string) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    const num = (k: string): number | string | undefined => {
      const v = String(f.get(k) ?? '').trim();
      if (v === '') return undefined;
      return /^-?\d+$/.test(v) ? Number(v) : v; // not a number: sent as is, the API says what is wrong
    };
    const body = {
      name: String(f.get('name') ?? ''),
      image: String(f.get('image')),
      vcpus: num('vcpus'),
      max_vcpus: num('max_vcpus'),
      memory_mib: num('memory'),
      memory_min_mib: num('memory_min'),
      disk_mib: num('disk'),
      nets: [String(f.get('net'))],
      start: f.get('start') === 'on',
    };
    setBusy(true);
    setError(null);
    try {
      await api('POST', '/vms', JSON.parse(JSON.stringify(body)));
      props.onCreated(body.name);
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  };
  return (
    <Modal title="Create a VM" onClose={props.onClose}>
      <form onSubmit={submit} noValidate>
        <label>Name <input name="name" required autofocus autocomplete="off" placeholder="web-1" /></label>
        <label>Image
          <select name="image">
            <option value="initramfs">Initramfs shell (boots in seconds, no disk)</option>
            <option value="default">Debian root disk (its own copy; boots in about a minute)</option>
          </select>
        </label>
        <div class="grid2">
          <label>vCPUs <input name="vcpus" inputMode="numeric" value="1" /></label>
          <label>vCPUs maximum (while it runs) <input name="max_vcpus" inputMode="numeric" placeholder="= vCPUs" /></label>
          <label>Network
            <select name="net"><option value="user">User-mode (NAT)</option><option value="none">None</option></select>
          </label>
          <label>Memory, MiB (maximum) <input name="memory" inputMode="numeric" value="256" /></label>
          <label>Memory minimum, MiB <input name="memory_min" inputMode="numeric" placeholder="= maximum" /></label>
          <label>Disk, MiB (Debian root disk only) <input name="disk" inputMode="numeric" placeholder="the image's size" /></label>
        </div>
        <label class="check"><input type="checkbox" name="start" checked /> Start it now</label>
        <ErrorLine error={error} />
        <div class="buttons">
          <button type="button" onClick={props.onClose}>Cancel</button>
          <button type="submit" class="primary" disabled={busy}>{busy ? 'Creating…' : 'Create'}</button>
        </div>
      </form>
    </Modal>
  );
}
