/**
 * `vessel run`: one VM on the terminal, built by the VMM's assembly (src/vmm/assemble.ts) from
 * the command line's options. A guest reboot builds a fresh board on the same resources.
 */
import type { Machine, StopReason } from '../machine/machine.js';
import { VmAssembly } from '../vmm/assemble.js';
import type { DiskOption } from '../vmm/disks.js';
import { ConfigError } from '../vmm/errors.js';
import { report } from '../vmm/exit.js';
import { HvcSocketError, HvcSocketServer } from '../vmm/hvc-socket.js';
import type { NetOption } from '../vmm/net-option.js';
import { attachConsole } from '../vmm/terminal.js';

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
  /** `--threads`: harts on a thread each, or taking turns on one. */
  threads?: 'per-hart' | 1;
}

/** Boots a VM on the terminal; resolves with the process exit code. Refusals are ConfigErrors (exit code 2). */
export async function runVm(opts: RunOptions): Promise<number> {
  if (opts.hvc === '') throw new ConfigError('--hvc names no socket path');
  const vm = await VmAssembly.open({
    boot: { kind: 'linux', kernel: opts.kernel, initrd: opts.initrd, cmdline: opts.append },
    cpus: opts.cpus,
    memoryBytes: opts.memoryBytes,
    disks: opts.disks ?? [],
    nets: opts.nets ?? [],
    rng: opts.rng ?? true,
    jit: opts.jit,
    threads: opts.threads,
  });
  let machine: Machine | undefined;
  let hvc: HvcSocketServer | undefined;
  if (opts.hvc !== undefined) {
    try {
      hvc = await HvcSocketServer.listen(opts.hvc, (bytes) => machine?.sendConsoleInput(bytes));
    } catch (e) {
      vm.close();
      if (e instanceof HvcSocketError) throw new ConfigError(e.message);
      throw e;
    }
  }
  // A reader that goes away (e.g. `vessel run | head`) must stop the VM, not crash on EPIPE.
  let outputClosed = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (outputClosed) return;
    outputClosed = true;
    machine?.stop({ kind: 'error', message: `console output closed (${e.code ?? e.message}): VM stopped` });
  });
  const boot = (): Machine => vm.build({
    serial: (data) => { if (!outputClosed) process.stdout.write(data); },
    hvc: hvc ? (data) => hvc.write(data) : undefined,
  });
  try {
    machine = boot();
  } catch (e) {
    vm.close();
    hvc?.close();
    throw e;
  }
  let quit = false;
  const console = attachConsole((bytes) => machine?.sendInput(bytes), () => { quit = true; machine?.stop({ kind: 'poweroff', code: 0 }); });
  let timedOut = false;
  const timer = opts.timeout > 0
    ? setTimeout(() => { timedOut = true; machine?.stop({ kind: 'error', message: `timeout: stopped after ${opts.timeout} s` }); }, opts.timeout * 1000)
    : undefined;
  let reason: StopReason;
  let last: Machine = machine;
  try {
    // A guest reboot starts a fresh board with the same kernel, initrd and command line, as QEMU does.
    for (;;) {
      reason = await last.run();
      if (reason.kind !== 'reboot' || quit || timedOut || outputClosed) break;
      last.close();
      machine = undefined;
      machine = last = boot();
    }
  } finally {
    clearTimeout(timer);
    console.detach();
    last.close();
    vm.close();
    hvc?.close();
  }
  return report(reason, last, opts.timeout);
}
