/**
 * The host API's guest agent calls besides exec and shutdown (operations.ts): guest files,
 * fsfreeze, and the guest's network interfaces and file systems. Each runs on the VM's agent
 * connection in turn (withAgent); a VM without an agent is refused at once (409 "has no guest
 * agent"), an agent that does not answer within its time limit is a 503.
 */
import { readGuestFile, writeGuestFile, MAX_WRITE_BYTES } from '../agent-files.js';
import { fsfreeze, type FsfreezeAction } from '../agent-fsfreeze.js';
import { guestFilesystems, guestInterfaces } from '../agent-guest-info.js';
import { withAgent, type QgaClient } from '../guest-agent.js';
import { vmmRequest } from '../vmm-client.js';
import { agentVm, type HostContext } from './operations.js';
import { BadRequestError, type HostHandler, type HostRequest } from './server.js';
import { tenantScope } from './tenant-scope.js';

/** Strict base64 (what Buffer.from would otherwise decode leniently, skipping bad characters). */
function decodeBase64(text: string, field: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new BadRequestError(`${field} is not base64 (A-Z, a-z, 0-9, + and /, padded with = to a multiple of 4 characters)`);
  return Buffer.from(text, 'base64');
}

export function agentOperations(ctx: HostContext): Record<string, HostHandler> {
  const scope = tenantScope(ctx.tenancy, ctx.supervisor);
  /** Runs `f` with the VM's name on a connection to its agent. */
  const onAgent = <T>(req: HostRequest, f: (c: QgaClient, vmName: string) => Promise<T>): Promise<T> => {
    const vm = scope.find(req.who, req.params.vm);
    return withAgent(agentVm(vm), vmmRequest, (c) => f(c, vm.name));
  };
  const ok = (body: unknown) => ({ status: 200 as const, body });
  return {
    readVmFile: async (req) => {
      const b = req.body as { path: string; max_bytes?: number };
      return ok(await onAgent(req, (c, name) => readGuestFile(c, name, b.path, b.max_bytes)));
    },
    writeVmFile: async (req) => {
      const b = req.body as { path: string; content_base64: string; append?: boolean };
      const data = decodeBase64(b.content_base64, 'content_base64');
      if (data.length > MAX_WRITE_BYTES) throw new BadRequestError(`content_base64 holds ${data.length} bytes; at most ${MAX_WRITE_BYTES} (8 MiB) are written at once: write the rest with "append": true`);
      const written = await onAgent(req, (c, name) => writeGuestFile(c, name, b.path, data, b.append ?? false));
      return ok({ path: b.path, bytes_written: written, append: b.append ?? false });
    },
    fsfreezeVm: async (req) => ok(await onAgent(req, (c, name) => fsfreeze(c, name, (req.body as { action: FsfreezeAction }).action))),
    getVmGuestInterfaces: async (req) => ok(await onAgent(req, guestInterfaces)),
    getVmGuestFilesystems: async (req) => ok(await onAgent(req, guestFilesystems)),
  };
}
