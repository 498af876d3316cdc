/**
 * The API's operations (by operationId in openapi.yaml) mapped onto the VMM. Bodies arrive
 * already validated against the document, so they have the shapes in ../config.ts.
 */
import type { ActionType, Balloon, BalloonStatsUpdate, BalloonUpdate, BootSource, DiskResize, Drive, EntropyDevice, GuestAgent, Logger, MachineConfiguration, MachineConfigurationUpdate, Metrics, NetworkInterface, PartialDrive, SerialDevice, SnapshotCreateParams, SnapshotLoadParams, VmResize, VmStateUpdate } from '../config.js';
import { VMM_VERSION, type Vmm } from '../vmm.js';
import { ApiError, type ApiHandler, type ApiResponse } from './server.js';

const done: ApiResponse = { status: 204 };
const ok = (body: unknown): ApiResponse => ({ status: 200, body });

export function apiOperations(vmm: Vmm): Record<string, ApiHandler> {
  return {
    describeInstance: () => ok(vmm.instanceInfo()),
    createSyncAction: async ({ body }) => { await vmm.action((body as { action_type: ActionType }).action_type); return done; },
    putGuestBootSource: ({ body }) => { vmm.vm.setBootSource(body as BootSource); return done; },
    getMachineConfiguration: () => ok(vmm.vm.machineConfiguration),
    putMachineConfiguration: ({ body }) => { vmm.vm.setMachineConfig(body as MachineConfiguration); return done; },
    patchMachineConfiguration: ({ body }) => { vmm.vm.patchMachineConfig(body as MachineConfigurationUpdate); return done; },
    putGuestDriveByID: ({ params, body }) => { vmm.vm.putDrive(params.drive_id, body as Drive); return done; },
    patchGuestDriveByID: async ({ params, body }) => { await vmm.vm.patchDrive(params.drive_id, body as PartialDrive); return done; },
    resizeVm: ({ body }) => { vmm.vm.resize(body as VmResize); return done; },
    resizeDisk: ({ body }) => { vmm.vm.resizeDisk(body as DiskResize); return done; },
    putGuestNetworkInterfaceByID: ({ params, body }) => { vmm.vm.putNetworkInterface(params.iface_id, body as NetworkInterface); return done; },
    putLogger: ({ body }) => { vmm.configureLogger(body as Logger); return done; },
    getMetrics: () => ok(vmm.vm.metrics()),
    putMetrics: ({ body }) => { vmm.configureMetrics(body as Metrics); return done; },
    putSerialDevice: ({ body }) => { vmm.vm.setSerial(body as SerialDevice); return done; },
    putBalloon: ({ body }) => { vmm.vm.balloon.put(body as Balloon); return done; },
    patchBalloon: ({ body }) => { vmm.vm.balloon.patch(body as BalloonUpdate); return done; },
    describeBalloonConfig: () => ok(vmm.vm.balloon.info()),
    describeBalloonStats: () => ok(vmm.vm.balloon.statistics()),
    patchBalloonStatsInterval: ({ body }) => { vmm.vm.balloon.patchStats(body as BalloonStatsUpdate); return done; },
    putGuestAgent: ({ body }) => { vmm.vm.setGuestAgent(body as GuestAgent); return done; },
    describeGuestAgent: () => ok(vmm.vm.guestAgentInfo()),
    putEntropyDevice: ({ body }) => { void (body as EntropyDevice); vmm.vm.setEntropy(); return done; },
    patchVm: ({ body }) => {
      const update = body as VmStateUpdate;
      if (update.vessel_advance_clock !== undefined && update.state !== 'Resumed') throw new ApiError('vessel_advance_clock goes with "state": "Resumed" only');
      if (update.state === 'Paused') vmm.vm.pause();
      else vmm.vm.resume(update.vessel_advance_clock ?? false);
      return done;
    },
    getExportVmConfig: () => ok(vmm.vmConfig()),
    createSnapshot: ({ body }) => { vmm.vm.createSnapshot(body as SnapshotCreateParams, VMM_VERSION); return done; },
    loadSnapshot: async ({ body }) => { await vmm.vm.loadSnapshot(body as SnapshotLoadParams); return done; },
  };
}
