import { readFileSync, statSync, type Stats } from 'node:fs';
import { Machine, type StopReason } from '../machine/machine.js';
import { BootImageError } from '../machine/loader.js';
import type { NetBackend } from '../net/backend.js';
import { HvcSocketError, HvcSocketServer } from './hvc-socket.js';
import { lendBackend, NetOptionError, openNetBackend, type NetOption } from './net-option.js';
import { attachConsole } from './terminal.js';

export interface RunOptions {
  kernel: string;
  initrd?: string;
  append: string;
  cpus: number;
  memoryBytes: number;
  /** Seconds after which the VM is stopped (0 = never). */
  timeout: number;
  /** Raw disk images as virtio-blk devices (vda, vdb, ...). */
  disks?: DiskOption[];
  /** A virtio-rng device (default on). */
  rng?: boolean;
  /** A Unix domain socket path on which the guest's virtio-console (hvc0) is served. */
  hvc?: string;
  /** virtio-net devices (eth0, eth1, ...), from `--net`. */
  nets?: NetOption[];
  /** false: interpret only (`--no-jit`); undefined: the Machine's default. */
  jit?: boolean;
}

export interface DiskOption { path: string; readonly: boolean }

/** Parses `PATH[,readonly]` (also `,ro`). */
export function parseDiskOption(spec: string): DiskOption {
  const parts = spec.split(',');
  let readonly = false;
  while (parts.length > 1 && ['readonly', 'ro'].includes(parts[parts.length - 1])) {
    parts.pop();
    readonly = true;
  }
  const path = parts.join(',');
  if (path === '') throw new UsageError(`--disk "${spec}" names no file`);
  return { path, readonly };
}

/** Checks that a disk image exists, is not a directory and holds at least one sector; throws UsageError. */
export function checkDisk(disk: DiskOption): void {
  let stat: Stats;
  try {
    stat = statSync(disk.path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new UsageError(`disk "${disk.path}" does not exist`);
    throw new UsageError(`disk "${disk.path}" cannot be read: ${(e as Error).message}`);
  }
  if (stat.isDirectory()) throw new UsageError(`disk "${disk.path}" is a directory, not a disk image`);
  if (stat.isFile() && stat.size < 512) throw new UsageError(`disk "${disk.path}" is smaller than one 512-byte sector`);
}

/** earlycon=sbi prints the first boot messages through the SBI debug console, before the UART driver is up. */
export const DEFAULT_APPEND = 'console=ttyS0 earlycon=sbi';

/** Exit codes of `vessel run`: poweroff passes the guest's code through. */
export const ExitCode = { ok: 0, guestFailure: 1, badInput: 2, panic: 3, error: 4, timeout: 124 } as const;

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Checks that a kernel or initrd file exists, is not a directory and is not empty; throws UsageError. */
export function checkBootFile(path: string, what: string): void {
  let stat: Stats;
  try {
    stat = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new UsageError(`${what} "${path}" does not exist`);
    throw new UsageError(`${what} "${path}" cannot be read: ${(e as Error).message}`);
  }
  if (stat.isDirectory()) throw new UsageError(`${what} "${path}" is a directory, not a file`);
  if (stat.isFile() && stat.size === 0) throw new UsageError(`${what} "${path}" is empty`);
}

/** Reads a kernel or initrd file after checkBootFile; throws UsageError. */
export function readBootFile(path: string, what: string): Uint8Array {
  checkBootFile(path, what);
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    throw new UsageError(`${what} "${path}" cannot be read: ${(e as Error).message}`);
  }
  if (data.length === 0) throw new UsageError(`${what} "${path}" is empty`);
  return data;
}

