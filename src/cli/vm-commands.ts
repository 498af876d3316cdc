/**
 * `vessel host` and `vessel vm ...`: the host daemon in the foreground, and the verbs that drive
 * it through its API in the habit of virsh and docker (names or ids, a table by default,
 * `--json` for scripts). Exit codes: 0 done, 1 the host refused or failed (the reason on
 * stderr), 2 bad input (an invalid option, or a request the host refused as invalid).
 */
import * as path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import Table from 'cli-table3';
import { attachSocketConsole } from './console-client.js';
import { hostJson, hostRequest, hostTarget, HostReplyError, type HostTarget } from './host-client.js';
import { parseMemorySize } from './size.js';
import { registerVmAgentCommands } from './vm-agent-commands.js';
import { registerVmSnapshotCommands } from './vm-snapshot-commands.js';
import { defaultStateDir } from '../host/state-dir.js';

interface VmJson {
  id: string; name: string; tenant?: string | null; state: string; vcpus: number; memory_mib: number; memory_min_mib: number; memory_shares?: number; memory_target?: number | 'auto';
  cpu_weight: number; cpu_cap: number; pid: number | null; uptime_s: number; nets: string[];
  disks: { path: string; readonly: boolean; size_bytes?: number | null }[]; kernel: string; initrd?: string; append: string;
  restart: string; desired_state: string; created_at: string; error: string | null;
  last_exit: { exit_code: number | null; reason: string; at: string } | null; console_socket: string;
  /** GET /vms/{vm} only. */
  guest_agent?: { connected: boolean; version: string | null };
  /** The most vCPUs it can have while it runs; CPUs online in the guest (GET /vms/{vm}, running). */
  max_vcpus?: number; vcpus_online?: number | null;
  /** PATCH /vms/{vm} with vcpus on a running VM: what was done live. */
  vcpus_change?: { previous: number; vcpus: number; max_vcpus: number; live: boolean; online: number | null; seen_after_ms: number | null; notes: string[] };
}

interface Stats {
  name: string; state: string;
  cpu: { usage_s: number; percent: number; throttled_s: number | null; wait_s: number | null } | null;
  memory: { guest_mib: number; rss_bytes: number | null; target_mib?: number | null; actual_mib?: number | null; guest_used_mib?: number | null; guest_available_mib?: number | null; manual?: boolean };
  disk: Record<string, { read_bytes: number; write_bytes: number }>;
  net: Record<string, { rx_bytes: number; tx_bytes: number }>;
}

