/**
 * The host API's HTTP server (fastify): on the Unix socket `<state dir>/host.sock` without
 * authentication (the socket file is 0600, owned by the host's user), and on TCP only with
 * `Authorization: Bearer <token>`. Routes and request validation come from openapi.yaml (see
 * ../../vmm/api/spec.ts); errors are `{"fault_message": ...}` with the status of their kind.
 */
import { timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fastify, type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { ApiSpec, describeValidationError, loadOpenApi, type ApiOperation } from '../../vmm/api/spec.js';
import { SpecError } from '../vm-spec.js';
import { ConflictError, NotFoundError, UnavailableError } from '../errors.js';
import { StateStoreError } from '../store.js';
import { VmmRequestError } from '../vmm-client.js';

export const HOST_OPENAPI_PATH = fileURLToPath(new URL('../../../../src/host/api/openapi.yaml', import.meta.url));

/** A request refused for its form (400). */
export class BadRequestError extends Error {
  override name = 'BadRequestError';
}

export interface HostRequest {
  params: Record<string, string>;
  query: Record<string, string | undefined>;
  body: unknown;
  raw: FastifyRequest;
  reply: FastifyReply;
}

export type HostReply = { status: 200 | 201; body: unknown } | { status: 204 } | { status: 'sent' };
export type HostHandler = (req: HostRequest) => Promise<HostReply> | HostReply;

const BODY_LIMIT = 64 * 1024;

export function statusOf(e: unknown): number {
  if (e instanceof NotFoundError) return 404;
  if (e instanceof ConflictError) return 409;
  if (e instanceof UnavailableError) return 503;
  if (e instanceof SpecError || e instanceof BadRequestError) return 400;
  if (e instanceof StateStoreError) return e.full ? 507 : 500;
  if ((e as { full?: boolean }).full) return 507;
  if (e instanceof VmmRequestError) return e.status === 400 ? 409 : 503;
  return 500;
}

function check(op: ApiOperation, params: Record<string, string>, body: unknown): void {
  for (const p of op.params) {
    if (!p.validate(params[p.name])) throw new BadRequestError(describeValidationError(p.validate.errors, `path parameter ${p.name}`));
  }
  if (!op.body) return;
  if (body === undefined) {
    if (op.body.required) throw new BadRequestError(`${op.method.toUpperCase()} ${op.path} needs a JSON body`);
    return;
  }
  if (!op.body.validate(body)) throw new BadRequestError(describeValidationError(op.body.validate.errors, 'the request body'));
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]), b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface ListenOptions {
  socketPath: string;
  tcp?: { host: string; port: number; token: string };
}

export class HostApiServer {
  private constructor(private readonly apps: { close(): PromiseLike<unknown> }[], readonly socketPath: string, readonly tcpAddress: string | null) {}

  static async listen(opts: ListenOptions, handlers: Record<string, HostHandler>, log: Logger): Promise<HostApiServer> {
    const spec = new ApiSpec(loadOpenApi(HOST_OPENAPI_PATH));
    const missing = spec.operations.filter((op) => !handlers[op.id]).map((op) => op.id);
    if (missing.length) throw new Error(`no handler for host API operations ${missing.join(', ')}`);
    const build = (token: string | null) => {
      const app = fastify({ loggerInstance: log, disableRequestLogging: true, bodyLimit: BODY_LIMIT, forceCloseConnections: true, routerOptions: { ignoreTrailingSlash: true } });
      app.removeAllContentTypeParsers();
      app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
        const text = body as string;
        if (text.trim() === '') { done(null, undefined); return; }
        try {
          done(null, JSON.parse(text));
        } catch (e) {
          done(new BadRequestError(`the request body is not valid JSON: ${(e as Error).message}`), undefined);
        }
      });
      if (token !== null) {
        app.addHook('onRequest', async (request, reply) => {
          if (!tokenMatches(request.headers.authorization, token)) {
            await reply.code(401).header('WWW-Authenticate', 'Bearer').send({ fault_message: 'this API needs "Authorization: Bearer <token>" with the host\'s token' });
          }
        });
      }
      for (const op of spec.operations) {
        const handler = handlers[op.id];
        app.route({
          method: op.method.toUpperCase() as 'GET',
          url: op.path.replace(/\{(\w+)\}/g, ':$1'),
          handler: async (request, reply) => {
            const params = request.params as Record<string, string>;
            check(op, params, request.body);
            const res = await handler({ params, query: request.query as Record<string, string | undefined>, body: request.body, raw: request, reply });
            if (res.status === 'sent') return reply;
            if (res.status === 204) return reply.code(204).send();
            return reply.code(res.status).send(res.body);
          },
        });
      }
      app.setNotFoundHandler((request, reply) => {
        reply.code(404).send({ fault_message: `no such API path: ${request.method} ${request.url}` });
      });
      app.setErrorHandler((error: FastifyError | Error, request, reply) => {
        let status = statusOf(error);
        const fastifyStatus = (error as FastifyError).statusCode;
        if (status === 500 && fastifyStatus !== undefined && fastifyStatus >= 400 && fastifyStatus < 500) status = 400;
        if (status >= 500 && status !== 503 && status !== 507) request.log.error({ err: error }, 'internal error');
        else request.log.info({ fault: error.message, status }, 'request refused');
        return reply.code(status).send({ fault_message: status === 500 ? `internal error in Vessel: ${error.message}` : error.message });
      });
      return app;
    };
    const unixApp = build(null);
    try { fs.unlinkSync(opts.socketPath); } catch { /* none */ }
    await unixApp.listen({ path: opts.socketPath });
    fs.chmodSync(opts.socketPath, 0o600);
    const apps = [unixApp];
    let tcpAddress: string | null = null;
    if (opts.tcp) {
      const tcpApp = build(opts.tcp.token);
      try {
        tcpAddress = await tcpApp.listen({ host: opts.tcp.host, port: opts.tcp.port });
      } catch (e) {
        await unixApp.close();
        throw new BadRequestError(`--listen ${opts.tcp.host}:${opts.tcp.port}: ${(e as Error).message}`);
      }
      apps.push(tcpApp);
    }
    spec.warmUp();
    return new HostApiServer(apps, opts.socketPath, tcpAddress);
  }

  async close(): Promise<void> {
    for (const app of this.apps) await app.close();
    try { fs.unlinkSync(this.socketPath); } catch { /* gone */ }
  }
}
