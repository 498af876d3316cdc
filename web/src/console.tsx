// The serial console in xterm.js over the host's WebSocket (/vms/{vm}/console): the guest's
// output so far and then live; keys go to the guest. The socket reconnects after a drop (a host
// restart, a network change) with a growing pause, and the terminal is redrawn from the host's
// history each time, so nothing is shown twice.
import { useEffect, useRef, useState } from 'preact/hooks';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';
import { wsUrl } from './api.js';

export function SerialConsole(props: { vm: string }) {
  const box = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState('connecting…');
  useEffect(() => {
    const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, scrollback: 5000, fontFamily: 'ui-monospace, Menlo, Consolas, monospace' });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(box.current as HTMLDivElement);
    fit.fit();
    const ro = new ResizeObserver(() => { try { fit.fit(); } catch { /* hidden */ } });
    ro.observe(box.current as HTMLDivElement);
    let ws: WebSocket | null = null;
    let stopped = false;
    let delay = 500;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const connect = (): void => {
      ws = new WebSocket(wsUrl(`/vms/${encodeURIComponent(props.vm)}/console`));
      ws.binaryType = 'arraybuffer';
      let first = true;
      ws.onopen = () => { delay = 500; setStatus('connected'); };
      ws.onmessage = (m) => {
        if (typeof m.data === 'string') {
          if (m.data.startsWith('\u0000')) {
            try {
              const n = JSON.parse(m.data.slice(1)) as { notice?: string; state?: string };
              if (n.notice) setStatus(n.notice);
              else if (n.state) setStatus(`connected; the VM is ${n.state}`);
            } catch { /* not a notice */ }
          }
          return;
        }
        if (first) { term.reset(); first = false; }
        term.write(new Uint8Array(m.data as ArrayBuffer));
      };
      ws.onclose = (e) => {
        if (stopped) return;
        if (e.code === 4404 || e.code === 4400) { setStatus(e.reason || 'this VM is gone'); return; }
        setStatus(`disconnected; reconnecting in ${Math.round(delay / 1000) || 1} s…`);
        timer = setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10_000);
      };
    };
    connect();
    const input = term.onData((d) => { if (ws?.readyState === WebSocket.OPEN) ws.send(d); });
    return () => { stopped = true; if (timer) clearTimeout(timer); input.dispose(); ws?.close(); ro.disconnect(); term.dispose(); };
  }, [props.vm]);
  return (
    <div class="console">
      <div class="console-status" aria-live="polite">Console: <span data-testid="console-status">{status}</span></div>
      <div class="term" ref={box} aria-label={`serial console of ${props.vm}`} />
    </div>
  );
}
