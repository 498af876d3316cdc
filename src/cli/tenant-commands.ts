/**
 * `vessel tenant ...` (the host's admin makes tenants, sets their quotas, replaces their tokens)
 * and `vessel usage` (metered use and its cost, for the admin or a tenant), through the host
 * API as `vessel vm` does: `--host`, `--token` (or $VESSEL_HOST, $VESSEL_TOKEN).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseMemorySize } from './size.js';
import { call, HostCommandError, table, type Global } from './vm-commands.js';

interface Quota { vcpus?: number; memory_mib?: number; disk_gib?: number; vms?: number }
interface TenantJson { id: string; name: string; created_at: string; quota: Quota; used: Required<Quota>; token?: string; token_expires_at?: string | null }

/** A quota option: a number, or "none" for no limit (null in the API). */
function limit(name: string, parse: (v: string) => number) {
  return (v: string): number | null => {
    if (v === 'none') return null;
    return parse(v);
  };
}

const count = (name: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 100_000) throw new InvalidArgumentError(`${name} must be a whole number from 0 to 100000, or "none"`);
  return n;
};

const mib = (name: string) => (v: string): number => {
  let bytes: number;
  try { bytes = parseMemorySize(v); } catch (e) { throw new InvalidArgumentError(`${name}: ${(e as Error).message}`); }
  return Math.floor(bytes / (1024 * 1024));
};

const gib = (name: string) => (v: string): number => {
  let bytes: number;
  try { bytes = parseMemorySize(/^\d+(\.\d+)?$/.test(v) ? `${v}G` : v); } catch (e) { throw new InvalidArgumentError(`${name}: ${(e as Error).message}`); }
  return Math.round((bytes / 1024 ** 3) * 1000) / 1000;
};

/** A time to live: 90s, 30m, 12h, 7d, or seconds. */
function ttl(v: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(v.trim());
  const n = m ? Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'] : NaN;
  if (!(n >= 1 && n <= 315_360_000)) throw new InvalidArgumentError(`--token-ttl "${v}" is not a time such as 90s, 30m, 12h or 7d (at most 10 years)`);
  return n;
}

function quotaOptions(c: Command): Command {
  return c
    .option('--vcpus <n|none>', 'at most this many vCPUs in all its VMs', limit('--vcpus', count('--vcpus')))
    .option('--memory <size|none>', 'at most this much memory in all its VMs, e.g. 4G', limit('--memory', mib('--memory')))
    .option('--disk <size|none>', 'at most this much disk in all its VMs, e.g. 20G', limit('--disk', gib('--disk')))
    .option('--vms <n|none>', 'at most this many VMs', limit('--vms', count('--vms')));
}

interface QuotaOpts { vcpus?: number | null; memory?: number | null; disk?: number | null; vms?: number | null }

function quotaOf(o: QuotaOpts, keepNull: boolean): Record<string, number | null> {
  const q: Record<string, number | null> = {};
  const set = (k: string, v: number | null | undefined): void => { if (v !== undefined && (v !== null || keepNull)) q[k] = v; };
  set('vcpus', o.vcpus); set('memory_mib', o.memory); set('disk_gib', o.disk); set('vms', o.vms);
  return q;
}

const of = (used: number, max: number | undefined, unit = ''): string => `${Math.round(used * 100) / 100}${unit}${max === undefined ? '' : ` / ${max}${unit}`}`;

function showTenant(t: TenantJson): string {
  return [
    `Name:     ${t.name}`, `Id:       ${t.id}`, `Created:  ${t.created_at}`,
    `VMs:      ${of(t.used.vms, t.quota.vms)}`, `vCPUs:    ${of(t.used.vcpus, t.quota.vcpus)}`,
    `Memory:   ${of(t.used.memory_mib, t.quota.memory_mib, ' MiB')}`, `Disk:     ${of(t.used.disk_gib, t.quota.disk_gib, ' GiB')}`,
    ...(t.token ? [`Token:    ${t.token}`, '(shown once: the host keeps only its hash)'] : []),
    `Expires:  ${t.token_expires_at ?? 'never (until replaced)'}`,
  ].join('\n') + '\n';
}

