// Helpers for the VMM tests: a real `vessel vmm` process and HTTP requests to its API socket.
// Not a test file itself (the test script runs only `*.test.js`).
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI, VesselProcess } from './vessel-cli.js';

export interface ApiReply {
  status: number;
  /** The parsed JSON body, or undefined for an empty body. */
  body: unknown;
  /** The raw body text. */
  text: string;
  contentType: string | undefined;
}

/** One HTTP request over the Unix socket; `body` is sent as is when a string, else as JSON. */
export function api(socketPath: string, method: string, urlPath: string, body?: unknown): Promise<ApiReply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = http.request({
      socketPath, method, path: urlPath,
      headers: data === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => {
        let parsed: unknown;
        try {
          parsed = text === '' ? undefined : JSON.parse(text);
        } catch {
          reject(new Error(`${method} ${urlPath}: reply is not JSON (status ${res.statusCode}): ${text.slice(0, 200)}`));
          return;
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, text, contentType: res.headers['content-type'] });
      });
    });
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

/** The fault_message of a 400 reply (fails if the reply is something else). */
export function faultOf(r: ApiReply): string {
  if (r.status !== 400) throw new Error(`expected 400, got ${r.status}: ${r.text}`);
  const msg = (r.body as { fault_message?: unknown } | undefined)?.fault_message;
  if (typeof msg !== 'string') throw new Error(`400 without a fault_message: ${r.text}`);
  return msg;
}

export function tempDir(t: { after: (f: () => void) => void }, prefix = 'vessel-vmm-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Waits until `socketPath` accepts an API request (GET /), or the process exits. */
export async function waitForApi(vmm: VesselProcess, socketPath: string, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (vmm.exit) throw new Error(`vessel vmm exited (code ${vmm.exit.code}) before its API was ready\n${vmm.describe()}`);
    if (fs.existsSync(socketPath)) {
      try {
        const r = await api(socketPath, 'GET', '/');
        if (r.status === 200) return;
      } catch { /* not listening yet */ }
    }
    if (performance.now() > deadline) throw new Error(`API socket ${socketPath} not ready within ${timeoutMs / 1000} s\n${vmm.describe()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts `vessel vmm --api-sock <dir>/api.sock [args]` with `dir` as its working directory. */
export async function startVmm(dir: string, args: string[] = []): Promise<{ vmm: VesselProcess; sock: string }> {
  const sock = path.join(dir, 'api.sock');
  const vmm = new VesselProcess(process.execPath, [CLI, 'vmm', '--api-sock', sock, ...args], { cwd: dir });
  await waitForApi(vmm, sock);
  return { vmm, sock };
}
