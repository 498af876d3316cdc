// The host: its CPU and memory, every VM's share of them, and the memory policy's recent
// decisions with their reasons (the event log's "memory" events).
import { api, type HostInfo, type Stats, type Vm, type VmEvent } from './api.js';
import { bytes, mib, pct } from './format.js';
import { ErrorLine, usePoll } from './ui.js';

async function load() {
  const [host, vms, events] = await Promise.all([api<HostInfo>('GET', '/host'), api<Vm[]>('GET', '/vms'), api<VmEvent[]>('GET', '/events?limit=1000')]);
  const stats = await Promise.all(vms.filter((v) => v.pid !== null).map((v) => api<Stats>('GET', `/vms/${v.id}/stats`).catch(() => null)));
  return { host, vms, stats: stats.filter((s): s is Stats => s !== null), decisions: events.filter((e) => e.kind === 'memory').slice(-20).reverse() };
}

export function HostPage() {
  const { data, error } = usePoll(load, 3000);
  if (!data) return <section><h1>Host</h1><ErrorLine error={error} />{!error && <p>Loading…</p>}</section>;
  const { host, stats, decisions } = data;
  const totalMib = host.memory.total_bytes / 1048576;
  return (
    <section>
      <h1>Host</h1>
      <ErrorLine error={error} />
      <dl class="facts">
        <dt>Vessel</dt><dd>{host.vessel_version}</dd>
        <dt>CPU</dt><dd>{host.cpus} cores, {pct(host.cpu_percent)} busy (100 % = one core)</dd>
        <dt>Memory</dt><dd>{bytes(host.memory.used_bytes)} used of {bytes(host.memory.total_bytes)} ({bytes(host.memory.available_bytes)} available)</dd>
        <dt>CPU shares</dt><dd>{host.cgroups.enforced ? `enforced (cgroup ${host.cgroups.mode})` : `not enforced: ${host.cgroups.reason ?? 'no cgroup CPU controller'}`}</dd>
        <dt>VMs</dt><dd>{host.vms}{host.tenants !== undefined ? `, ${host.tenants} tenants` : ''}</dd>
        {!host.you.admin && <><dt>Your quota</dt><dd>{Object.entries(host.you.used).map(([k, v]) => `${k} ${Math.round(v * 100) / 100}${host.you.admin ? '' : (host.you as { quota: Record<string, number> }).quota[k] !== undefined ? ` of ${(host.you as { quota: Record<string, number> }).quota[k]}` : ''}`).join(', ')}</dd></>}
      </dl>
      <h2>Share of the host</h2>
      {stats.length === 0 ? <p class="empty">No VM runs.</p> : (
        <div class="table-wrap">
          <table>
            <thead><tr><th>VM</th><th>CPU (of all cores)</th><th>Memory held (balloon actual)</th><th>Host RSS</th></tr></thead>
            <tbody>
              {stats.map((s) => {
                const cpuShare = (s.cpu?.percent ?? 0) / host.cpus;
                const memShare = ((s.memory.actual_mib ?? s.memory.guest_mib) / totalMib) * 100;
                return (
                  <tr key={s.id}>
                    <td data-label="VM"><a href={`#/vms/${s.id}`}>{s.name}</a></td>
                    <td data-label="CPU"><Bar value={cpuShare} /> {pct(cpuShare)}</td>
                    <td data-label="Memory"><Bar value={memShare} /> {mib(s.memory.actual_mib ?? s.memory.guest_mib)} ({pct(memShare)})</td>
                    <td data-label="RSS">{bytes(s.memory.rss_bytes)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <h2>Memory policy: recent decisions</h2>
      {decisions.length === 0 ? <p class="empty">No decisions yet.</p> : (
        <ul class="events">{decisions.map((e) => <li key={e.id}><time>{new Date(e.at).toLocaleTimeString()}</time> <b>{e.vm_name}</b>: {e.message}</li>)}</ul>
      )}
    </section>
  );
}

function Bar(props: { value: number }) {
  return <span class="bar" aria-hidden="true"><span style={{ width: `${Math.min(100, Math.max(0, props.value))}%` }} /></span>;
}
