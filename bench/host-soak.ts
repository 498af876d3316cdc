// Soak: N create/start/delete cycles on one `vessel host`, then a check that nothing was left
// behind: no VM process, no cgroup, no folder, socket or disk file in the state directory, and
// the host's own file descriptors and memory back where they were. test/host.test.ts runs 8
// such cycles; this runs 200 (the number) and prints what grew.
//
//   node dist/bench/host-soak.js [--cycles 200] [--default-image]
//
// --default-image creates each VM from the default image (a copy of its root disk each time)
// instead of its kernel and initramfs alone.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { ensureDefaultImage } from '../images/build-image.js';
import { Cgroups } from '../src/host/cgroups.js';
import { processArgs, processRss } from '../src/host/proc.js';
import { intArg, UsageError } from './lib/options.js';
import { VesselHost } from './lib/vessel-host.js';

const USAGE = 'usage: node dist/bench/host-soak.js [--cycles N] [--default-image]';

function parse(argv: string[]): { cycles: number; defaultImage: boolean } {
  let cycles: string | undefined;
  let defaultImage = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') { process.stdout.write(`${USAGE}\n`); process.exit(0); }
    else if (a === '--cycles') cycles = argv[++i];
    else if (a === '--default-image') defaultImage = true;
    else throw new UsageError(`unknown option "${a}"`);
  }
  return { cycles: intArg('cycles', cycles, 200, 1, 100_000), defaultImage };
}

function fds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Processes whose arguments name the state directory's VMs folder. */
function vmProcesses(dir: string): number[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number)
    .filter((pid) => processArgs(pid).some((a) => a.startsWith(path.join(dir, 'vms'))));
}

async function main(): Promise<void> {
  const opts = parse(process.argv.slice(2));
  const image = await ensureDefaultImage({ quiet: true });
  const host = await VesselHost.start();
  const hostPid = host.proc.child.pid as number;
  const { cgroups } = Cgroups.probe();
  const boot = opts.defaultImage ? {} : { kernel: image.kernel, initrd: image.initrd };
  try {
    // One cycle first, so that lazily loaded modules and caches count as the baseline.
    await host.create({ name: 'warm', ...boot, memory_mib: 64, nets: ['none'] });
    await host.delete('warm');
    const before = { fds: fds(hostPid), rss: processRss(hostPid) ?? 0, groups: cgroups?.list().length ?? 0 };
    const t0 = performance.now();
    const ids: string[] = [];
    for (let i = 0; i < opts.cycles; i++) {
      const vm = await host.create({ name: `soak${i}`, ...boot, memory_mib: 64, nets: ['none'] });
      ids.push(vm.id);
      await host.delete(`soak${i}`);
      if ((i + 1) % 25 === 0) process.stdout.write(`${i + 1} cycles, ${((performance.now() - t0) / (i + 1)).toFixed(0)} ms each, host fds ${fds(hostPid)}, host RSS ${((processRss(hostPid) ?? 0) / 1048576).toFixed(1)} MiB\n`);
    }
    await new Promise((r) => setTimeout(r, 1000));
    const after = { fds: fds(hostPid), rss: processRss(hostPid) ?? 0, groups: cgroups?.list().length ?? 0 };
    const leftProcs = vmProcesses(host.dir);
    const leftFiles = fs.readdirSync(path.join(host.dir, 'vms'));
    const leftGroups = ids.filter((id) => cgroups?.exists(id));
    const result = {
      cycles: opts.cycles,
      ms_per_cycle: Math.round((performance.now() - t0) / opts.cycles),
      host_fds: [before.fds, after.fds],
      host_rss_mib: [before.rss / 1048576, after.rss / 1048576].map((x) => Math.round(x * 10) / 10),
      left_processes: leftProcs.length,
      left_files: leftFiles.length,
      left_cgroups: leftGroups.length,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    const clean = leftProcs.length === 0 && leftFiles.length === 0 && leftGroups.length === 0 && after.fds <= before.fds + 2;
    process.stdout.write(clean ? 'soak: nothing left behind\n' : 'soak: LEFT SOMETHING BEHIND (see above)\n');
    process.exitCode = clean ? 0 : 1;
  } finally {
    await host.stop();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`host-soak: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = e instanceof UsageError ? 2 : 1;
});