/** A request refused as invalid by the host (400) is bad input, exit 2; other refusals exit 1. */
export class HostCommandError extends Error {
  override name = 'HostCommandError';
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

function intArg(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

function mibArg(v: string): number {
  let bytes: number;
  try { bytes = parseMemorySize(v); } catch (e) { throw new InvalidArgumentError((e as Error).message); }
  if (bytes % (1024 * 1024) !== 0) throw new InvalidArgumentError(`memory size "${v}" is not a whole number of MiB`);
  return bytes / (1024 * 1024);
}

interface DiskSize { disk: string; bytes: number }

/** POST /vms/{vm}/disks/{disk}/resize */
interface DiskResizeJson { disk: string; size_bytes: number; previous_bytes: number; grown: boolean; live: boolean; notes: string[] }

/** `--disk vda=2G`, repeatable. */
function diskSizeArg(v: string, prev: DiskSize[]): DiskSize[] {
  const m = /^(vd[a-z])=(.+)$/.exec(v);
  if (!m) throw new InvalidArgumentError(`"${v}" is not DISK=SIZE, e.g. vda=2G`);
  let bytes: number;
  try { bytes = parseMemorySize(m[2]); } catch { throw new InvalidArgumentError(`"${m[2]}" is not a size: use e.g. 512M or 2G`); }
  if (prev.some((p) => p.disk === m[1])) throw new InvalidArgumentError(`${m[1]} is given twice`);
  return [...prev, { disk: m[1], bytes }];
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** Rows under a header, aligned, without borders (the verbs' tables). */
export function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({
    head,
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ' },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  t.push(...rows.map((r) => r.map(String)));
  return t.toString().split('\n').map((l) => l.trimEnd()).join('\n') + '\n';
}

function duration(s: number): string {
  if (s <= 0) return '-';
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${Math.floor(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

/** A disk's size: whole GiB or MiB where it is one, else bytes. */
function diskSize(bytes: number): string {
  const m = bytes / 1048576;
  return m >= 1024 && Number.isInteger(m / 1024) ? `${m / 1024} GiB` : Number.isInteger(m) ? `${m} MiB` : `${bytes} bytes`;
}

function mib(bytes: number | null | undefined): string {
  return bytes == null ? '-' : `${(bytes / 1048576).toFixed(1)} MiB`;
}

function print(text: string): void {
  process.stdout.write(text);
}

function json(value: unknown): void {
  print(JSON.stringify(value, null, 2) + '\n');
}

/** The options every host verb takes (`vessel vm`, `vessel tenant`). */
export interface Global { host?: string; token?: string }

/** Runs one API call of a verb, turning the host's refusals into exit codes. */
export async function call<T>(g: Global, method: string, urlPath: string, body?: unknown): Promise<T> {
  try {
    return await hostJson<T>(hostTarget(g), method, urlPath, body);
  } catch (e) {
    if (e instanceof HostReplyError) throw new HostCommandError(e.message, e.status === 400 ? 2 : 1);
    throw e;
  }
}

const vmPath = (name: string, rest = ''): string => `/vms/${encodeURIComponent(name)}${rest}`;

/** GET /vms/{vm}/memory */
interface MemoryJson {
  target_mib: number | null; actual_mib: number | null; memory_min_mib: number; memory_max_mib: number; memory_shares: number;
  guest_used_mib: number | null; guest_available_mib: number | null; guest_free_mib: number | null; guest_total_mib: number | null;
  host_rss_bytes: number | null; manual: boolean; balloon_driver: boolean | null; skipped: string | null;
  balloon?: string | null; backoff_until?: string | null;
  last_decision: { at: string; target_mib: number; reason: string } | null;
}

const mibOr = (v: number | null | undefined): string => (v == null ? '-' : `${v} MiB`);

function memoryLines(m: MemoryJson): [string, string][] {
  return [
    ['Memory target', `${mibOr(m.target_mib)} (${m.manual ? 'set by hand' : 'policy'}; min ${m.memory_min_mib} MiB, max ${m.memory_max_mib} MiB, shares ${m.memory_shares})`],
    ['Memory actual', mibOr(m.actual_mib)],
    ['Guest used', mibOr(m.guest_used_mib)], ['Guest available', mibOr(m.guest_available_mib)],
    ['Host RSS', mib(m.host_rss_bytes)],
    ...(m.balloon ? [['Balloon', m.balloon] as [string, string]] : []),
    ...(m.backoff_until ? [['Memory policy', `backs off until ${m.backoff_until} (the guest could not give)`] as [string, string]] : []),
    ...(m.skipped ? [['Memory policy', `leaves it alone: ${m.skipped}`] as [string, string]] : []),
    ...(m.last_decision ? [['Last decision', `${m.last_decision.reason} (${m.last_decision.at})`] as [string, string]] : []),
  ];
}

function showVm(v: VmJson, mem: MemoryJson | null = null): string {
  const lines: [string, string][] = [
    ['Name', v.name], ['Id', v.id], ['State', v.state + (v.desired_state !== stateGoal(v.state) ? ` (wanted: ${v.desired_state})` : '')],
    ['PID', v.pid === null ? '-' : String(v.pid)], ['Uptime', duration(v.uptime_s)],
    ['vCPUs', `${v.vcpus} (max ${v.max_vcpus ?? v.vcpus}${v.vcpus_online != null ? `, ${v.vcpus_online} online` : ''})`], ['Memory', `${v.memory_mib} MiB (min ${v.memory_min_mib} MiB)`],
    ...(mem && v.pid !== null ? memoryLines(mem) : []),
    ['CPU weight', String(v.cpu_weight)], ['CPU cap', v.cpu_cap === 0 ? 'none' : `${v.cpu_cap}% of a core`],
    ['Kernel', v.kernel], ...(v.initrd ? [['Initrd', v.initrd] as [string, string]] : []), ['Command line', v.append],
    ...v.disks.map((d, i) => [`Disk vd${String.fromCharCode(97 + i)}`, d.path + (d.size_bytes != null ? ` (${diskSize(d.size_bytes)}${d.readonly ? ', read-only' : ''})` : d.readonly ? ' (read-only)' : '')] as [string, string]),
    ['Network', v.nets.length ? v.nets.map((n, i) => `eth${i}: ${n}`).join(', ') : 'none'],
    ...(v.guest_agent ? [['Guest agent', v.guest_agent.connected ? `connected${v.guest_agent.version ? ` (qemu-ga ${v.guest_agent.version})` : ''}` : 'none'] as [string, string]] : []),
    ['Restart', v.restart], ['Created', v.created_at],
    ...(v.last_exit ? [['Last exit', `${v.last_exit.reason} (${v.last_exit.at})`] as [string, string]] : []),
    ...(v.error ? [['Error', v.error] as [string, string]] : []),
  ];
  const w = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, val]) => `${(k + ':').padEnd(w + 2)}${val}`).join('\n') + '\n';
}

function stateGoal(state: string): string {
  return state === 'paused' ? 'paused' : state === 'running' || state === 'starting' ? 'running' : 'stopped';
}

export function registerHostCommands(program: Command): void {
  program.command('host')
    .description('run the host daemon in the foreground: it owns this machine\'s VMs, each a `vessel vmm` process, and serves the host API on <state-dir>/host.sock')
    .option('--state-dir <dir>', 'where the host keeps its state (default /var/lib/vessel for root, else ~/.local/state/vessel; or $VESSEL_STATE_DIR)')
    .option('--listen <addr:port>', 'also serve the API over TCP (e.g. 127.0.0.1:8080), with a bearer token')
    .option('--token <token>', 'the admin\'s bearer token (default: made once and kept in <state-dir>/token)')
    .option('--prices <file>', 'prices for GET /usage and `vessel usage`, a JSON or YAML file (docs/HOST.md; default: built-in examples)')
    .action(async (o: { stateDir?: string; listen?: string; token?: string; prices?: string }) => {
      const { runHost } = await import('../host/host.js');
      const stateDir = path.resolve(o.stateDir ?? defaultStateDir());
      process.exitCode = await runHost({
        stateDir, listen: o.listen, token: o.token ?? process.env['VESSEL_HOST_TOKEN'], prices: o.prices && path.resolve(o.prices),
        onReady: ({ socketPath, url }) => {
          process.stdout.write(`vessel host: state in ${stateDir}, API on ${socketPath}${url ? `\nvessel host: API over HTTP at ${url} (open it in a browser for the web console)` : ''}\n`);
        },
      });
    });

  const vm = program.command('vm')
    .description('manage the VMs of a running `vessel host` (create, list, show, start, stop, shutdown, pause, resume, exec, file-read, file-write, fsfreeze, ifaddr, fsinfo, snapshot, snapshots, restore, snapshot-delete, delete, logs, console, stats, set)')
    .addOption(new Option('--host <socket|url>', 'the host\'s API socket, or http://ADDR:PORT (default: $VESSEL_HOST, else the default state directory\'s host.sock)'))
    .addOption(new Option('--token <token>', 'bearer token for a host reached over HTTP (default $VESSEL_TOKEN)'));
  const g = (): Global => vm.opts<Global>();

  vm.command('create')
    .description('create a VM and start it (the default guest image when no --kernel, --initrd or --disk is given, with its own copy of the root disk)')
    .argument('<name>', 'a name: letters, digits, _ . -')
    .option('--vcpus <n>', 'vCPUs (default 1)', intArg('--vcpus', 1, 64))
    .option('--max-vcpus <n>', 'the most vCPUs it can have while it runs (`vessel vm set --vcpus`); default --vcpus', intArg('--max-vcpus', 1, 64))
    .option('--memory <size>', 'guest RAM at boot, its maximum, e.g. 256M (default 256M)', mibArg)
    .option('--memory-min <size>', 'the least memory the host\'s policy leaves the VM (default: --memory)', mibArg)
    .option('--memory-shares <n>', 'the VM\'s weight when the host\'s memory is split, 0 to 50000 (default 1000)', intArg('--memory-shares', 0, 50000))
    .option('--cpu-weight <n>', 'relative CPU share, 1 to 10000 (default 100)', intArg('--cpu-weight', 1, 10000))
    .option('--cpu-cap <pct>', 'at most this percent of one host core, 0 = no cap (default 0)', intArg('--cpu-cap', 0, 100_000))
    .option('-k, --kernel <path>', 'RISC-V Linux kernel Image')
    .option('-i, --initrd <path>', 'initramfs')
    .option('-a, --append <cmdline>', 'kernel command line (default console=ttyS0 earlycon=sbi)')
    .addOption(new Option('-d, --disk <path[,readonly]>', 'a raw disk image (vda, vdb, ...); repeatable').argParser(collect).default([] as string[], 'none'))
    .addOption(new Option('--net <spec>', 'user[,hostfwd=...][,mac=...], tap=NAME[,mac=...] or none; repeatable').argParser(collect).default([] as string[], 'user'))
    .option('--no-rng', 'no virtio-rng device')
    .addOption(new Option('--restart <policy>', 'start the VM again when its process ends').choices(['no', 'on-failure', 'always']))
    .option('--no-start', 'create it stopped')
    .option('--disk-size <size>', 'the size of the VM\'s own root disk copy (default image only), e.g. 2G: grown with its file system before the first boot', mibArg)
    .addOption(new Option('--image <image>', 'default: the default image with the VM\'s own root disk (as without --kernel, --initrd, --disk); initramfs: its kernel and initramfs only (tenants choose this way)').choices(['default', 'initramfs']))
    .option('--json', 'print the VM as JSON')
    .action(async (name: string, o: { image?: string; diskSize?: number; vcpus?: number; memory?: number; memoryMin?: number; memoryShares?: number; cpuWeight?: number; cpuCap?: number; kernel?: string; initrd?: string; append?: string; disk: string[]; net: string[]; rng: boolean; restart?: string; start: boolean; json?: boolean }) => {
      const disks = o.disk.map((d) => {
        const parts = d.split(',');
        let readonly = false;
        while (parts.length > 1 && ['readonly', 'ro'].includes(parts[parts.length - 1])) { parts.pop(); readonly = true; }
        return { path: path.resolve(parts.join(',')), readonly };
      });
      const body = {
        name, vcpus: o.vcpus, max_vcpus: (o as { maxVcpus?: number }).maxVcpus, memory_mib: o.memory, memory_min_mib: o.memoryMin, memory_shares: o.memoryShares, cpu_weight: o.cpuWeight, cpu_cap: o.cpuCap,
        kernel: o.kernel && path.resolve(o.kernel), initrd: o.initrd && path.resolve(o.initrd), append: o.append,
        disks: disks.length ? disks : undefined, nets: o.net.length ? o.net : undefined, rng: o.rng, restart: o.restart, start: o.start, image: o.image, disk_mib: o.diskSize,
      };
      const created = await call<VmJson>(g(), 'POST', '/vms', JSON.parse(JSON.stringify(body)));
      if (o.json) json(created);
      else print(`${created.name} ${created.id} ${created.state}\n`);
    });

  vm.command('list').alias('ls')
    .description('list the VMs')
    .option('--json', 'as JSON')
    .action(async (o: { json?: boolean }) => {
      const vms = await call<VmJson[]>(g(), 'GET', '/vms');
      if (o.json) { json(vms); return; }
      // The admin sees whose each VM is once there are tenants' VMs (a TENANT column).
      const tenants = vms.some((v) => v.tenant);
      print(table(['ID', 'NAME', ...(tenants ? ['TENANT'] : []), 'STATE', 'VCPUS', 'MEMORY', 'WEIGHT', 'CAP', 'PID', 'UPTIME'],
        vms.map((v) => [v.id, v.name, ...(tenants ? [v.tenant ?? '-'] : []), v.state, v.vcpus, `${v.memory_mib}M`, v.cpu_weight, v.cpu_cap ? `${v.cpu_cap}%` : '-', v.pid ?? '-', duration(v.uptime_s)])));
    });

  vm.command('show').alias('inspect')
    .description('show one VM')
    .argument('<vm>', 'name or id')
    .option('--json', 'as JSON (includes the process\'s pid)')
    .action(async (name: string, o: { json?: boolean }) => {
      const v = await call<VmJson>(g(), 'GET', vmPath(name));
      const mem = v.pid !== null ? await call<MemoryJson>(g(), 'GET', vmPath(name, '/memory')).catch(() => null) : null;
      if (o.json) json(mem ? { ...v, memory: mem } : v); else print(showVm(v, mem));
    });

  for (const [verb, what] of [['start', 'start a stopped VM'], ['pause', 'pause a running VM (its vCPUs stop, its guest clock freezes)'], ['resume', 'resume a paused VM']] as const) {
    vm.command(verb).description(what).argument('<vm...>', 'names or ids')
      .action(async (names: string[]) => {
        for (const n of names) {
          const v = await call<VmJson>(g(), 'POST', vmPath(n, `/${verb}`));
          print(`${v.name} ${v.state}\n`);
        }
      });
  }

  vm.command('stop').description('stop a VM: its process gets SIGTERM, SIGKILL after 10 s').argument('<vm...>', 'names or ids')
    .option('-f, --force', 'kill the process at once')
    .action(async (names: string[], o: { force?: boolean }) => {
      for (const n of names) {
        const v = await call<VmJson>(g(), 'POST', vmPath(n, `/stop${o.force ? '?force=true' : ''}`));
        print(`${v.name} ${v.state}\n`);
      }
    });

  vm.command('exec').description('run a command in the guest through its guest agent: prints its output, exits with its exit code')
    .argument('<vm>', 'name or id').argument('<command...>', 'the command and its arguments (after --)')
    .option('--timeout <seconds>', 'how long to wait for the command', intArg('--timeout', 1, 3600), 60)
    .action(async (name: string, command: string[], o: { timeout: number }) => {
      const r = await call<{ exit_code: number; stdout: string; stderr: string }>(g(), 'POST', vmPath(name, '/exec'), { command, timeout_s: o.timeout });
      process.stdout.write(r.stdout);
      process.stderr.write(r.stderr);
      process.exitCode = r.exit_code;
    });

  vm.command('shutdown').description('power a VM off cleanly through its guest agent (without one: `poweroff` typed at a shell prompt on its serial console) and wait until it is stopped').argument('<vm...>', 'names or ids')
    .action(async (names: string[]) => {
      for (const n of names) {
        const v = await call<VmJson & { shutdown?: string }>(g(), 'POST', vmPath(n, '/shutdown'));
        if (v.shutdown) print(`${v.name}: ${v.shutdown}\n`);
        print(`${v.name} ${v.state}\n`);
      }
    });

  registerVmAgentCommands(vm, g);
  registerVmSnapshotCommands(vm, g);

  vm.command('delete').alias('rm').description('delete a stopped VM and its files (its own root disk copy; disks given with --disk are kept)').argument('<vm...>', 'names or ids')
    .option('-f, --force', 'stop it first if it runs')
    .action(async (names: string[], o: { force?: boolean }) => {
      for (const n of names) {
        await call(g(), 'DELETE', vmPath(n, o.force ? '?force=true' : ''));
        print(`${n} deleted\n`);
      }
    });

  vm.command('logs').description('print the VM\'s serial console output so far').argument('<vm>', 'name or id')
    .option('-f, --follow', 'keep printing what follows until the VM stops (Ctrl-C ends)')
    .option('-n, --tail <lines>', 'only the last <lines> lines', intArg('--tail', 0, 10_000_000))
    .action(async (name: string, o: { follow?: boolean; tail?: number }) => {
      const q = new URLSearchParams();
      if (o.follow) q.set('follow', 'true');
      if (o.tail !== undefined) q.set('tail', String(o.tail));
      const t: HostTarget = hostTarget(g());
      const r = await hostRequest(t, 'GET', vmPath(name, `/logs${q.size ? `?${q}` : ''}`), undefined, (c) => process.stdout.write(c));
      if (r.status >= 400) {
        let msg = r.text;
        try { msg = (JSON.parse(r.text) as { fault_message: string }).fault_message; } catch { /* as is */ }
        throw new HostCommandError(msg, r.status === 400 ? 2 : 1);
      }
      if (!o.follow) process.stdout.write(r.text);
    });

  vm.command('console').description('attach this terminal to the VM\'s serial console (Ctrl-A x detaches; the VM goes on)').argument('<vm>', 'name or id')
    .action(async (name: string) => {
      const v = await call<VmJson>(g(), 'GET', vmPath(name));
      if (v.state !== 'running' && v.state !== 'paused') throw new HostCommandError(`VM "${v.name}" is ${v.state}; its console is there while it runs`, 1);
      process.exitCode = await attachSocketConsole(v.console_socket);
    });

  vm.command('stats').description('CPU, memory, disk and network use of one VM or of all').argument('[vm]', 'name or id (default: every VM with a process)')
    .option('--json', 'as JSON')
    .action(async (name: string | undefined, o: { json?: boolean }) => {
      const names = name !== undefined ? [name] : (await call<VmJson[]>(g(), 'GET', '/vms')).filter((v) => v.pid !== null).map((v) => v.id);
      const stats = await Promise.all(names.map((n) => call<Stats>(g(), 'GET', vmPath(n, '/stats'))));
      if (o.json) { json(name !== undefined ? stats[0] : stats); return; }
      const sum = (r: Record<string, Record<string, number>>, k: string): number => Object.values(r).reduce((a, x) => a + (x[k] ?? 0), 0);
      print(table(['NAME', 'STATE', 'CPU %', 'CPU TIME', 'THROTTLED', 'WAITED', 'MEM TARGET', 'MEM ACTUAL', 'GUEST USED', 'GUEST AVAIL', 'HOST RSS', 'DISK R/W', 'NET RX/TX'], stats.map((s) => [
        s.name, s.state, s.cpu ? s.cpu.percent.toFixed(1) : '-', s.cpu ? `${s.cpu.usage_s.toFixed(1)}s` : '-',
        s.cpu?.throttled_s != null ? `${s.cpu.throttled_s.toFixed(1)}s` : '-', s.cpu?.wait_s != null ? `${s.cpu.wait_s.toFixed(1)}s` : '-',
        `${mibOr(s.memory.target_mib)}${s.memory.manual ? ' (set)' : ''}`, mibOr(s.memory.actual_mib), mibOr(s.memory.guest_used_mib), mibOr(s.memory.guest_available_mib), mib(s.memory.rss_bytes),
        `${mib(sum(s.disk, 'read_bytes'))} / ${mib(sum(s.disk, 'write_bytes'))}`, `${mib(sum(s.net, 'rx_bytes'))} / ${mib(sum(s.net, 'tx_bytes'))}`,
      ])));
    });

  vm.command('set').description('change a VM; a running VM feels it at once (CPU share, memory target, disk size), and the answer says what was applied live').argument('<vm>', 'name or id')
    .option('--cpu-weight <n>', 'relative CPU share, 1 to 10000', intArg('--cpu-weight', 1, 10000))
    .option('--cpu-cap <pct>', 'percent of one host core, 0 = no cap', intArg('--cpu-cap', 0, 100_000))
    .addOption(new Option('--restart <policy>', 'restart policy').choices(['no', 'on-failure', 'always']))
    .option('--memory <size|auto>', 'move the memory target (the balloon) by hand, within --memory-min and --memory; the policy leaves the VM alone until --memory auto', (v: string) => (v === 'auto' ? 'auto' : mibArg(v)))
    .option('--memory-shares <n>', 'the VM\'s weight when the host\'s memory is split, 0 to 50000', intArg('--memory-shares', 0, 50000))
    .addOption(new Option('--disk <vdX=size>', 'grow a disk, e.g. vda=2G (never shrinks): live on a running VM, with its ext4 grown through the guest agent; the image alone on a stopped one; repeatable').argParser(diskSizeArg).default([] as DiskSize[], 'none'))
    .option('--vcpus <n>', 'vCPUs: a running VM\'s live, up to its max_vcpus (the guest agent onlines or offlines the CPUs); a stopped VM\'s from its next start', intArg('--vcpus', 1, 64))
    .option('--max-vcpus <n>', 'the most vCPUs a stopped VM can have once it runs (from its next start)', intArg('--max-vcpus', 1, 64))
    .option('--json', 'print the VM as JSON ({vm, memory, disks} when --disk is given)')
    .action(async (name: string, o: { cpuWeight?: number; cpuCap?: number; restart?: string; memory?: number | 'auto'; memoryShares?: number; disk: DiskSize[]; vcpus?: number; maxVcpus?: number; json?: boolean }) => {
      const body = JSON.parse(JSON.stringify({ cpu_weight: o.cpuWeight, cpu_cap: o.cpuCap, restart: o.restart, memory_shares: o.memoryShares, vcpus: o.vcpus, max_vcpus: o.maxVcpus })) as Record<string, unknown>;
      if (Object.keys(body).length === 0 && o.memory === undefined && o.disk.length === 0) throw new HostCommandError('vessel vm set: nothing to change (give --cpu-weight, --cpu-cap, --restart, --memory, --memory-shares, --disk or --vcpus)', 2);
      // The VM's own fields first: a refused one (vCPUs of a running VM) leaves everything as it was.
      const v = Object.keys(body).length > 0 ? await call<VmJson>(g(), 'PATCH', vmPath(name), body) : null;
      if (v && !o.json) print(`${v.name}: cpu_weight ${v.cpu_weight}, cpu_cap ${v.cpu_cap === 0 ? 'none' : `${v.cpu_cap}%`}, restart ${v.restart}, memory_shares ${v.memory_shares ?? 1000}${o.vcpus !== undefined || o.maxVcpus !== undefined ? `, vcpus ${v.vcpus}${v.pid === null ? ' (from its next start)' : ''}${o.maxVcpus !== undefined || (v.max_vcpus ?? v.vcpus) !== v.vcpus ? `, max_vcpus ${v.max_vcpus ?? v.vcpus}` : ''}` : ''}\n`);
      // A running VM's vCPUs changed live: one line per step (allotment, guest agent).
      if (v?.vcpus_change && !o.json) print(v.vcpus_change.notes.map((n) => `${v.name}: ${n}\n`).join(''));
      const mem = o.memory !== undefined ? await call<MemoryJson>(g(), 'PATCH', vmPath(name, '/memory'), { target_mib: o.memory }) : null;
      if (mem && !o.json) print(`${v?.name ?? name}: memory target ${mibOr(mem.target_mib)} (${mem.manual ? 'set by hand' : 'policy'}), actual ${mibOr(mem.actual_mib)}\n`);
      const disks: DiskResizeJson[] = [];
      for (const d of o.disk) {
        const r = await call<DiskResizeJson>(g(), 'POST', vmPath(name, `/disks/${d.disk}/resize`), { size_bytes: d.bytes });
        disks.push(r);
        if (!o.json) print(r.notes.map((n) => `${v?.name ?? name}: ${n}\n`).join(''));
      }
      if (o.json) json(o.disk.length > 0 ? { vm: v, memory: mem, disks } : v ?? mem);
    });

  vm.command('events').description('the event log of one VM or of the host').argument('[vm]', 'name or id')
    .option('--json', 'as JSON')
    .action(async (name: string | undefined, o: { json?: boolean }) => {
      const events = await call<{ at: string; vm_name: string | null; kind: string; message: string }[]>(g(), 'GET', name ? vmPath(name, '/events') : '/events');
      if (o.json) { json(events); return; }
      print(events.map((e) => `${e.at}  ${e.vm_name ?? '-'}  ${e.kind}  ${e.message}\n`).join(''));
    });
}
