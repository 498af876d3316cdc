// The Vessel web console: a login with a token (the ?token= URL the host prints logs in with
// one click; the token becomes a session cookie, api.ts), then the VMs, a VM's page, the host
// and the usage, routed by the address's hash.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, login, logout, onUnauthorized, takeTokenFromUrl, type HostInfo } from './api.js';
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
        try {
          await login(t);
          props.onLogin();
        } catch (err) {
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
  // Without a session (401) the login shows; another failure (the host is down) offers a retry.
  const [down, setDown] = useState(false);
  const check = async (): Promise<void> => {
    let tried = false;
    try {
      if (urlToken !== null) {
        const t = urlToken;
        urlToken = null;
        tried = true;
        await login(t);
      }
      setWho((await api<HostInfo>('GET', '/host')).you);
      setReason(null);
      setDown(false);
    } catch (e) {
      setWho(null);
      const status = (e as { status?: number }).status;
      setDown(status === 0 || (status !== undefined && status >= 500));
      // No session yet is no error: the login form says what to do.
      setReason(status === 401 && !tried ? null : (e as Error).message);
    }
    setChecked(true);
  };
  useEffect(() => { void check(); }, []);
  useEffect(() => onUnauthorized((why) => { setWho(null); setDown(false); setReason(`${why} Log in again.`); }), []);
  if (!checked) return <p class="muted">Loading…</p>;
  if (!who) {
    if (down && reason) return <main class="login"><h1>Vessel</h1><ErrorLine error={reason} /><button onClick={() => void check()}>Try again</button></main>;
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
        <button class="link" onClick={() => { void logout().then(() => { setWho(null); setReason(null); }); }}>Log out</button>
      </header>
      <main>{page}</main>
    </>
  );
}

/** The printed URL's token, out of the address bar before anything else runs; App logs in with it. */
let urlToken = takeTokenFromUrl();
render(<App />, document.getElementById('app') as HTMLElement);
