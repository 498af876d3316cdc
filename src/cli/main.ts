#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ensureDefaultImage, ImageBuildError } from '../../images/build-image.js';
import { DEFAULT_APPEND } from '../vmm/boot-files.js';
import { chooseBoot, explainDefaultRootDisk } from '../vmm/default-boot.js';
import { parseDiskOption, type DiskOption } from '../vmm/disks.js';
import { ConfigError } from '../vmm/errors.js';
import { ExitCode } from '../vmm/exit.js';
import { parseNetOption, type NetOption } from '../vmm/net-option.js';
import { runVm } from './run.js';
import { parseMemorySize } from './size.js';
import { attachSocketConsole } from './console-client.js';
import { HostUnreachableError } from './host-client.js';
import { HostCommandError, registerHostCommands } from './vm-commands.js';
import { registerTenantCommands } from './tenant-commands.js';
import { HostStartError } from '../host/errors.js';

/** setTimeout's limit (2^31-1 ms); a longer delay would fire at once. */
const MAX_TIMEOUT_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

function intOption(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}
function memoryOption(v: string): number {
  try { return parseMemorySize(v); } catch (e) { throw new InvalidArgumentError((e as Error).message); }
}

function collectDisk(v: string, previous: DiskOption[]): DiskOption[] {
  try { return [...previous, parseDiskOption(v)]; } catch (e) { throw new InvalidArgumentError((e as Error).message); }
}
/** `--net none`: no network device at all (only alone); without any --net the VM gets `--net user`, as in QEMU. */
type NetChoice = NetOption | 'none';
function collectNet(v: string, previous: NetChoice[]): NetChoice[] {
  if (v === 'none') return [...previous, 'none'];
  try { return [...previous, parseNetOption(v)]; } catch (e) { throw new InvalidArgumentError((e as Error).message); }
}
function chosenNets(choices: NetChoice[]): NetOption[] {
  if (choices.length === 0) return [{ kind: 'user', settings: '' }];
  if (choices.includes('none')) {
    if (choices.length > 1) throw new ConfigError('--net none means no network device; it cannot be combined with other --net options');
    return [];
  }
  return choices as NetOption[];
}

const program = new Command('vessel')
  .description('Vessel: a RISC-V (RV64GC) hypervisor in TypeScript')
  .showHelpAfterError()
  // Usage errors become exit code 2 (bad input) below instead of commander's process.exit(1),
  // which would look like a guest failure; subcommands inherit this.
  .exitOverride();

program.command('run')
  .description('boot a Linux kernel (and initramfs) on the serial console; the default guest image if none is given')
  .option('-k, --kernel <path>', 'RISC-V Linux kernel Image')
  .option('-i, --initrd <path>', 'initramfs (cpio, optionally compressed)')
  .option('-a, --append <cmdline>', 'kernel command line', DEFAULT_APPEND)
  .option('-c, --cpus <n>', 'number of harts', intOption('--cpus', 1, 64), 1)
  .addOption(new Option('-m, --memory <size>', 'guest RAM, e.g. 256M or 1G').argParser(memoryOption).default(256 * 1024 * 1024, '256M'))
  .option('-t, --timeout <seconds>', 'stop the VM after this many seconds (exit code 124)', intOption('--timeout', 0, MAX_TIMEOUT_SECONDS), 0)
  .option('-d, --disk <path[,readonly]>', 'raw disk image as a virtio-blk device (vda, vdb, ...); repeatable', collectDisk, [] as DiskOption[])
  .option('--no-rng', 'no virtio-rng entropy device')
  .option('--no-jit', 'interpret guest code only (no compilation to WebAssembly)')
  .addOption(new Option('--threads <mode>', 'per-hart: every hart on a host thread of its own, running in parallel (the default, unless VESSEL_THREADS=1); 1: all harts take turns on one thread (a deterministic machine)').choices(['per-hart', '1']))
  .option('--hvc <path>', "serve the guest's virtio-console /dev/hvc0 on a Unix domain socket at <path>")
  .option('--net <spec>', 'a virtio-net device (eth0, eth1, ...): user[,hostfwd=...][,offloads=off][,mac=...], tap=NAME[,mac=...] or passt[,mac=...] (Debian\'s passt); repeatable; default user; none: no network device', collectNet, [] as NetChoice[])
  .action(async (o: { kernel?: string; initrd?: string; append: string; cpus: number; memory: number; timeout: number; disk: DiskOption[]; rng: boolean; hvc?: string; net: NetChoice[]; jit: boolean; threads?: 'per-hart' | '1' }) => {
    const nets = chosenNets(o.net);
    // Without --kernel/--initrd/--disk this is the default image with its root disk (default-boot.ts).
    const { kernel, initrd, disks, append, defaultRootDisk } = await chooseBoot(
      { kernel: o.kernel, initrd: o.initrd, disks: o.disk, append: o.append },
      () => ensureDefaultImage({ quiet: true }),
    );
    try {
      process.exitCode = await runVm({ kernel, initrd, append, cpus: o.cpus, memoryBytes: o.memory, timeout: o.timeout, disks, rng: o.rng, hvc: o.hvc, nets, jit: o.jit ? undefined : false, threads: o.threads === undefined ? undefined : o.threads === '1' ? 1 : 'per-hart' });
    } catch (e) {
      throw defaultRootDisk !== undefined ? explainDefaultRootDisk(e, defaultRootDisk) : e;
    }
  });

