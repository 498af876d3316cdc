// One VM: its state and settings, the actions, live graphs fed by the host's server-sent events
// (CPU, memory target/actual/guest available, disk and network throughput over the last five
// minutes), the balloon's state, changes that apply at once (memory target, CPU weight and cap,
// vCPUs, every writable disk's size), snapshots, and its serial console.
import { useEffect, useState } from 'preact/hooks';
import { api, type Stats, type Vm, type VmEvent } from './api.js';
import { SerialConsole } from './console.js';
import { duration, mib } from './format.js';
import { Graph } from './graph.js';
import { actionsFor, useActions } from './vms.js';
import { Snapshots } from './snapshots.js';
import { ErrorLine, usePoll } from './ui.js';

const POINTS = 150; // 5 minutes at one sample every 2 s

interface Series { t: number[]; cpu: number[]; target: number[]; actual: number[]; avail: number[]; rd: number[]; wr: number[]; rx: number[]; tx: number[] }
const empty = (): Series => ({ t: [], cpu: [], target: [], actual: [], avail: [], rd: [], wr: [], rx: [], tx: [] });

function sum(r: Record<string, Record<string, number>>, k: string): number {
  return Object.values(r).reduce((a, x) => a + (x[k] ?? 0), 0);
}

/** The VM's stats stream, as series for the graphs; rates from the difference of two samples. */
function useStatsStream(name: string): { series: Series; live: boolean } {
  const [series, setSeries] = useState<Series>(empty);
  const [live, setLive] = useState(false);
  useEffect(() => {
    let prev: { at: number; rd: number; wr: number; rx: number; tx: number } | null = null;
    const es = new EventSource(`/vms/${encodeURIComponent(name)}/stats/stream`);
    es.onopen = () => setLive(true);
    es.onerror = () => setLive(false);
    /** Appends one sample to `old` (rates from the difference with the sample before). */
    const add = (old: Series, s: Stats, at: number): Series => {
      const cur = { at, rd: sum(s.disk, 'read_bytes'), wr: sum(s.disk, 'write_bytes'), rx: sum(s.net, 'rx_bytes'), tx: sum(s.net, 'tx_bytes') };
      const rate = (k: 'rd' | 'wr' | 'rx' | 'tx'): number => (prev && at > prev.at ? Math.max(0, (cur[k] - prev[k]) / (at - prev.at) / 1024) : 0);
      const point = { cpu: s.cpu?.percent ?? 0, target: s.memory.target_mib ?? s.memory.guest_mib, actual: s.memory.actual_mib ?? s.memory.guest_mib, avail: s.memory.guest_available_mib ?? 0, rd: rate('rd'), wr: rate('wr'), rx: rate('rx'), tx: rate('tx') };
      prev = cur;
      const next = empty();
      for (const k of Object.keys(next) as (keyof Series)[]) next[k] = [...old[k], k === 't' ? at : point[k as keyof typeof point]].slice(-POINTS);
      return next;
    };
    // The host's last minutes first (a page opened now has graphs of the time before it), then live.
    es.addEventListener('history', (m) => {
      prev = null;
      let series = empty();
      for (const p of JSON.parse((m as MessageEvent).data) as { at: string; stats: Stats | null }[]) {
        if (p.stats) series = add(series, p.stats, Date.parse(p.at) / 1000);
      }
      setSeries(series);
    });
    es.addEventListener('stats', (m) => {
      const s = JSON.parse((m as MessageEvent).data) as Stats;
      setSeries((old) => add(old, s, Date.now() / 1000));
    });
    es.addEventListener('gone', () => es.close());
    return () => es.close();
  }, [name]);
  return { series, live };
}

