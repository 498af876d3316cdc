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

/**
 * A benchmark's options from its command line (`parse` returns null for --help), or the exit
 * code when there are none to run with: 0 after printing the usage for --help, 2 after a bad
 * option (its message and the usage on stderr).
 */
export function readOptions<O extends object>(parse: (argv: string[]) => O | null, usage: string): O | number {
  let o: O | null;
  try {
    o = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n\n${usage}`);
    return 2;
  }
  if (!o) { process.stdout.write(usage); return 0; }
  return o;
}
