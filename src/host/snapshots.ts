/**
 * A VM's snapshots, taken and loaded through its VMM's API (PUT /snapshot/create and
 * /snapshot/load, docs/SNAPSHOT.md: this module never reads their files) and kept in the VM's
 * folder of the state directory, one folder each:
 *
 *   vms/<id>/snapshots/<name>/state          the VMM's state file
 *                            /memory         guest RAM (sparse)
 *                            /vda, vdb, ...  copies of the VM's writable disks at that moment
 *                            /snapshot.json  what the snapshot is (SnapshotInfo without its size)
 *
 * A snapshot is of a running or paused VM: the VM is paused for it (memory, device state and
 * disks are then one consistent moment; devices finish requests synchronously, so nothing is in
 * flight) and resumed after. Restoring rolls the VM back in place, as Proxmox's `qm rollback`
 * and libvirt's `snapshot-revert` do: its disks are put back and a fresh VM process loads the
 * state, running or paused as it was (Supervisor.restoreSnapshot). What a tenant's snapshots
 * hold on disk (allocated bytes) counts against its disk quota. A VM's snapshots go with it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConflictError, NotFoundError } from './errors.js';
import { copyRootDisk, type Supervisor, type VmHandle } from './supervisor.js';
import { SpecError, type VmSpec } from './vm-spec.js';
import { vmmRequest } from './vmm-client.js';

export const SNAPSHOT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const INFO = 'snapshot.json';
/** How long the VMM may take to write or load a snapshot (RAM goes to a file and is hashed). */
const SNAPSHOT_TIMEOUT_MS = 120_000;
const MIB = 1024 * 1024;

export interface SnapshotInfo {
  name: string;
  created_at: string;
  /** What the VM was when it was taken, and is again after a restore. */
  vm_state: 'running' | 'paused';
  vcpus: number;
  max_vcpus: number;
  memory_mib: number;
  /** The disks copied with it (vda is the VM's first); read-only disks are not copied. */
  disks: { name: string; path: string }[];
  /** What it holds on disk (allocated bytes: the memory file is sparse). */
  size_bytes: number;
}

function snapshotsDir(vm: VmHandle): string {
  return path.join(vm.files.dir, 'snapshots');
}

/** Bytes allocated to the files under `p` (0 when it does not exist). */
function allocatedBytes(p: string): number {
  let st: fs.Stats;
  try { st = fs.lstatSync(p); } catch { return 0; }
  if (!st.isDirectory()) return st.blocks * 512;
  return fs.readdirSync(p).reduce((n, f) => n + allocatedBytes(path.join(p, f)), 0);
}

/** What all of a VM's snapshots hold on disk, for its tenant's disk quota and its metering. */
export function snapshotBytes(vm: VmHandle): number {
  return allocatedBytes(snapshotsDir(vm));
}

function readInfo(dir: string): SnapshotInfo | null {
  try {
    const info = JSON.parse(fs.readFileSync(path.join(dir, INFO), 'utf8')) as Omit<SnapshotInfo, 'size_bytes'>;
    return { ...info, size_bytes: allocatedBytes(dir) };
  } catch {
    return null;
  }
}

/** The VM's snapshots, oldest first (a folder being written, `.name.partial`, is not one yet). */
export function listSnapshots(vm: VmHandle): SnapshotInfo[] {
  const dir = snapshotsDir(vm);
  let names: string[];
  try { names = fs.readdirSync(dir); } catch { return []; }
  return names.filter((n) => !n.startsWith('.')).map((n) => readInfo(path.join(dir, n))).filter((i): i is SnapshotInfo => i !== null)
    .sort((a, b) => a.created_at.localeCompare(b.created_at));
}

export function getSnapshot(vm: VmHandle, name: string): SnapshotInfo {
  const info = SNAPSHOT_NAME_PATTERN.test(name) ? readInfo(path.join(snapshotsDir(vm), name)) : null;
  if (!info) {
    const have = listSnapshots(vm).map((s) => s.name);
    throw new NotFoundError(`VM "${vm.name}" has no snapshot named "${name}" (${have.length ? `it has ${have.join(', ')}` : 'it has none'})`);
  }
  return info;
}

const diskName = (i: number): string => `vd${String.fromCharCode(97 + i)}`;

function defaultName(now: Date): string {
  return `snap-${now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)}`;
}

