/**
 * The web console's login and logout (openapi.yaml: /session) on sessions.ts: a bearer token
 * in, a session cookie out; the cookie's session closed at logout.
 */
import { sessionCookie, sessionSetCookie, type Sessions } from '../sessions.js';
import { BadRequestError, type HostHandler } from './server.js';

export function sessionOperations(sessions: Sessions): Record<string, HostHandler> {
  return {
    createSession: ({ raw, reply, who }) => {
      const m = /^Bearer\s+(\S+)$/i.exec(raw.headers.authorization ?? '');
      if (!m) throw new BadRequestError('POST /session exchanges a token for a session: send it as "Authorization: Bearer <token>"');
      const { id, expiresAt } = sessions.open(m[1], who);
      reply.header('Set-Cookie', sessionSetCookie(id, expiresAt));
      return { status: 201, body: { admin: who.admin, tenant: who.admin ? null : who.tenant.name, expires_at: expiresAt.toISOString() } };
    },
    deleteSession: ({ raw, reply }) => {
      const id = sessionCookie(raw.headers.cookie);
      if (id !== undefined) sessions.close(id);
      reply.header('Set-Cookie', sessionSetCookie(null, null));
      return { status: 204 };
    },
  };
}
