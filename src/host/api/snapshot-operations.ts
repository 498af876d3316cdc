/**
 * The host API's snapshot operations (openapi.yaml: /vms/{vm}/snapshots...) on snapshots.ts: a
 * tenant reaches only its own VMs' snapshots (another's VM is the usual 404), and a snapshot
 * counts against the VM's tenant's disk quota before it is written.
 */
import { createSnapshot, deleteSnapshot, listSnapshots, restoreSnapshot } from '../snapshots.js';
import type { HostContext } from './operations.js';
import { vmView } from './operations.js';
import type { HostHandler } from './server.js';
import { tenantScope } from './tenant-scope.js';

export function snapshotOperations(ctx: HostContext): Record<string, HostHandler> {
  const sup = ctx.supervisor;
  const scope = tenantScope(ctx.tenancy, sup);
  return {
    listVmSnapshots: (req) => ({ status: 200, body: listSnapshots(scope.find(req.who, req.params.vm)) }),
    createVmSnapshot: async (req) => {
      const vm = scope.find(req.who, req.params.vm);
      const name = (req.body as { name?: string } | undefined)?.name;
      const info = await createSnapshot(vm, name, (bytes) => scope.checkGrowth(vm, { disk_gib: bytes / 2 ** 30 }, `a snapshot of VM "${vm.name}"`));
      return { status: 201, body: info };
    },
    restoreVmSnapshot: async (req) => {
      const vm = scope.find(req.who, req.params.vm);
      await restoreSnapshot(sup, vm, req.params.snapshot);
      return { status: 200, body: { ...vmView(vm, ctx.store.lastExit(vm.id)), tenant: scope.tenantName(vm.id) } };
    },
    deleteVmSnapshot: async (req) => {
      await deleteSnapshot(scope.find(req.who, req.params.vm), req.params.snapshot);
      return { status: 204 };
    },
  };
}
