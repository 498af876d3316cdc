/**
 * The host API's HTTP server (fastify): on the Unix socket `<state dir>/host.sock` (the socket
 * file is 0600, owned by the host's user: a request without a token acts as the admin, one with
 * a token as whoever the token is), and on TCP only with a token, the admin's or a tenant's
 * (`Authorization: Bearer <token>`, or `?token=`), or with the web console's session cookie
 * (sessions.ts: POST /session exchanges a token for it). Routes and request validation come
 * from openapi.yaml (see ../../vmm/api/spec.ts); operations marked `x-websocket` are WebSocket
 * routes. Errors are `{"fault_message": ...}` with the status of their kind. The TCP side also serves the web
 * console's static files (dist/web) at `/` without a token: the page logs in itself.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import fastifyWebsocket from '@fastify/websocket';
import { fastify, type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { Logger } from 'pino';
import { ApiSpec, describeValidationError, loadOpenApi, type ApiOperation } from '../../vmm/api/spec.js';
import { SpecError } from '../vm-spec.js';
import { ConflictError, NotFoundError, UnavailableError } from '../errors.js';
import { StateStoreError } from '../store.js';
import { ADMIN, ForbiddenError, QuotaError, UnauthorizedError, type Principal } from '../tenants.js';
import { sessionCookie } from '../sessions.js';
import { VmmRequestError } from '../vmm-client.js';

export const HOST_OPENAPI_PATH = fileURLToPath(new URL('../../../../src/host/api/openapi.yaml', import.meta.url));
/** The web console, built by `npm run build` (web/build.mjs) next to the compiled code. */
export const WEB_ROOT = fileURLToPath(new URL('../../../web/', import.meta.url));

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
  /** Who sent it: the admin, or a tenant. */
  who: Principal;
}

export type HostReply = { status: 200 | 201; body: unknown } | { status: 204 } | { status: 'sent' };
export type HostHandler = (req: HostRequest) => Promise<HostReply> | HostReply;
/** An `x-websocket` operation: the socket is open; the handler owns it from here. */
export type HostWsHandler = (socket: WebSocket, req: HostRequest) => void;
/** The largest WebSocket message the host accepts (console input); a bigger one closes the socket (1009). */
export const WS_MAX_PAYLOAD = 64 * 1024;

const BODY_LIMIT = 64 * 1024;

export function statusOf(e: unknown): number {
  if (e instanceof NotFoundError) return 404;
  if (e instanceof UnauthorizedError) return 401;
  if (e instanceof QuotaError || e instanceof ForbiddenError) return 403;
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

/** The token of a request: its bearer header, else its `token` query parameter; undefined when none. */
function requestToken(request: FastifyRequest): string | undefined | null {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    return m ? m[1] : null;
  }
  const q = (request.query as Record<string, unknown> | undefined)?.['token'];
  return typeof q === 'string' && q !== '' ? q : undefined;
}

/** Paths of the web console's static files, served on TCP without a token. */
function isWebPath(url: string): boolean {
  const p = url.split('?')[0];
  return p === '/' || p === '/index.html' || p.startsWith('/assets/') || p === '/favicon.svg';
}

export interface ListenOptions {
  socketPath: string;
  tcp?: { host: string; port: number };
  /** Who sends this token (null: nobody the host knows; `expired`: a tenant's token past its time, with the sentence). */
  authenticate: (token: string) => Principal | null | { expired: string };
  /** Who a session cookie is for (sessions.ts), on TCP; absent: no sessions. */
  session?: (id: string) => Principal | null | { expired: string };
  /** Serve the web console's files on TCP (default true; false where dist/web is absent). */
  web?: boolean;
}

export class HostApiServer {
  private constructor(private readonly apps: { close(): PromiseLike<unknown> }[], readonly socketPath: string, readonly tcpAddress: string | null) {}

