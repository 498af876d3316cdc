// Small shared pieces: a modal dialog on <dialog> (Esc closes it, focus stays inside), a
// confirmation, an error line read out by screen readers, and a poller.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';

export function Modal(props: { title: string; onClose: () => void; children: ComponentChildren; label?: string }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    const close = (): void => props.onClose();
    d?.addEventListener('close', close);
    return () => d?.removeEventListener('close', close);
  }, []);
  return (
    <dialog ref={ref} aria-label={props.label ?? props.title}>
      <h2>{props.title}</h2>
      {props.children}
    </dialog>
  );
}

export function Confirm(props: { title: string; message: string; action: string; danger?: boolean; onConfirm: () => Promise<void>; onClose: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <Modal title={props.title} onClose={props.onClose}>
      <p>{props.message}</p>
      <ErrorLine error={error} />
      <div class="buttons">
        <button type="button" onClick={props.onClose} autofocus>Cancel</button>
        <button type="button" class={props.danger ? 'danger' : 'primary'} disabled={busy} onClick={async () => {
          setBusy(true);
          setError(null);
          try { await props.onConfirm(); props.onClose(); } catch (e) { setError((e as Error).message); setBusy(false); }
        }}>{busy ? `${props.action}…` : props.action}</button>
      </div>
    </Modal>
  );
}

export function ErrorLine(props: { error: string | null }) {
  return props.error ? <p class="error" role="alert">{props.error}</p> : null;
}

/** Calls `f` now and every `ms` while the component is shown; its result and last error. */
export function usePoll<T>(f: () => Promise<T>, ms: number, deps: unknown[] = []): { data: T | null; error: string | null; reload: () => void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    const once = async (): Promise<void> => {
      try {
        const d = await f();
        if (live) { setData(d); setError(null); }
      } catch (e) {
        if (live) setError((e as Error).message);
      }
    };
    void once();
    const t = setInterval(once, ms);
    return () => { live = false; clearInterval(t); };
  }, [...deps, tick]);
  return { data, error, reload: () => setTick((n) => n + 1) };
}