export function registerTenantCommands(program: Command): void {
  const hostOpts = (c: Command): Command => c
    .addOption(new Option('--host <socket|url>', 'the host\'s API socket, or http://ADDR:PORT (default: $VESSEL_HOST, else the default state directory\'s host.sock)'))
    .addOption(new Option('--token <token>', 'the admin\'s or a tenant\'s token (default $VESSEL_TOKEN; none needed on the host\'s socket for the admin)'));
  const tenant = hostOpts(program.command('tenant')
    .description('the host\'s tenants (admin): create, list, show, set (quotas), token (a new one), delete'));
  const g = (): Global => tenant.opts<Global>();
  const out = (s: string): void => { process.stdout.write(s); };

  quotaOptions(tenant.command('create').description('make a tenant and print its API token (shown once)').argument('<name>', 'lower-case letters, digits, _ -'))
    .option('--token-ttl <time>', 'the token works this long (90s, 30m, 12h, 7d; default: until replaced)', ttl)
    .option('--json', 'as JSON')
    .action(async (name: string, o: QuotaOpts & { json?: boolean; tokenTtl?: number }) => {
      const t = await call<TenantJson>(g(), 'POST', '/tenants', { name, quota: quotaOf(o, false), ...(o.tokenTtl !== undefined ? { token_ttl_s: o.tokenTtl } : {}) });
      out(o.json ? JSON.stringify(t, null, 2) + '\n' : showTenant(t));
    });

  tenant.command('list').alias('ls').description('every tenant with its quotas and use').option('--json', 'as JSON')
    .action(async (o: { json?: boolean }) => {
      const ts = await call<TenantJson[]>(g(), 'GET', '/tenants');
      if (o.json) { out(JSON.stringify(ts, null, 2) + '\n'); return; }
      out(table(['NAME', 'ID', 'VMS', 'VCPUS', 'MEMORY MIB', 'DISK GIB'], ts.map((t) => [t.name, t.id, of(t.used.vms, t.quota.vms), of(t.used.vcpus, t.quota.vcpus), of(t.used.memory_mib, t.quota.memory_mib), of(t.used.disk_gib, t.quota.disk_gib)])));
    });

  tenant.command('show').description('one tenant: its quotas and what its VMs hold').argument('<name>').option('--json', 'as JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const t = await call<TenantJson>(g(), 'GET', `/tenants/${encodeURIComponent(name)}`);
      out(o.json ? JSON.stringify(t, null, 2) + '\n' : showTenant(t));
    });

  quotaOptions(tenant.command('set').description('change a tenant\'s quotas ("none" removes one)').argument('<name>'))
    .option('--json', 'as JSON')
    .action(async (name: string, o: QuotaOpts & { json?: boolean }) => {
      const quota = quotaOf(o, true);
      if (Object.keys(quota).length === 0) throw new HostCommandError('vessel tenant set: nothing to change (give --vcpus, --memory, --disk or --vms)', 2);
      const t = await call<TenantJson>(g(), 'PATCH', `/tenants/${encodeURIComponent(name)}`, { quota });
      out(o.json ? JSON.stringify(t, null, 2) + '\n' : showTenant(t));
    });

  tenant.command('token').description('replace a tenant\'s token (the old one stops working) and print the new one').argument('<name>')
    .option('--token-ttl <time>', 'the new token works this long (90s, 30m, 12h, 7d; default: until replaced)', ttl)
    .action(async (name: string, o: { tokenTtl?: number }) => {
      const t = await call<TenantJson>(g(), 'POST', `/tenants/${encodeURIComponent(name)}/token`, o.tokenTtl !== undefined ? { token_ttl_s: o.tokenTtl } : undefined);
      out(`${t.token}\n`);
    });

  tenant.command('delete').alias('rm').description('delete a tenant that has no VMs left').argument('<name...>')
    .action(async (names: string[]) => {
      for (const n of names) {
        await call(g(), 'DELETE', `/tenants/${encodeURIComponent(n)}`);
        out(`${n} deleted\n`);
      }
    });

  const usage = hostOpts(program.command('usage')
    .description('metered use and its cost per tenant and VM (a tenant sees its own), with what dedicated servers would have cost'))
    .option('--from <date|time>', 'start (default: the first of this month)')
    .option('--to <date|time>', 'end (default: now)')
    .option('--tenant <name>', 'one tenant only (admin)')
    .option('--json', 'as JSON');
  usage.action(async (o: Global & { from?: string; to?: string; tenant?: string; json?: boolean }) => {
    const q = new URLSearchParams();
    if (o.from) q.set('from', o.from);
    if (o.to) q.set('to', o.to);
    if (o.tenant) q.set('tenant', o.tenant);
    interface Row { vm_name?: string; vcpu_seconds_allotted: number; vcpu_seconds_used: number; memory_gib_hours_allotted: number; memory_gib_hours_held: number; disk_gib_hours: number; net_rx_bytes: number; net_tx_bytes: number; cost: { total: number } }
    const u = await call<{ from: string; to: string; prices: { currency: string; dedicated_server: { name: string } }; tenants: { tenant: string | null; vms: Row[]; totals: Row; dedicated: { servers: number; cost: number } }[]; total: number }>(o, 'GET', `/usage${q.size ? `?${q}` : ''}`);
    if (o.json) { out(JSON.stringify(u, null, 2) + '\n'); return; }
    const cur = u.prices.currency;
    const row = (tenantName: string, name: string, r: Row): (string | number)[] => [tenantName, name, r.vcpu_seconds_allotted.toFixed(0), r.vcpu_seconds_used.toFixed(1), r.memory_gib_hours_allotted.toFixed(4), r.memory_gib_hours_held.toFixed(4), r.disk_gib_hours.toFixed(4), `${((r.net_rx_bytes + r.net_tx_bytes) / 1048576).toFixed(2)}`, `${r.cost.total.toFixed(4)} ${cur}`];
    out(`Usage from ${u.from} to ${u.to}\n`);
    out(table(['TENANT', 'VM', 'VCPU-S ALLOTTED', 'VCPU-S USED', 'MEM GIB-H ALLOTTED', 'MEM GIB-H HELD', 'DISK GIB-H', 'NET MIB', 'COST'],
      u.tenants.flatMap((t) => [...t.vms.map((v) => row(t.tenant ?? '(admin)', v.vm_name ?? '', v)), row(t.tenant ?? '(admin)', 'total', t.totals)])));
    for (const t of u.tenants) out(`${t.tenant ?? '(admin)'}: ${t.totals.cost.total.toFixed(4)} ${cur}; as dedicated servers (${u.prices.dedicated_server.name}): ${t.dedicated.servers} x = ${t.dedicated.cost.toFixed(4)} ${cur}\n`);
    out(`Total: ${u.total.toFixed(4)} ${cur}\n`);
  });
}