  static async listen(opts: ListenOptions, handlers: Record<string, HostHandler>, log: Logger, wsHandlers: Record<string, HostWsHandler> = {}): Promise<HostApiServer> {
    const doc = loadOpenApi(HOST_OPENAPI_PATH);
    const spec = new ApiSpec(doc);
    const opExtension = <T>(op: ApiOperation, name: string): T | undefined => (doc.paths[op.path] as Record<string, Record<string, unknown> | undefined>)[op.method]?.[name] as T | undefined;
    const isWs = (op: ApiOperation): boolean => opExtension<boolean>(op, 'x-websocket') === true;
    const missing = spec.operations.filter((op) => !(isWs(op) ? wsHandlers[op.id] : handlers[op.id])).map((op) => op.id);
    if (missing.length) throw new Error(`no handler for host API operations ${missing.join(', ')}`);
    // Served from the folder at each request (not a list of files taken at start): a build that
    // replaces dist/web while the host runs is served as it is now.
    const webRoot = opts.web !== false ? WEB_ROOT : null;
    const build = async (tcp: boolean) => {
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
      // Who is asking: the Unix socket's owner is the admin unless a token says otherwise; TCP needs a token.
      const principals = new WeakMap<FastifyRequest, Principal>();
      app.addHook('onRequest', async (request, reply) => {
        if (tcp && webRoot && request.method === 'GET' && isWebPath(request.url)) return;
        const token = requestToken(request);
        const session = tcp && token === undefined && opts.session ? sessionCookie(request.headers.cookie) : undefined;
        const found = session !== undefined && opts.session ? opts.session(session)
          : token === undefined ? (tcp ? null : ADMIN) : token === null ? null : opts.authenticate(token);
        const who = found !== null && 'expired' in found ? null : found;
        if (!who) {
          const why = found !== null && 'expired' in found ? found.expired : session !== undefined
            ? 'your session is not valid any more: its token was replaced or its tenant deleted, or it was logged out'
            : token === undefined
            ? 'this API needs a token: "Authorization: Bearer <token>" with the host\'s token or a tenant\'s'
            : 'the token is not valid (not the host\'s, and no tenant\'s: it may have been replaced or its tenant deleted)';
          await reply.code(401).header('WWW-Authenticate', 'Bearer').send({ fault_message: why });
          return;
        }
        principals.set(request, who);
      });
      const hostRequest = (request: FastifyRequest, reply: FastifyReply): HostRequest => ({
        params: request.params as Record<string, string>, query: request.query as Record<string, string | undefined>,
        body: request.body, raw: request, reply, who: principals.get(request) ?? (tcp ? (() => { throw new UnauthorizedError('no token'); })() : ADMIN),
      });
      await app.register(fastifyWebsocket, { options: { maxPayload: WS_MAX_PAYLOAD } });
      if (tcp && webRoot) await app.register(fastifyStatic, { root: webRoot, prefix: '/', wildcard: true, index: 'index.html' });
      for (const op of spec.operations) {
        const url = op.path.replace(/\{(\w+)\}/g, ':$1');
        if (isWs(op)) {
          const ws = wsHandlers[op.id];
          app.route({
            method: 'GET', url,
            handler: async (_request, reply) => reply.code(400).send({ fault_message: `${op.path} is a WebSocket: connect with an Upgrade: websocket request` }),
            wsHandler: (socket, request) => {
              const req = hostRequest(request, undefined as unknown as FastifyReply);
              try {
                check(op, req.params, undefined);
                ws(socket, req);
              } catch (e) {
                socket.close(statusOf(e) === 404 ? 4404 : 4400, (e as Error).message.slice(0, 120));
              }
            },
          });
          continue;
        }
        const handler = handlers[op.id];
        app.route({
          method: op.method.toUpperCase() as 'GET',
          url,
          // An operation may take a bigger body than BODY_LIMIT (x-body-limit: POST /vms/{vm}/files/write).
          bodyLimit: opExtension<number>(op, 'x-body-limit') ?? BODY_LIMIT,
          handler: async (request, reply) => {
            const params = request.params as Record<string, string>;
            check(op, params, request.body);
            const res = await handler(hostRequest(request, reply));
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
    const unixApp = await build(false);
    try { fs.unlinkSync(opts.socketPath); } catch { /* none */ }
    await unixApp.listen({ path: opts.socketPath });
    fs.chmodSync(opts.socketPath, 0o600);
    const apps = [unixApp];
    let tcpAddress: string | null = null;
    if (opts.tcp) {
      const tcpApp = await build(true);
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