/** Boots a VM on the terminal; resolves with the process exit code. */
export async function runVm(opts: RunOptions): Promise<number> {
  const kernel = readBootFile(opts.kernel, 'kernel');
  const initrd = opts.initrd ? readBootFile(opts.initrd, 'initrd') : undefined;
  const disks = opts.disks ?? [];
  for (const d of disks) checkDisk(d);
  let machine: Machine;
  let hvc: HvcSocketServer | undefined;
  if (opts.hvc !== undefined) {
    if (opts.hvc === '') throw new UsageError('--hvc names no socket path');
    try {
      hvc = await HvcSocketServer.listen(opts.hvc, (bytes) => machine?.sendConsoleInput(bytes));
    } catch (e) {
      if (e instanceof HvcSocketError) throw new UsageError(e.message);
      throw e;
    }
  }
  // The backends live as long as this VM, across guest reboots; each Machine gets a loan.
  const netOptions = opts.nets ?? [];
  const backends: NetBackend[] = [];
  const closeNets = (): void => { for (const b of backends) b.close(); };
  try {
    for (const n of netOptions) backends.push(await openNetBackend(n));
  } catch (e) {
    closeNets();
    hvc?.close();
    throw e instanceof NetOptionError ? new UsageError(e.message) : e;
  }
  // A reader that goes away (e.g. `vessel run | head`) must stop the VM, not crash on EPIPE.
  let outputClosed = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (outputClosed) return;
    outputClosed = true;
    machine?.stop({ kind: 'error', message: `console output closed (${e.code ?? e.message}): VM stopped` });
  });
  const boot = (): Machine => {
    try {
      return new Machine({
        cpus: opts.cpus,
        memoryBytes: opts.memoryBytes,
        boot: { kind: 'linux', kernel, kernelName: opts.kernel, initrd, cmdline: opts.append },
        onConsoleOutput: (data) => { if (!outputClosed) process.stdout.write(data); },
        jit: opts.jit,
        virtio: {
          disks,
          nets: backends.map((b, i) => ({ backend: lendBackend(b), mac: netOptions[i].mac })),
          rng: opts.rng ?? true,
          console: hvc ? { output: (data) => hvc.write(data) } : undefined,
        },
      });
    } catch (e) {
      if (e instanceof BootImageError || e instanceof RangeError) throw new UsageError(e.message);
      const code = (e as NodeJS.ErrnoException).code;
      if (typeof code === 'string' && (e as NodeJS.ErrnoException).syscall === 'open') {
        throw new UsageError(`disk "${(e as NodeJS.ErrnoException).path}" cannot be opened: ${(e as Error).message}`);
      }
      throw e;
    }
  };
  try {
    machine = boot();
  } catch (e) {
    closeNets();
    hvc?.close();
    throw e;
  }
  let quit = false;
  const console = attachConsole((bytes) => machine.sendInput(bytes), () => { quit = true; machine.stop({ kind: 'poweroff', code: 0 }); });
  let timedOut = false;
  const timer = opts.timeout > 0
    ? setTimeout(() => { timedOut = true; machine.stop({ kind: 'error', message: `timeout: stopped after ${opts.timeout} s` }); }, opts.timeout * 1000)
    : undefined;
  let reason: StopReason;
  try {
    // A guest reboot starts a fresh board with the same kernel, initrd and command line, as QEMU does.
    for (;;) {
      reason = await machine.run();
      if (reason.kind !== 'reboot' || quit || timedOut || outputClosed) break;
      machine.close();
      machine = boot();
    }
  } finally {
    clearTimeout(timer);
    console.detach();
    machine.close();
    closeNets();
    hvc?.close();
  }
  return report(reason, machine, opts.timeout);
}

/** The exit code for how the VM stopped; panics and errors are described on stderr. */
export function report(reason: StopReason, machine: Machine, timeout: number): number {
  const lastLines = (): string => machine.recentConsole.split('\n').slice(-15).join('\n');
  switch (reason.kind) {
    case 'poweroff': return reason.code === 0 ? ExitCode.ok : ExitCode.guestFailure;
    case 'reboot': return ExitCode.ok; // only reached when the VM was quit while rebooting
    case 'panic':
      process.stderr.write(`\nvessel: guest kernel panic: ${reason.message}\nlast console lines:\n${lastLines()}\n`);
      return ExitCode.panic;
    case 'error': {
      const timedOut = timeout > 0 && reason.message.startsWith('timeout');
      process.stderr.write(`\nvessel: ${reason.message}\nlast console lines:\n${lastLines()}\n`);
      return timedOut ? ExitCode.timeout : ExitCode.error;
    }
  }
}
