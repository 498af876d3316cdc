// Usage and cost: what each tenant's VMs were given and used between two dates, the bill at the
// host's prices, and what dedicated servers for the same VMs would have cost.
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { ErrorLine, usePoll } from './ui.js';

interface Row { vm_name?: string; vcpu_seconds_allotted: number; vcpu_seconds_used: number; memory_gib_hours_allotted: number; memory_gib_hours_held: number; disk_gib_hours: number; net_rx_bytes: number; net_tx_bytes: number; cost: { cpu: number; memory: number; disk: number; network: number; total: number } }
interface Usage {
  from: string; to: string; hours: number; total: number;
  prices: { currency: string; vcpu_hour: number; cpu_basis: string; memory_gib_hour: number; memory_basis: string; disk_gib_month: number; network_gib: number; dedicated_server: { name: string; monthly: number; vcpus: number; memory_gib: number } };
  tenants: { tenant: string | null; vms: Row[]; totals: Row; dedicated: { servers: number; cost: number; saving: number; peak_vcpus: number; peak_memory_gib: number } }[];
}

const monthStart = (): string => { const d = new Date(); return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)).toISOString().slice(0, 10); };

export function UsagePage() {
  const [range, setRange] = useState({ from: monthStart(), to: '' });
  const q = new URLSearchParams({ from: range.from, ...(range.to ? { to: range.to } : {}) });
  const { data, error } = usePoll(() => api<Usage>('GET', `/usage?${q}`), 10_000, [range.from, range.to]);
  const money = (v: number): string => `${v.toFixed(v < 0.01 ? 6 : v < 1 ? 4 : 2)} ${data?.prices.currency ?? ''}`;
  const line = (name: string, r: Row, total = false) => (
    <tr class={total ? 'total' : ''}>
      <td data-label="VM">{name}</td>
      <td data-label="vCPU-h allotted / used">{(r.vcpu_seconds_allotted / 3600).toFixed(3)} / {(r.vcpu_seconds_used / 3600).toFixed(3)}</td>
      <td data-label="Memory GiB-h allotted / held">{r.memory_gib_hours_allotted.toFixed(3)} / {r.memory_gib_hours_held.toFixed(3)}</td>
      <td data-label="Disk GiB-h">{r.disk_gib_hours.toFixed(2)}</td>
      <td data-label="Network MiB">{((r.net_rx_bytes + r.net_tx_bytes) / 1048576).toFixed(2)}</td>
      <td data-label="Cost">{money(r.cost.total)}</td>
    </tr>
  );
  return (
    <section>
      <h1>Usage and cost</h1>
      <form class="range" onSubmit={(e) => { e.preventDefault(); const f = new FormData(e.target as HTMLFormElement); setRange({ from: String(f.get('from')), to: String(f.get('to')) }); }}>
        <label>From <input type="date" name="from" defaultValue={range.from} /></label>
        <label>To <input type="date" name="to" defaultValue={range.to} /> </label>
        <button type="submit">Show</button>
      </form>
      <ErrorLine error={error} />
      {data && (
        <>
          <p class="muted">From {new Date(data.from).toLocaleString()} to {new Date(data.to).toLocaleString()} ({data.hours.toFixed(1)} h). Prices: {data.prices.vcpu_hour} per vCPU-hour {data.prices.cpu_basis}, {data.prices.memory_gib_hour} per GiB-hour of memory {data.prices.memory_basis}, {data.prices.disk_gib_month} per GiB-month of disk, {data.prices.network_gib} per GiB of traffic ({data.prices.currency}).</p>
          {data.tenants.length === 0 && <p class="empty">Nothing ran in this time.</p>}
          {data.tenants.map((t) => (
            <article key={t.tenant ?? '-'} class="bill">
              <h2>{t.tenant ?? 'The admin\'s VMs'}</h2>
              <div class="table-wrap">
                <table>
                  <thead><tr><th>VM</th><th>vCPU-hours allotted / used</th><th>Memory GiB-hours allotted / held</th><th>Disk GiB-hours</th><th>Network MiB</th><th>Cost</th></tr></thead>
                  <tbody>
                    {t.vms.map((v) => line(v.vm_name ?? '', v))}
                    {line('Total', t.totals, true)}
                  </tbody>
                </table>
              </div>
              <p class="compare">
                Billed: <b>{money(t.totals.cost.total)}</b> (CPU {money(t.totals.cost.cpu)}, memory {money(t.totals.cost.memory)}, disk {money(t.totals.cost.disk)}, network {money(t.totals.cost.network)}).
                {' '}As dedicated servers ({data.prices.dedicated_server.name} at {data.prices.dedicated_server.monthly} {data.prices.currency} a month): the peak of {t.dedicated.peak_vcpus} vCPUs and {t.dedicated.peak_memory_gib} GiB needs {t.dedicated.servers} server{t.dedicated.servers === 1 ? '' : 's'}, <b>{money(t.dedicated.cost)}</b> for these {data.hours.toFixed(1)} hours (a server is rented whether its VMs run or not)
                {t.dedicated.saving > 0 ? `: ${money(t.dedicated.saving)} more than these VMs.` : '.'}
              </p>
            </article>
          ))}
          {data.tenants.length > 1 && <p><b>Total: {money(data.total)}</b></p>}
        </>
      )}
    </section>
  );
}
