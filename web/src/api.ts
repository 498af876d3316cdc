// The host API from the browser. The page holds no token: the one it is given (the ?token= of
// the URL the host prints, or the login form) is exchanged once for the host's session cookie
// (POST /session: HttpOnly, SameSite=Strict, expiring), which every request, EventSource and
// WebSocket then carries by itself. Every error becomes one sentence for the page.

/**
 * A token in the address (the host's printed URL): taken out of the address bar at once (before
 * anything else can read or log it), then exchanged for a session. Null when there is none.
 */
export function takeTokenFromUrl(): string | null {
  const url = new URL(location.href);
  const t = url.searchParams.get('token');
  if (!t) return null;
  url.searchParams.delete('token');
  history.replaceState(null, '', url.pathname + url.search + url.hash);
  return t;
}

/** Logs in: the host checks the token and sets the session cookie; the token is not kept. */
export async function login(token: string): Promise<void> {
  await request('POST', '/session', undefined, token);
}

export async function logout(): Promise<void> {
  await request('DELETE', '/session').catch(() => undefined);
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

export function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  return request<T>(method, path, body);
}

async function request<T>(method: string, path: string, body?: unknown, token?: string): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: { ...(token !== undefined ? { Authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
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
    if (res.status === 401 && token === undefined) for (const f of unauthorized) f(cap);
    throw new ApiError(cap, res.status);
  }
  return parsed as T;
}

export function wsUrl(path: string): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
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
