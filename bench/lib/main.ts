// How every benchmark script ends: its exit code, and one line for an error.
import { GuestError } from './guest.js';
import { UsageError } from './options.js';

/**
 * Runs a benchmark's `main` and sets the exit code: what it returns; 1 with one line for a
 * guest that failed or a missing prerequisite; 1 with the stack for anything else.
 */
export function runBench(main: () => Promise<number>): void {
  main().then((code) => { process.exitCode = code; }, (e: unknown) => {
    if (e instanceof GuestError || e instanceof UsageError) {
      process.stderr.write(`bench: ${e.message}\n`);
    } else {
      process.stderr.write(`bench: internal error: ${e instanceof Error ? e.stack : String(e)}\n`);
    }
    process.exitCode = 1;
  });
}
