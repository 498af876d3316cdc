// The Vessel web console: a login with a token (the ?token= URL the host prints logs in with
// one click), then the VMs, a VM's page, the host and the usage, routed by the address's hash.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, onUnauthorized, setToken, takeTokenFromUrl, token, type HostInfo } from './api.js';
import { HostPage } from './host.js';
import { TenantsPage } from './tenants.js';
import { UsagePage } from './usage.js';
import { VmPage } from './vm.js';
import { VmList } from './vms.js';
import { ErrorLine } from './ui.js';
import './style.css';

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const f = (): void => setHash(location.hash);
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return hash;
}

function Login(props: { reason: string | null; onLogin: () => void }) {
  const [error, setError] = useState<string | null>(props.reason);
  const [busy, setBusy] = useState(false);
  return (
    <main class="login">
      <h1>Vessel</h1>
      <p>Log in with the host's token (printed by <code>vessel host --listen</code> and kept in its state directory) or a tenant's token.</p>
      <form onSubmit={async (e) => {
        e.preventDefault();
        const t = String(new FormData(e.target as HTMLFormElement).get('token') ?? '').trim();
        if (!t) { setError('Enter a token.'); return; }
        setBusy(true);
        setToken(t);
        try {
          await api('GET', '/host');
          props.onLogin();
        } catch (err) {
          setToken(null);
          setError((err as Error).message);
          setBusy(false);
        }
      }}>
        <label>Token <input name="token" type="password" autocomplete="current-password" autofocus required /></label>
        <ErrorLine error={error} />
        <button class="primary" type="submit" disabled={busy}>{busy ? 'Logging in…' : 'Log in'}</button>
      </form>
    </main>
  );
}

function App() {
  const [who, setWho] = useState<HostInfo['you'] | null>(null);
  const [reason, setReason] = useState<string | null>(null);
  const [checked, setChecked] = useState(false);
  const hash = useHash();
  const check = async (): Promise<void> => {
    if (!token()) { setWho(null); setChecked(true); return; }
    try {
      setWho((await api<HostInfo>('GET', '/host')).you);
      setReason(null);
    } catch (e) {
      setWho(null);
      setReason((e as Error).message);
      if ((e as { status?: number }).status === 401) setToken(null);
    }
    setChecked(true);
  };
  useEffect(() => { void check(); }, []);
  useEffect(() => onUnauthorized((why) => { setToken(null); setWho(null); setReason(`${why} Log in again.`); }), []);
  if (!checked) return <p class="muted">Loading…</p>;
  if (!who) {
    // A token that is there but did not work for another reason (the host is down): retry.
    if (token() && reason) return <main class="login"><h1>Vessel</h1><ErrorLine error={reason} /><button onClick={() => void check()}>Try again</button></main>;
    return <Login reason={reason} onLogin={() => void check()} />;
  }
  const m = /^#\/vms\/([^/]+)$/.exec(hash);
  const page = m ? <VmPage name={decodeURIComponent(m[1])} /> : hash === '#/host' ? <HostPage /> : hash === '#/usage' ? <UsagePage /> : hash === '#/tenants' && who.admin ? <TenantsPage /> : <VmList />;
  const here = m ? '#/' : hash || '#/';
  return (
    <>
      <header>
        <a class="brand" href="#/">Vessel</a>
        <nav aria-label="main">
          {[['#/', 'VMs'], ['#/host', 'Host'], ['#/usage', 'Usage'], ...(who.admin ? [['#/tenants', 'Tenants']] : [])].map(([h, label]) => (
            <a key={h} href={h} aria-current={here === h ? 'page' : undefined}>{label}</a>
          ))}
        </nav>
        <span class="who">{who.admin ? 'admin' : `tenant ${who.tenant}`}</span>
        <button class="link" onClick={() => { setToken(null); setWho(null); setReason(null); }}>Log out</button>
      </header>
      <main>{page}</main>
    </>
  );
}

takeTokenFromUrl();
render(<App />, document.getElementById('app') as HTMLElement);