/**
 * Takes a snapshot of a running or paused VM. `beforeWrite` hears how many bytes it may take at
 * most (RAM plus what its writable disks hold) before anything is written, and may refuse (a quota).
 */
export function createSnapshot(vm: VmHandle, name: string | undefined, beforeWrite: (bytes: number) => void): Promise<SnapshotInfo> {
  const snap = name ?? defaultName(new Date());
  if (!SNAPSHOT_NAME_PATTERN.test(snap)) throw new SpecError(`snapshot name "${snap}" is not valid: 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit`);
  if (vm.state === 'starting') return Promise.reject(new ConflictError(`VM "${vm.name}" is still starting; take a snapshot once it runs`));
  return vm.serial(async () => {
    if (!vm.proc || (vm.state !== 'running' && vm.state !== 'paused')) {
      throw new ConflictError(`VM "${vm.name}" is ${vm.state}: a snapshot holds a running or paused VM's memory; start it first`);
    }
    const final = path.join(snapshotsDir(vm), snap);
    if (fs.existsSync(final)) throw new ConflictError(`VM "${vm.name}" already has a snapshot named "${snap}"`);
    const spec = vm.record.spec;
    const writable = spec.disks.map((d, i) => ({ name: diskName(i), ...d })).filter((d) => !d.readonly);
    beforeWrite(spec.memory_mib * MIB + writable.reduce((n, d) => n + allocatedBytes(d.path), 0));
    const partial = path.join(snapshotsDir(vm), `.${snap}.partial`);
    fs.rmSync(partial, { recursive: true, force: true });
    fs.mkdirSync(partial, { recursive: true });
    const wasRunning = vm.state === 'running';
    try {
      if (wasRunning) await vmmRequest(vm.files.apiSock, 'PATCH', '/vm', { state: 'Paused' });
      try {
        await vmmRequest(vm.files.apiSock, 'PUT', '/snapshot/create', { snapshot_type: 'Full', snapshot_path: path.join(partial, 'state'), mem_file_path: path.join(partial, 'memory') }, SNAPSHOT_TIMEOUT_MS);
        // The disks while the harts stand still, so that they match the memory's page cache.
        for (const d of writable) copyRootDisk(d.path, path.join(partial, d.name));
      } finally {
        if (wasRunning) await vmmRequest(vm.files.apiSock, 'PATCH', '/vm', { state: 'Resumed' });
      }
      const info: Omit<SnapshotInfo, 'size_bytes'> = {
        name: snap, created_at: new Date().toISOString(), vm_state: wasRunning ? 'running' : 'paused',
        vcpus: spec.vcpus, max_vcpus: spec.max_vcpus ?? spec.vcpus, memory_mib: spec.memory_mib,
        disks: writable.map((d) => ({ name: d.name, path: d.path })),
      };
      fs.writeFileSync(path.join(partial, INFO), JSON.stringify(info, null, 2) + '\n');
      fs.renameSync(partial, final);
    } catch (e) {
      fs.rmSync(partial, { recursive: true, force: true });
      throw e;
    }
    return getSnapshot(vm, snap);
  });
}

/** Rolls the VM back to the snapshot (see the top of this file); it then runs or is paused as it was. */
export async function restoreSnapshot(sup: Supervisor, vm: VmHandle, name: string): Promise<SnapshotInfo> {
  const info = getSnapshot(vm, name);
  const dir = path.join(snapshotsDir(vm), info.name);
  await sup.restoreSnapshot(vm, { name: info.name, statePath: path.join(dir, 'state'), memoryPath: path.join(dir, 'memory'), paused: info.vm_state === 'paused' }, (): VmSpec => {
    const spec = vm.record.spec;
    for (const d of info.disks) {
      // The board the snapshot rebuilds names its drives by path: they must still be the VM's.
      if (!spec.disks.some((x) => x.path === d.path && !x.readonly)) throw new ConflictError(`snapshot "${info.name}" of VM "${vm.name}" has disk ${d.name} at ${d.path}, which the VM no longer has; it cannot be restored`);
      copyRootDisk(path.join(dir, d.name), d.path);
    }
    return { ...spec, vcpus: info.vcpus, max_vcpus: info.max_vcpus };
  });
  return info;
}

export function deleteSnapshot(vm: VmHandle, name: string): Promise<void> {
  const info = getSnapshot(vm, name);
  return vm.serial(async () => {
    fs.rmSync(path.join(snapshotsDir(vm), info.name), { recursive: true, force: true });
  });
}
