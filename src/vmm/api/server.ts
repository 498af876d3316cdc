/**
 * The HTTP server of the VMM API (fastify on a Unix domain socket). Routes come from the OpenAPI
 * document (see spec.ts), each answered by the handler registered under its operationId. Every
 * failure is answered in Firecracker's shape, `{"fault_message": "..."}`: 400 for anything the
 * client can fix (unparsable JSON, a body that does not match the schema, an unknown path or
 * method, a handler's ApiError), 409 for a request the guest's state does not allow yet (a
 * RequestError with status 409: PUT /vm.resize below the harts online), 500 only for a bug in Vessel.
 */
import { unlinkSync } from 'node:fs';
import { fastify, type FastifyError } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import { claimSocketPath, HvcSocketError } from '../hvc-socket.js';
import { RequestError } from '../errors.js';
import { describeValidationError, type ApiOperation, type ApiSpec } from './spec.js';

/** A request refused by the API layer itself (JSON, schema, routing); answered with 400. */
export class ApiError extends RequestError {
  override name = 'ApiError';
}

export interface ApiRequest {
  /** Path parameters, validated against the document. */
  params: Record<string, string>;
  /** The JSON body, validated against the document (undefined when the operation has none). */
  body: unknown;
}

/** 200 with a JSON body, or 204 without one. */
export type ApiResponse = { status: 200; body: unknown } | { status: 204 };

export type ApiHandler = (req: ApiRequest) => ApiResponse | Promise<ApiResponse>;

/** Request bodies are small JSON objects; this bounds what a client can make the VMM buffer. */
const BODY_LIMIT = 64 * 1024;

function fault(message: string): { fault_message: string } {
  return { fault_message: message };
}

function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(`the request body is not valid JSON: ${(e as Error).message}`);
  }
}

function check(op: ApiOperation, req: ApiRequest): void {
  for (const p of op.params) {
    if (!p.validate(req.params[p.name])) throw new ApiError(describeValidationError(p.validate.errors, `path parameter ${p.name}`));
  }
  if (!op.body) return;
  if (req.body === undefined) {
    if (op.body.required) throw new ApiError(`${op.method.toUpperCase()} ${op.path} needs a JSON body`);
    return;
  }
  if (!op.body.validate(req.body)) throw new ApiError(describeValidationError(op.body.validate.errors, 'the request body'));
}

export class ApiServer {
  private readonly removeOnExit = (): void => this.removeSocketFile();

  private constructor(readonly socketPath: string, private readonly app: { close(): PromiseLike<unknown> }) {
    process.on('exit', this.removeOnExit);
  }

  /**
   * Listens on `socketPath` (a stale socket file there is replaced; a live one or another kind
   * of file is an error). Every operation of the spec must have a handler.
   */
  static async listen(socketPath: string, spec: ApiSpec, handlers: Record<string, ApiHandler>, log: PinoLogger): Promise<ApiServer> {
    const missing = spec.operations.filter((op) => !handlers[op.id]).map((op) => op.id);
    if (missing.length) throw new Error(`no handler for API operations ${missing.join(', ')}`);
    const app = fastify({ loggerInstance: log, bodyLimit: BODY_LIMIT, forceCloseConnections: true, routerOptions: { ignoreTrailingSlash: true } });
    // Any content type is read as JSON (curl -d sends form encoding unless told otherwise).
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
      try {
        done(null, parseJsonBody(body as string));
      } catch (e) {
        done(e as Error, undefined);
      }
    });
    for (const op of spec.operations) {
      const handler = handlers[op.id];
      app.route({
        method: op.method.toUpperCase() as 'GET' | 'PUT' | 'PATCH',
        url: op.path.replace(/\{(\w+)\}/g, ':$1'),
        handler: async (request, reply) => {
          const req: ApiRequest = { params: request.params as Record<string, string>, body: request.body };
          check(op, req);
          const res = await handler(req);
          if (res.status === 204) return reply.code(204).send();
          return reply.code(200).send(res.body);
        },
      });
    }
    app.setNotFoundHandler((request, reply) => {
      reply.code(400).send(fault(`invalid request method and/or path: ${request.method} ${request.url}`));
    });
    app.setErrorHandler((error: FastifyError | Error, request, reply) => {
      if (error instanceof RequestError) {
        request.log.info({ fault: error.message }, 'request refused');
        return reply.code(error.status).send(fault(error.message));
      }
      const status = (error as FastifyError).statusCode;
      if (status !== undefined && status >= 400 && status < 500) {
        // fastify's own refusals: body too large, malformed request, ...
        return reply.code(400).send(fault(error.message));
      }
      request.log.error({ err: error }, 'internal error');
      return reply.code(500).send(fault(`internal error in Vessel: ${error.message}`));
    });
    try {
      await claimSocketPath(socketPath, '--api-sock');
    } catch (e) {
      if (e instanceof HvcSocketError) throw new ApiError(e.message);
      throw e;
    }
    try {
      await app.listen({ path: socketPath });
    } catch (e) {
      await app.close();
      throw new ApiError(`--api-sock "${socketPath}": ${(e as Error).message}`);
    }
    spec.warmUp();
    return new ApiServer(socketPath, app);
  }

  /** Stops listening, ends open connections and removes the socket file. */
  async close(): Promise<void> {
    await this.app.close();
    this.removeSocketFile();
    process.off('exit', this.removeOnExit);
  }

  /** Removes the socket file now (the process is about to exit). */
  removeSocketFile(): void {
    try { unlinkSync(this.socketPath); } catch { /* already gone */ }
  }
}
