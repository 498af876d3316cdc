/**
 * The `vessel vm` snapshot verbs, in the habit of `qm snapshot/listsnapshot/rollback/delsnapshot`
 * and `virsh snapshot-create-as/snapshot-list/snapshot-revert/snapshot-delete`:
 *
 *   vessel vm snapshot NAME [SNAP]           take one (default name snap-YYYYMMDD-HHMMSS)
 *   vessel vm snapshots NAME                 list them
 *   vessel vm restore NAME SNAP              roll the VM back to one, in place
 *   vessel vm snapshot-delete NAME SNAP...   delete them
 */
import type { Command } from 'commander';
import { call, table, type Global } from './vm-commands.js';

interface SnapshotJson { name: string; created_at: string; vm_state: string; vcpus: number; memory_mib: number; disks: { name: string }[]; size_bytes: number }

const snapshotsPath = (vm: string, rest = ''): string => `/vms/${encodeURIComponent(vm)}/snapshots${rest}`;
const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;

export function registerVmSnapshotCommands(vm: Command, g: () => Global): void {
  vm.command('snapshot').description('take a snapshot of a running or paused VM (memory, devices and its writable disks; it is paused meanwhile)')
    .argument('<vm>', 'name or id').argument('[snapshot]', 'its name (default snap-YYYYMMDD-HHMMSS, UTC)').option('--json', 'as JSON')
    .action(async (ref: string, name: string | undefined, o: { json?: boolean }) => {
      const s = await call<SnapshotJson>(g(), 'POST', snapshotsPath(ref), name !== undefined ? { name } : {});
      process.stdout.write(o.json ? `${JSON.stringify(s, null, 2)}\n` : `${s.name} (${mib(s.size_bytes)} on disk)\n`);
    });
  vm.command('snapshots').description('list a VM\'s snapshots, oldest first').argument('<vm>', 'name or id').option('--json', 'as JSON')
    .action(async (ref: string, o: { json?: boolean }) => {
      const list = await call<SnapshotJson[]>(g(), 'GET', snapshotsPath(ref));
      if (o.json) { process.stdout.write(`${JSON.stringify(list, null, 2)}\n`); return; }
      process.stdout.write(table(['NAME', 'CREATED', 'STATE', 'VCPUS', 'MEMORY', 'DISKS', 'SIZE'],
        list.map((s) => [s.name, s.created_at, s.vm_state, s.vcpus, `${s.memory_mib} MiB`, s.disks.map((d) => d.name).join(',') || '-', mib(s.size_bytes)])));
    });
  vm.command('restore').description('roll a VM back to a snapshot in place: what it did since is lost; it runs (or is paused) as it was then')
    .argument('<vm>', 'name or id').argument('<snapshot>', 'the snapshot\'s name')
    .action(async (ref: string, name: string) => {
      const v = await call<{ name: string; state: string }>(g(), 'POST', snapshotsPath(ref, `/${encodeURIComponent(name)}/restore`));
      process.stdout.write(`${v.name} restored from ${name}: ${v.state}\n`);
    });
  vm.command('snapshot-delete').description('delete snapshots of a VM').argument('<vm>', 'name or id').argument('<snapshot...>', 'their names')
    .action(async (ref: string, names: string[]) => {
      for (const n of names) await call(g(), 'DELETE', snapshotsPath(ref, `/${encodeURIComponent(n)}`));
    });
}
