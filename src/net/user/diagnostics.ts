/**
 * Counters for what the stack dropped or did, with at most one log line per kind, so a guest
 * that floods bad frames cannot flood the host's stderr.
 */
export type Logger = (line: string) => void;

export const stderrLogger: Logger = (line) => process.stderr.write(`vessel: net user: ${line}\n`);

export class Diagnostics {
  private readonly counts = new Map<string, number>();

  constructor(private readonly log: Logger) {}

  /** Counts one dropped packet of `kind`; the first of each kind is logged. */
  drop(kind: string, detail = ''): void {
    const n = (this.counts.get(kind) ?? 0) + 1;
    this.counts.set(kind, n);
    if (n === 1) this.log(`dropped ${kind}${detail ? ` (${detail})` : ''}; further ones are only counted`);
  }

  /** Counts an event that is not a drop (a retransmission, a refused connection, ...). */
  count(kind: string): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
  }

  note(line: string): void {
    this.log(line);
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}
