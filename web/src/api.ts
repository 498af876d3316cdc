// The host API from the browser: the token (from the login, or the ?token= of the URL the host
// printed) is kept in localStorage and sent as a bearer header; EventSource and WebSocket cannot
// send headers, so they carry it as ?token=. Every error becomes one sentence for the page.

const KEY = 'vessel.token';

export function token(): string | null {
  return localStorage.getItem(KEY);
}

export function setToken(t: string | null): void {
  if (t === null) localStorage.removeItem(KEY); else localStorage.setItem(KEY, t);
}

/** A token in the address (the host's printed URL) logs in at once and leaves the address. */
export function takeTokenFromUrl(): void {
  const url = new URL(location.href);
  const t = url.searchParams.get('token');
  if (t) {
    setToken(t);
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
}

export class ApiError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

/** Listeners for a 401: the token is no longer valid (replaced, or its tenant deleted). */
const unauthorized = new Set<(why: string) => void>();
export function onUnauthorized(f: (why: string) => void): () => void {
  unauthorized.add(f);
  return () => unauthorized.delete(f);
}

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: { Authorization: `Bearer ${token() ?? ''}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch {
    throw new ApiError('The host does not answer: it may be restarting or the network is down. Trying again shortly.', 0);
  }
  const text = await res.text();
  let parsed: unknown;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = undefined; }
  if (!res.ok) {
    const msg = (parsed as { fault_message?: string } | undefined)?.fault_message ?? `The host answered ${res.status} ${res.statusText}.`;
    const sentence = /[.!?)]$/.test(msg) ? msg : `${msg}.`;
    const cap = sentence.charAt(0).toUpperCase() + sentence.slice(1);
    if (res.status === 401) for (const f of unauthorized) f(cap);
    throw new ApiError(cap, res.status);
  }
  return parsed as T;
}

export function withToken(path: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token() ?? '')}`;
}

export function wsUrl(path: string): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${withToken(path)}`;
}

export interface Vm {
  id: string; name: string; tenant: string | null; state: string; desired_state: string; vcpus: number; max_vcpus?: number;
  memory_mib: number; memory_min_mib: number; memory_target: number | 'auto'; cpu_weight: number; cpu_cap: number;
  uptime_s: number; pid: number | null; error: string | null; last_exit: { reason: string; at: string } | null; nets: string[];
  disks: { path: string; readonly: boolean; size_bytes?: number | null }[]; restart: string; created_at: string;
}

/** How the page names a VM in its address and API paths: names are unique per tenant, so `tenant/name` for a tenant's VM. */
export function vmRef(vm: Pick<Vm, 'name' | 'tenant'>): string {
  return vm.tenant ? `${vm.tenant}/${vm.name}` : vm.name;
}

export interface Stats {
  id: string; name: string; state: string; vcpus: number;
  cpu: { usage_s: number; percent: number } | null;
  memory: { guest_mib: number; rss_bytes: number | null; target_mib: number | null; actual_mib: number | null; guest_used_mib: number | null; guest_available_mib: number | null; manual: boolean };
  disk: Record<string, { read_bytes: number; write_bytes: number }>;
  net: Record<string, { rx_bytes: number; tx_bytes: number }>;
}

export interface HostInfo {
  vessel_version: string; cpus: number; cpu_percent: number; vms: number;
  memory: { total_bytes: number; available_bytes: number; used_bytes: number };
  cgroups: { mode: string; enforced: boolean; reason?: string };
  tenants?: number;
  you: { admin: true } | { admin: false; tenant: string; quota: Record<string, number>; used: Record<string, number> };
}

export interface VmEvent { id: number; vm_id: string | null; vm_name: string | null; at: string; kind: string; message: string }
