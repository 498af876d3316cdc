/** How a VM's end becomes the process's exit code, for `vessel run` and `vessel vmm` alike. */
import type { Machine, StopReason } from '../machine/machine.js';

/** Exit codes of `vessel run` and `vessel vmm`: poweroff passes the guest's code through. */
export const ExitCode = { ok: 0, guestFailure: 1, badInput: 2, panic: 3, error: 4, timeout: 124 } as const;

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

/** One sentence saying why the VM stopped (for --exit-file). */
export function describeStop(reason: StopReason): string {
  switch (reason.kind) {
    case 'poweroff': return reason.code === 0 ? 'the guest powered off' : `the guest powered off reporting failure code ${reason.code}`;
    case 'reboot': return 'the guest rebooted (a VMM ends at a reboot)';
    case 'panic': return `guest kernel panic: ${reason.message}`;
    case 'error': return reason.message;
  }
}