export function VmPage(props: { name: string }) {
  const { data: vm, error, reload } = usePoll(() => api<Vm>('GET', `/vms/${encodeURIComponent(props.name)}`), 2000, [props.name]);
  const { series, live } = useStatsStream(props.name);
  const actions = useActions(reload);
  if (!vm) return <section><p><a href="#/">← All VMs</a></p><ErrorLine error={error ?? null} />{!error && <p>Loading…</p>}</section>;
  return (
    <section>
      <p><a href="#/">← All VMs</a></p>
      <div class="title-row">
        <h1>{vm.name} <span class={`state state-${vm.state}`}>{vm.state}</span></h1>
        <div class="actions">
          {actionsFor(vm.state).map((a) => (
            <button key={a} class={a === 'delete' || a === 'stop' ? 'danger-outline' : ''} onClick={() => actions.request(vm, a)}>{a[0].toUpperCase() + a.slice(1)}</button>
          ))}
        </div>
      </div>
      <ErrorLine error={error ?? actions.error} />
      {vm.error && <p class="error">The last start failed: {vm.error}</p>}
      <dl class="facts">
        <dt>vCPUs</dt><dd>{vm.vcpus}{vm.max_vcpus && vm.max_vcpus !== vm.vcpus ? ` (at most ${vm.max_vcpus} while it runs)` : ''}</dd>
        <dt>Memory</dt><dd>{mib(vm.memory_mib)} at most, {mib(vm.memory_min_mib)} at least; target {vm.memory_target === 'auto' ? 'set by the host\'s policy' : `${vm.memory_target} MiB, set by hand`}</dd>
        {vm.pid !== null && <Balloon vm={vm.id} />}
        <dt>CPU</dt><dd>weight {vm.cpu_weight}, cap {vm.cpu_cap ? `${vm.cpu_cap} % of a core` : 'none'}</dd>
        <dt>Uptime</dt><dd>{duration(vm.uptime_s)}</dd>
        <dt>Network</dt><dd>{vm.nets.length ? vm.nets.join(', ') : 'none'}</dd>
        <dt>Disks</dt><dd>{vm.disks.length ? vm.disks.map((d, i) => `vd${String.fromCharCode(97 + i)}${d.size_bytes ? ` ${mib(d.size_bytes / 1048576)}` : ''}${d.readonly ? ' (read-only)' : ''}`).join(', ') : 'none'}</dd>
        {vm.tenant && <><dt>Tenant</dt><dd>{vm.tenant}</dd></>}
        {vm.last_exit && <><dt>Last exit</dt><dd>{vm.last_exit.reason}</dd></>}
      </dl>
      <Resize vm={vm} onChanged={reload} />
      <h2>Live <span class="muted">{live ? '' : '(waiting for the host…)'}</span></h2>
      <div class="graphs">
        <Graph title="CPU" unit="%" series={['of one core']} data={[series.t, series.cpu]} />
        <Graph title="Memory" unit="MiB" series={['target', 'actual', 'guest available']} data={[series.t, series.target, series.actual, series.avail]} />
        <Graph title="Disk" unit="KiB/s" series={['read', 'write']} data={[series.t, series.rd, series.wr]} />
        <Graph title="Network" unit="KiB/s" series={['received', 'sent']} data={[series.t, series.rx, series.tx]} />
      </div>
      <h2>Serial console</h2>
      <SerialConsole vm={vm.id} />
      <Snapshots vm={vm} onChanged={reload} />
      <Events vm={vm.id} />
      {actions.dialog}
    </section>
  );
}

/**
 * Changes: the balloon's target, CPU weight and cap (at once), vCPUs (a stopped VM's, from its
 * next start; the host refuses a running VM's with its reason) and each writable disk's size
 * (grown live, its file system too when the guest agent can; the host's notes say what happened).
 */
