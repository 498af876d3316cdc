import { blockKey } from './block.js';
import type { BlockLinker } from './translate.js';

/**
 * What a translation asked the JIT about blocks outside its module, with the answers, keyed by
 * blockKey (fetch: by "pcLo:pcHi"). Plain maps, so a job can carry them to the
 * compile worker (structured clone) and the translation there gets the answers the hart's
 * thread gave when the job was made.
 */
export interface LinkAnswers {
  readonly fetch: Map<string, number>;
  readonly compiled: Map<string, boolean>;
}

/** A linker that asks `inner` and writes down every answer. */
export class RecordingLinker implements BlockLinker {
  readonly answers: LinkAnswers = { fetch: new Map(), compiled: new Map() };

  constructor(private readonly inner: BlockLinker) {}

  fetchRamOffset(pcLo: number, pcHi: number): number {
    const ramOff = this.inner.fetchRamOffset(pcLo, pcHi);
    this.answers.fetch.set(`${pcLo}:${pcHi}`, ramOff);
    return ramOff;
  }
  compiled(ramOff: number, pcLo: number, pcHi: number): boolean {
    const compiled = this.inner.compiled(ramOff, pcLo, pcHi);
    this.answers.compiled.set(blockKey(ramOff, pcLo, pcHi), compiled);
    return compiled;
  }
}

/**
 * A linker that gives the recorded answers again. A question that was not recorded means the
 * translator asked more while emitting than while linking (a bug): it throws.
 */
export class ReplayLinker implements BlockLinker {
  constructor(private readonly answers: LinkAnswers) {}

  fetchRamOffset(pcLo: number, pcHi: number): number {
    return this.answer(this.answers.fetch, `${pcLo}:${pcHi}`, 'fetch mapping');
  }
  compiled(ramOff: number, pcLo: number, pcHi: number): boolean {
    return this.answer(this.answers.compiled, blockKey(ramOff, pcLo, pcHi), 'compiled block');
  }

  private answer<K, T>(map: Map<K, T>, key: K, what: string): T {
    if (!map.has(key)) throw new Error(`the translation asked for the ${what} of ${key}, which linking did not record`);
    return map.get(key) as T;
  }
}