program.command('vmm')
  .description('a VM monitor process: the VM is configured and started through a Firecracker-style REST API on a Unix socket, or from a JSON file')
  .option('--api-sock <path>', 'serve the REST API on a Unix domain socket at <path> (see docs/API.md)')
  .option('--config-file <path>', 'configure the VM from this JSON file (the shape of GET /vm/config) and start it at once')
  .option('--console <where>', 'serial console: stdio (default: this process\'s stdin/stdout), file:PATH, unix:PATH (attach with `vessel console PATH`), pty or pty:LINK (a new pseudo-terminal, LINK a symlink to it)')
  .option('--console-log <path>', 'also append every byte of the guest\'s serial output to <path> (created with mode 0644), whatever --console is')
  .option('--exit-file <path>', 'when the VMM exits (guest poweroff, reboot or panic, an error, SIGTERM/SIGINT/SIGHUP, a failed --config-file start), write one JSON line {"exit_code", "stop", "reason", "at"} to <path>')
  .option('--id <id>', 'instance id reported by GET / (default "anonymous-instance")')
  .action(async (o: { apiSock?: string; configFile?: string; console?: string; consoleLog?: string; exitFile?: string; id?: string }) => {
    // Imported on use: the API server's libraries would slow every other command's start.
    const { runVmm } = await import('../vmm/vmm.js');
    process.exitCode = await runVmm({ id: o.id, apiSock: o.apiSock, configFile: o.configFile, console: o.console, consoleLog: o.consoleLog, exitFile: o.exitFile });
  });

program.command('console')
  .description('attach this terminal to a console served on a Unix socket (vessel vmm --console unix:PATH); Ctrl-A x detaches')
  .argument('<socket>', 'the console socket')
  .action(async (socket: string) => {
    process.exitCode = await attachSocketConsole(socket);
  });

program.command('image')
  .description('download Debian riscv64 packages and build the default guest image (cached)')
  .option('--force', 'rebuild even when cached')
  .action(async (o: { force?: boolean }) => {
    const image = await ensureDefaultImage({ force: o.force });
    process.stdout.write(`version ${image.version}\nkernel  ${image.kernel}\ninitrd  ${image.initrd}\nrootfs  ${image.rootfs}\n`);
  });

registerHostCommands(program);
registerTenantCommands(program);

program.parseAsync().catch((e: unknown) => {
  if (e instanceof CommanderError) {
    // commander has printed the message (and usage); --help and --version end with code 0.
    process.exitCode = e.exitCode === 0 ? ExitCode.ok : ExitCode.badInput;
  } else if (e instanceof HostCommandError || e instanceof HostUnreachableError) {
    process.stderr.write(`vessel: ${e.message}\n`);
    process.exitCode = e instanceof HostCommandError ? e.exitCode : 1;
  } else if (e instanceof HostStartError) {
    process.stderr.write(`vessel host: ${e.message}\n`);
    process.exitCode = ExitCode.badInput;
  } else if (e instanceof ConfigError || e instanceof ImageBuildError) {
    process.stderr.write(`vessel: ${e.message}\n`);
    process.exitCode = ExitCode.badInput;
  } else {
    process.stderr.write(`vessel: internal error: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exitCode = ExitCode.error;
  }
});
