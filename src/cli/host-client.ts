/**
 * How `vessel vm ...` reaches the host: `--host` (a Unix socket path, or an http:// URL with a
 * token), else $VESSEL_HOST, else the default state directory's host.sock. Replies are JSON;
 * an error reply's fault_message becomes HostReplyError with its status.
 */
import * as http from 'node:http';
import * as path from 'node:path';
import { defaultStateDir } from '../host/state-dir.js';

export class HostReplyError extends Error {
  override name = 'HostReplyError';
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

/** The host could not be reached at all. */
export class HostUnreachableError extends Error {
  override name = 'HostUnreachableError';
}

export interface HostTarget {
  socketPath?: string;
  url?: URL;
  token?: string;
  /** How it was chosen, for error messages. */
  source: string;
}

export function hostTarget(opt: { host?: string; token?: string }): HostTarget {
  const given = opt.host ?? process.env['VESSEL_HOST'];
  const token = opt.token ?? process.env['VESSEL_TOKEN'];
  const source = opt.host !== undefined ? '--host' : given !== undefined ? 'VESSEL_HOST' : 'the default state directory';
  const where = given ?? path.join(defaultStateDir(), 'host.sock');
  if (/^https?:\/\//.test(where)) return { url: new URL(where), token, source };
  return { socketPath: path.resolve(where), token, source };
}

export interface RawReply { status: number; text: string; contentType: string }

export function hostRequest(t: HostTarget, method: string, urlPath: string, body?: unknown, onData?: (chunk: Buffer) => void): Promise<RawReply> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string | number> = {};
  if (data !== undefined) { headers['Content-Type'] = 'application/json'; headers['Content-Length'] = Buffer.byteLength(data); }
  if (t.token) headers['Authorization'] = `Bearer ${t.token}`;
  const target = t.socketPath ?? t.url?.origin ?? '';
  return new Promise((resolve, reject) => {
    const req = http.request(t.socketPath
      ? { socketPath: t.socketPath, method, path: urlPath, headers }
      : { host: t.url?.hostname, port: t.url?.port, method, path: urlPath, headers }, (res) => {
      const chunks: Buffer[] = [];
      const streaming = onData !== undefined && (res.statusCode ?? 0) < 400;
      res.on('data', (c: Buffer) => { if (streaming) onData(c); else chunks.push(c); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), contentType: String(res.headers['content-type'] ?? '') }));
      res.on('error', reject);
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'ENOENT' ? 'no such socket' : e.code === 'ECONNREFUSED' ? 'nothing is listening there' : e.message;
      reject(new HostUnreachableError(`cannot reach the vessel host at ${target} (from ${t.source}): ${why}; start it with \`vessel host\` or name it with --host SOCKET or VESSEL_HOST`));
    });
    if (data !== undefined) req.write(data);
    req.end();
  });
}

/** A JSON request; error replies throw HostReplyError with the host's sentence. */
export async function hostJson<T = unknown>(t: HostTarget, method: string, urlPath: string, body?: unknown): Promise<T> {
  const r = await hostRequest(t, method, urlPath, body);
  let parsed: unknown;
  try {
    parsed = r.text === '' ? undefined : JSON.parse(r.text);
  } catch {
    parsed = undefined;
  }
  if (r.status >= 400) {
    const msg = (parsed as { fault_message?: string } | undefined)?.fault_message ?? (r.text || `HTTP ${r.status}`);
    throw new HostReplyError(msg, r.status);
  }
  return parsed as T;
}