function Resize(props: { vm: Vm; onChanged: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const vm = props.vm;
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    setError(null);
    setDone(null);
    const val = (k: string): number | string => { const v = String(f.get(k) ?? '').trim(); return /^\d+$/.test(v) ? Number(v) : v; };
    try {
      const target = String(f.get('target') ?? '').trim();
      if (target !== '' && target !== String(vm.memory_target)) await api('PATCH', `/vms/${vm.id}/memory`, { target_mib: target === 'auto' ? 'auto' : val('target') });
      const change: Record<string, unknown> = {};
      if (String(val('weight')) !== String(vm.cpu_weight)) change.cpu_weight = val('weight');
      if (String(val('cap')) !== String(vm.cpu_cap)) change.cpu_cap = val('cap');
      if (String(val('vcpus')) !== String(vm.vcpus)) change.vcpus = val('vcpus');
      if (Object.keys(change).length) await api('PATCH', `/vms/${vm.id}`, change);
      const notes: string[] = [];
      for (const [i, d] of vm.disks.entries()) {
        const name = diskName(i);
        const given = String(f.get(`disk-${name}`) ?? '').trim();
        if (d.readonly || given === '' || (d.size_bytes != null && Number(given) * 1048576 === d.size_bytes)) continue;
        const r = await api<{ notes: string[] }>('POST', `/vms/${vm.id}/disks/${name}/resize`, { size_bytes: /^\d+$/.test(given) ? Number(given) * 1048576 : given });
        notes.push(...r.notes);
      }
      setDone(notes.length ? `Applied. ${notes.join('. ')}.` : 'Applied.');
      props.onChanged();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <form class="resize" onSubmit={submit} noValidate>
      <h2>Change</h2>
      <div class="grid3">
        <label>Memory target, MiB or auto <input name="target" defaultValue={String(vm.memory_target)} /></label>
        <label>CPU weight (1–10000) <input name="weight" inputMode="numeric" defaultValue={String(vm.cpu_weight)} /></label>
        <label>CPU cap, % of a core (0 = none) <input name="cap" inputMode="numeric" defaultValue={String(vm.cpu_cap)} /></label>
        <label>vCPUs <input name="vcpus" inputMode="numeric" defaultValue={String(vm.vcpus)} /></label>
        {vm.disks.map((d, i) => !d.readonly && (
          <label key={diskName(i)}>Disk {diskName(i)}, MiB (grow only) <input name={`disk-${diskName(i)}`} inputMode="numeric" defaultValue={d.size_bytes ? String(Math.round(d.size_bytes / 1048576)) : ''} /></label>
        ))}
      </div>
      <ErrorLine error={error} />
      {done && <p class="ok" role="status">{done}</p>}
      <button type="submit">Apply</button>
    </form>
  );
}

const diskName = (i: number): string => `vd${String.fromCharCode(97 + i)}`;

interface MemoryView { balloon: string | null; balloon_driver: boolean | null; backoff_until: string | null; skipped: string | null }

/**
 * The balloon as the host's memory policy sees it (GET /vms/{vm}/memory): whether the guest's
 * driver runs it, and a back-off (the guest gave nothing back when asked; not asked to shrink until then).
 */
function Balloon(props: { vm: string }) {
  const { data } = usePoll(() => api<MemoryView>('GET', `/vms/${props.vm}/memory`), 5000, [props.vm]);
  if (!data?.balloon) return null;
  const until = data.backoff_until ? new Date(data.backoff_until) : null;
  return (
    <>
      <dt>Balloon</dt>
      <dd data-testid="balloon" class={data.balloon_driver === false ? 'warn' : undefined}>
        {data.balloon}{until ? `; backing off until ${until.toLocaleTimeString()} (the guest gave nothing back when asked)` : ''}
        {data.balloon_driver === false && data.skipped ? <span class="muted"> — {data.skipped}</span> : null}
      </dd>
    </>
  );
}

/** The VM's last events: created, started, exited with the reason, memory decisions, ... */
function Events(props: { vm: string }) {
  const { data } = usePoll(() => api<VmEvent[]>('GET', `/vms/${props.vm}/events?limit=15`), 5000, [props.vm]);
  if (!data || data.length === 0) return null;
  return (
    <>
      <h2>Events</h2>
      <ul class="events">{[...data].reverse().map((e) => <li key={e.id}><time>{new Date(e.at).toLocaleTimeString()}</time> <b>{e.kind}</b>: {e.message}</li>)}</ul>
    </>
  );
}
