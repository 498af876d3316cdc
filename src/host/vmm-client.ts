/**
 * The host's side of a VM process's API socket (`vessel vmm --api-sock`): JSON requests over a
 * Unix domain socket with a time limit, the VMM's `fault_message` carried into the error.
 */
import * as http from 'node:http';

export class VmmRequestError extends Error {
  override name = 'VmmRequestError';
  constructor(message: string, readonly status: number | null) {
    super(message);
  }
}

export async function vmmRequest<T = unknown>(socketPath: string, method: string, urlPath: string, body?: unknown, timeoutMs = 5000): Promise<T> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise<T>((resolve, reject) => {
    const req = http.request({
      socketPath, method, path: urlPath, timeout: timeoutMs,
      headers: data === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        let parsed: unknown;
        try {
          parsed = text === '' ? undefined : JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        if (status >= 400) {
          const fault = (parsed as { fault_message?: string } | undefined)?.fault_message ?? text;
          reject(new VmmRequestError(`the VM process refused ${method} ${urlPath}: ${fault}`, status));
          return;
        }
        resolve(parsed as T);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => reject(new VmmRequestError(`the VM process's API socket ${socketPath} did not answer ${method} ${urlPath}: ${e.code ?? e.message}`, null)));
    if (data !== undefined) req.write(data);
    req.end();
  });
}
