import type { GuestMemory } from '../../hw/memory.js';
import { blockKey, scanBlock, type BlockPlan } from './block.js';
import { buildDispatcher, jitLayout, LOOKUP_MASK, LOOKUP_ENTRIES, LookupField, MAX_SLOTS, type JitLayout } from './dispatcher.js';
import { CodeMap } from './code-map.js';
import type { MessagePort } from 'node:worker_threads';
import { CompileLine, type CompileResult, type SharedModule } from './background.js';
import { RecordingLinker } from './links.js';
import { ModuleTranslator, type BlockLinker, type BlockRef, type ModuleLinks } from './translate.js';

/** What a JIT counts (Jit.stats). */
export interface JitStats {
  blocks: number; modules: number; compileMs: number; invalidatedBlocks: number; invalidatedModules: number;
  discardedModules: number; workerErrors: number; adoptedModules: number; declinedModules: number;
}

/** The hart as the JIT sees it: slow paths for compiled code and TLB upkeep. */
export interface JitHart {
  compiledInterpret(length: number): number;
  forgetWritablePage(ramOffset: number): void;
  /** The RAM offset the fetch TLB maps virtual pc (lo, hi) to now, or -1 (not cached or not RAM). */
  fetchRamOffset(lo: number, hi: number): number;
  /** Gives the hart a new HartState.FetchEpoch, which empties its jump cache. */
  newFetchEpoch(): void;
}

export interface JitOptions {
  /**
   * Times the interpreter must enter a pc before it is compiled; 0 compiles every block before
   * it first runs (for tests: then compiled code runs even for code that runs once).
   */
  threshold?: number;
  /** Hot blocks compiled together into one module (they can jump to each other directly). */
  batch?: number;
  /**
   * Interpreted block entries after which pending hot blocks are compiled even if the batch is
   * not full. Every module costs V8 a fixed amount, so waiting for full batches pays.
   */
  patience?: number;
  /**
   * Translate and compile on the process's compile worker (background.ts) while the harts go
   * on interpreting, instead of on the harts' thread at once. Default true; threshold 0 (which
   * must have the code at once) always compiles here.
   */
  background?: boolean;
}

/**
 * A block start compiled code knows of, with its function table slot for life (until a full
 * reset): the slot holds the block's function while it is compiled and the dispatcher's `chain`
 * otherwise, so compiled code that jumps there through the slot needs no lookup.
 */
interface BlockKey {
  readonly ramOff: number;
  readonly pcLo: number;
  readonly pcHi: number;
  readonly slot: number;
  block: CompiledBlock | null;
}

/**
 * A translated block: its key (whose table slot, holding its function, is its lookup Target)
 * and its module. It is live while its key names it.
 */
interface CompiledBlock {
  readonly key: BlockKey;
  readonly module: CompiledModule;
}

/** A module's blocks; those on a page go when the page is written, the others stay. */
interface CompiledModule {
  readonly blocks: CompiledBlock[];
  /** Blocks not dropped yet. */
  live: number;
}

interface PendingBlock { ramOff: number; pcLo: number; pcHi: number }

/**
 * Hot blocks whose pages this thread began to own: they are read and compiled once every other
 * thread acknowledged `epoch` (see CodeMap). Their pages count as in flight meanwhile.
 */
interface WaitingBatch { readonly blocks: PendingBlock[]; readonly pages: number[]; readonly epoch: number }

/** A batch on the compile worker: its blocks, and what must not have changed for its module to be used. */
interface InFlightJob {
  readonly plans: BlockPlan[];
  /** Each RAM page the blocks are on, with its pageVersions entry when the blocks were read. */
  readonly pages: Map<number, number>;
}

/** A page invalidated this often by CPU stores (code and data mixed on it) is no longer compiled. */
const MAX_PAGE_INVALIDATIONS = 32;

/**
 * The JIT of one host thread that runs harts (of all of a board's harts when they share one
 * thread, of one when each has its own): finds hot guest code by
 * counting the interpreter's block entries per RAM offset, compiles batches of hot blocks to
 * WebAssembly modules, and keeps translations coherent with guest memory.
 *
 * Blocks are keyed by the RAM offset of their first instruction and also record the virtual pc
 * they were translated at (pc-relative values are compiled in); every lookup first translates
 * the pc with the hart's fetch TLB, so satp changes and sfence.vma need nothing here. The
 * lookup table lives in the wasm memory, where the dispatcher (dispatcher.ts) reads it to go
 * from block to block without returning to JavaScript. A jump to a constant target goes
 * through the target's table slot instead (see BlockKey), linked as soon as the target is
 * compiled.
 *
 * Coherence: a page holding translated code is marked in `codePages`, and no write TLB entry
 * maps it, so every CPU store to it takes the slow path, which drops the blocks on the page
 * before the next instruction is fetched (the rest of their modules stays); device writes (DMA)
 * drop them through GuestMemory.onDeviceWrite. With harts on several threads, each thread's
 * JIT has its own tables (its region of the wasm memory, jitLayout) and `codePages` is the
 * shared CodeMap, through which stores and DMA from other threads reach it (code-map.ts);
 * `drain` applies them, and runs at FENCE.I and remote fences. The VM still compiles its code
 * once: a module names nothing of one thread's tables (ModuleLinks), so the compile worker
 * offers each module to the VM's other threads, which install it too (`adopt`) when its
 * pages' content is still what was compiled.
 */
export class Jit {
  /** Nonzero for RAM pages that hold translated code (of any thread: CodeMap.owners). */
  readonly codePages: Uint32Array;
  /** Which threads translated which pages, and this JIT's thread index (its region and owner bit). */
  private readonly code: CodeMap;
  private readonly thread: number;
  private readonly layout: JitLayout;
  /** Harts of other threads share the memory: compiled AMOs are atomic and FENCEs host barriers. */
  readonly concurrent: boolean;
  private waiting: WaitingBatch[] = [];
  /** Per RAM page, the CodeMap epoch at which this thread last began to own it. */
  private readonly announced: Int32Array;
  /** The hart running compiled code now (helpers called by compiled code act on it). */
  current: JitHart | null = null;
  /**
   * compileMs: time the harts' thread spent compiling (with the compile worker, only linking
   * and instantiating); invalidatedBlocks, invalidatedModules: blocks dropped because their
   * code may have changed, and modules left with none; discardedModules: modules from the
   * worker thrown away because their code changed meanwhile; workerErrors: batches the worker
   * failed, compiled here instead; adoptedModules, declinedModules: modules compiled for
   * another thread of the VM installed here, and not (their code had changed).
   */
  readonly stats: JitStats = {
    blocks: 0, modules: 0, compileMs: 0, invalidatedBlocks: 0, invalidatedModules: 0, discardedModules: 0, workerErrors: 0,
    adoptedModules: 0, declinedModules: 0,
  };
  /**
   * Runs compiled code from a lookup() target until it leaves compiled code; see
   * buildDispatcher. Returns (retired << 2) | RunExit flags.
   */
  readonly enter: (target: number, budget: number, stateBase: number) => number;

  private readonly threshold: number;
  private readonly batch: number;
  private readonly patience: number;
  private readonly harts: JitHart[] = [];
  /** The lookup table in the wasm memory (LookupField entries), and the blocks it names. */
  private readonly lookupTable: Int32Array;
  /** The generation of each table slot, in the wasm memory (see GENERATIONS_OFFSET). */
  private readonly generations: Int32Array;
  private readonly entryBlocks: (CompiledBlock | null)[] = new Array<CompiledBlock | null>(LOOKUP_ENTRIES).fill(null);
  /** Interpreter entries per lookup entry. */
  private readonly counters = new Int32Array(LOOKUP_ENTRIES);
  /** Nonzero for lookup entries from which a compiled block was evicted (so a miss there may find one). */
  private readonly evictions = new Uint8Array(LOOKUP_ENTRIES);
  /** Every block key by RAM offset; key i has table slot i. */
  private keys = new Map<number, BlockKey[]>();
  private keyCount = 0;
  private readonly pageModules = new Map<number, Set<CompiledModule>>();
  private readonly pageInvalidations: Uint8Array;
  private readonly table = new WebAssembly.Table({ element: 'anyfunc', initial: 1024 });
  /** The dispatcher's chain: what the table slot of a block that is not compiled holds. */
  private readonly chain: WebAssembly.ExportValue;
  private readonly linker: BlockLinker;
  private pending: PendingBlock[] = [];
  private pendingAge = 0;
  /** What every module imports (env.t<i>, the targets it calls directly, come on top). */
  private readonly env: Record<string, WebAssembly.ImportValue>;
  private readonly memoryPages: number;
  /** The compile worker, or null to compile on this thread. */
  private line: CompileLine | null = null;
  private readonly inFlight = new Map<number, InFlightJob>();
  /** blockKey of every block in an in-flight job (so it is not requested twice). */
  private readonly inFlightBlocks = new Set<string>();
  /** Per RAM page, the in-flight jobs with blocks on it (their pages stay in codePages). */
  private readonly inFlightPages: Uint16Array;
  /**
   * Per RAM page, bumped whenever its translations are dropped (its code may have changed); in
   * the wasm memory, where compiled code checks it (see PAGE_VERSIONS_OFFSET).
   */
  private readonly pageVersions: Uint32Array;
  private nextJobId = 1;
  private polls = 0;

  /**
   * `code`: the VM's shared CodeMap and this JIT's thread index in it, when harts run on several
   * threads; by default a map of this JIT alone.
   */
  constructor(private readonly memory: GuestMemory, options: JitOptions = {}, code?: { map: CodeMap; thread: number; compilePort?: MessagePort }) {
    this.threshold = Math.max(0, options.threshold ?? 200);
    this.batch = Math.max(1, options.batch ?? 32);
    this.patience = Math.max(1, options.patience ?? 16_384);
    this.code = code?.map ?? CodeMap.create(memory.size >>> 12, 1);
    this.thread = code?.thread ?? 0;
    this.layout = jitLayout(this.thread);
    this.concurrent = this.code.threads > 1;
    this.codePages = this.code.owners;
    this.announced = new Int32Array(memory.size >>> 12);
    this.pageInvalidations = new Uint8Array(memory.size >>> 12);
    this.inFlightPages = new Uint16Array(memory.size >>> 12);
    this.pageVersions = new Uint32Array(memory.buffer, this.layout.pageVersions, memory.size >>> 12);
    this.lookupTable = new Int32Array(memory.buffer, this.layout.lookup, LOOKUP_ENTRIES * 4);
    for (let i = 0; i < LOOKUP_ENTRIES; i++) this.lookupTable[4 * i + LookupField.RamOff] = -1;
    this.generations = new Int32Array(memory.buffer, this.layout.generations, MAX_SLOTS);
    this.memoryPages = memory.buffer.byteLength >>> 16;
    const dispatcher = new WebAssembly.Instance(new WebAssembly.Module(buildDispatcher(this.memoryPages, this.layout)),
      { env: { memory: memory.wasmMemory, table: this.table } });
    this.enter = dispatcher.exports.enter as (target: number, budget: number, stateBase: number) => number;
    this.env = {
      memory: memory.wasmMemory,
      interpret: (length: number): number => this.current!.compiledInterpret(length),
      chain: dispatcher.exports.chain,
      jump: dispatcher.exports.jump,
      chainCached: dispatcher.exports.chainCached,
    };
    this.chain = dispatcher.exports.chain;
    this.linker = {
      fetchRamOffset: (pcLo, pcHi) => this.current?.fetchRamOffset(pcLo, pcHi) ?? -1,
      compiled: (ramOff, pcLo, pcHi) => !!this.findKey(ramOff, pcLo, pcHi)?.block,
    };
    // With harts on several threads the devices run on another thread, which tells the owners of
    // pages it writes through the CodeMap.
    if (!code) memory.onDeviceWrite = (offset, length) => this.deviceWrote(offset, length);
    if ((options.background ?? true) && this.threshold > 0) {
      this.line = CompileLine.connect((result) => this.finish(result), () => this.lostWorker(), code?.compilePort);
    }
  }

  /** Lets go of the compile worker (the machine is done). */
  close(): void {
    this.line?.close();
    this.lostWorker();
  }

  attach(hart: JitHart): void { this.harts.push(hart); }

  /** The lookup Target of the compiled block for virtual pc (pcLo, pcHi) at RAM offset `ramOff`, or -1. */
  lookup(ramOff: number, pcLo: number, pcHi: number): number {
    const e = ((ramOff >>> 1) & LOOKUP_MASK) << 2, t = this.lookupTable;
    if (t[e] === ramOff && t[e + LookupField.PcLo] === pcLo && t[e + LookupField.PcHi] === pcHi) return t[e + LookupField.Target];
    // Compiled earlier but evicted from the table by a block that maps to the same entry.
    if (this.evictions[e >>> 2] !== 0) {
      const evicted = this.findKey(ramOff, pcLo, pcHi)?.block;
      if (evicted) { this.install(evicted); return evicted.key.slot; }
    }
    return this.threshold === 0 ? this.compileNow(ramOff, pcLo, pcHi) : -1;
  }

  /** Threshold 0: compiles the block at once (-1 when its first instruction is not translated). */
  private compileNow(ramOff: number, pcLo: number, pcHi: number): number {
    this.request(ramOff, pcLo, pcHi);
    this.compilePending();
    const e = ((ramOff >>> 1) & LOOKUP_MASK) << 2, t = this.lookupTable;
    if (t[e] === ramOff && t[e + LookupField.PcLo] === pcLo && t[e + LookupField.PcHi] === pcHi) return t[e + LookupField.Target];
    return -1;
  }

  /** The interpreter ran a block starting at (ramOff, pc): count it, compile when hot. */
  interpreted(ramOff: number, pcLo: number, pcHi: number): void {
    const i = (ramOff >>> 1) & LOOKUP_MASK;
    // Blocks that map to the same entry share its counter; a request that compiles nothing (a
    // first instruction left to the interpreter) is simply repeated a threshold later.
    if (++this.counters[i] >= this.threshold) {
      this.counters[i] = 0;
      this.request(ramOff, pcLo, pcHi);
    }
    if (this.pending.length > 0 && ++this.pendingAge >= this.patience) this.compilePending();
    if ((this.inFlight.size > 0 || this.waiting.length > 0) && (++this.polls & 31) === 0) this.poll();
  }

  /**
   * Takes what the compile worker sent (modules for this thread, and other threads' to adopt)
   * and compiles the waiting batches that settled. A thread that runs harts and never returns
   * to its event loop calls this between run slices.
   */
  poll(): void {
    this.line?.poll();
    this.compileSettled();
  }

  private request(ramOff: number, pcLo: number, pcHi: number): void {
    if (this.pageInvalidations[ramOff >>> 12] >= MAX_PAGE_INVALIDATIONS) return;
    if (this.pending.some((p) => p.ramOff === ramOff && p.pcLo === pcLo && p.pcHi === pcHi)) return;
    if (this.inFlightBlocks.size > 0 && this.inFlightBlocks.has(blockKey(ramOff, pcLo, pcHi))) return;
    this.pending.push({ ramOff, pcLo, pcHi });
    if (this.pending.length >= this.batch) this.compilePending();
  }

  /**
   * Compiles the pending hot blocks into one module (or has the compile worker do it). Their
   * pages are marked as code first; when other threads run harts and a page is new to this
   * thread, the blocks wait until those threads dropped write TLB entries for it (CodeMap).
   */
  compilePending(): void {
    const blocks = this.pending;
    this.pending = [];
    this.pendingAge = 0;
    if (blocks.length === 0) return;
    const pages = [...new Set(blocks.map((b) => b.ramOff >>> 12))];
    const fresh = pages.filter((page) => { this.inFlightPages[page]++; return this.watchPage(page); });
    if (fresh.length > 0 && this.code.threads > 1) {
      const epoch = this.code.announce();
      for (const page of fresh) this.announced[page] = epoch;
    }
    // A page announced for an earlier batch may not be acknowledged yet either.
    const batch: WaitingBatch = { blocks, pages, epoch: Math.max(0, ...pages.map((page) => this.announced[page])) };
    if (batch.epoch === 0 || this.code.settled(this.thread, batch.epoch)) this.compileBatch(batch);
    else if (this.threshold === 0) this.compileWhenSettled(batch);
    else this.waiting.push(batch);
  }

  /** Compiles the waiting batches whose epoch every other thread acknowledged. */
  private compileSettled(): void {
    if (this.waiting.length === 0) return;
    const ready = this.waiting.filter((b) => this.code.settled(this.thread, b.epoch));
    if (ready.length === 0) return;
    this.waiting = this.waiting.filter((b) => !ready.includes(b));
    for (const batch of ready) this.compileBatch(batch);
  }

  /** Threshold 0 must have the code now: waits (up to a second) for the other threads to acknowledge. */
  private compileWhenSettled(batch: WaitingBatch): void {
    const deadline = performance.now() + 1000;
    const nap = new Int32Array(new SharedArrayBuffer(4));
    while (!this.code.settled(this.thread, batch.epoch) && performance.now() < deadline) Atomics.wait(nap, 0, 0, 0.05);
    if (this.code.settled(this.thread, batch.epoch)) this.compileBatch(batch);
    else this.release(batch.pages);
  }

  /** Reads and compiles a batch whose pages no hart can write unseen. */
  private compileBatch(batch: WaitingBatch): void {
    // Stores other threads made to these pages since they became code are applied first, so the
    // versions taken below are those of the code read.
    this.drain();
    // Content versions before the code is read: a store after this moves them (see CodeMap).
    const versions: [number, number][] = batch.pages.map((page) => [page, this.code.version(page)]);
    const plans: BlockPlan[] = [];
    for (const p of batch.blocks) {
      const plan = scanBlock(this.memory.view, p.ramOff, p.pcLo, p.pcHi);
      if (plan) plans.push(plan);
    }
    const planned = new Set(plans.map((plan) => plan.ramOff >>> 12));
    if (plans.length > 0) this.compilePlans(plans, versions.filter(([page]) => planned.has(page)));
    this.release(batch.pages);
  }

  /** A batch's pages stop counting it; a page with nothing else on it stops being code. */
  private release(pages: number[]): void {
    for (const page of pages) {
      this.inFlightPages[page]--;
      if (this.inFlightPages[page] === 0 && !this.pageModules.has(page)) this.code.disown(this.thread, page);
    }
  }

  private compilePlans(plans: BlockPlan[], versions: [number, number][]): void {
    const started = performance.now();
    if (this.line) this.send(this.line, plans, versions); else this.compileHere(plans);
    this.stats.compileMs += performance.now() - started;
  }

  /** Translates, compiles and installs `plans` on this thread. */
  private compileHere(plans: BlockPlan[]): void {
    const translator = new ModuleTranslator(this.memoryPages, plans, this.linker, this.concurrent);
    this.instantiate(plans, new WebAssembly.Module(translator.translate()), translator.links);
  }

  /**
   * Hands the blocks to the compile worker. The link questions are answered now
   * (RecordingLinker); their pages count as code from now on, so a store to one bumps its
   * version and the module that comes back is not used.
   */
  private send(line: CompileLine, plans: BlockPlan[], versions: [number, number][]): void {
    const recorder = new RecordingLinker(this.linker);
    new ModuleTranslator(this.memoryPages, plans, recorder, this.concurrent).link();
    const pages = new Map<number, number>();
    for (const plan of plans) {
      const page = plan.ramOff >>> 12;
      if (!pages.has(page)) {
        pages.set(page, this.pageVersions[page]);
        this.inFlightPages[page]++;
        this.watchPage(page);
      }
      this.inFlightBlocks.add(blockKey(plan.ramOff, plan.pcLo, plan.pcHi));
    }
    const id = this.nextJobId++;
    this.inFlight.set(id, { plans, pages });
    line.send({ id, memoryPages: this.memoryPages, concurrent: this.concurrent, plans, links: recorder.answers, versions });
  }

  /** A module came back from the compile worker: installs it unless its code changed meanwhile. */
  private finish(result: CompileResult): void {
    if (result.shared) { this.adopt(result.shared); return; }
    const job = this.inFlight.get(result.id);
    if (!job) return;
    this.drain(); // stores from other threads bump the versions checked below
    this.settle(result.id, job);
    const started = performance.now();
    const current = [...job.pages].every(([page, version]) => this.pageVersions[page] === version);
    if (!current) this.stats.discardedModules++;
    else if (result.error === undefined) this.instantiate(job.plans, result.module, result.links);
    else {
      this.stats.workerErrors++;
      this.compileHere(job.plans);
    }
    this.stats.compileMs += performance.now() - started;
  }

  /** Job `id` is over: its blocks may be requested again, its pages stop counting it. */
  private settle(id: number, job: InFlightJob): void {
    this.inFlight.delete(id);
    for (const plan of job.plans) this.inFlightBlocks.delete(blockKey(plan.ramOff, plan.pcLo, plan.pcHi));
    for (const page of job.pages.keys()) {
      this.inFlightPages[page]--;
      if (this.inFlightPages[page] === 0 && !this.pageModules.has(page)) this.code.disown(this.thread, page);
    }
  }

  /** The compile worker is gone (or let go): compile here from now on; what it had is dropped. */
  private lostWorker(): void {
    this.line = null;
    for (const [id, job] of [...this.inFlight]) this.settle(id, job);
  }

  /**
   * A module compiled for another thread of the VM (the compile worker offers each; see
   * background.ts): installs its blocks here too, unless all of them are compiled here already
   * or its code may have changed since it was read. This thread owns the pages first, then
   * compares their content versions (see CodeMap): equal versions mean they stayed watched and
   * unwritten, so no store since is unseen.
   */
  adopt(shared: SharedModule): void {
    if (shared.blocks.every((b) => this.findKey(b.ramOff, b.pcLo, b.pcHi)?.block)) return;
    const pages = shared.versions.map(([page]) => page);
    for (const page of pages) { this.inFlightPages[page]++; this.watchPage(page); }
    const started = performance.now();
    if (shared.versions.every(([page, version]) => this.code.version(page) === version)) {
      this.instantiate(shared.blocks, shared.module, shared.links);
      this.stats.adoptedModules++;
    } else this.stats.declinedModules++;
    this.stats.compileMs += performance.now() - started;
    this.release(pages);
  }

  /**
   * Instantiates a module of `blocks` with this thread's values for what it links to (see
   * ModuleLinks) and installs its blocks.
   */
  private instantiate(blocks: readonly BlockRef[], compiled: WebAssembly.Module, links: ModuleLinks): void {
    // Slots (and their generations) must not run out mid-module.
    if (this.keyCount + blocks.length + links.slots.length + links.targets.length > MAX_SLOTS) this.reset();
    const env = { ...this.env };
    links.slots.forEach((b, i) => { env[`s${i}`] = this.key(b.ramOff, b.pcLo, b.pcHi).slot; });
    links.targets.forEach((b, i) => {
      const key = this.key(b.ramOff, b.pcLo, b.pcHi), generation = this.generations[key.slot];
      env[`t${i}`] = key.block ? this.table.get(key.slot) as WebAssembly.ExportValue : this.chain;
      env[`ga${i}`] = this.layout.generations + 4 * key.slot;
      // A target not compiled here is never called directly: a generation its slot cannot have yet.
      env[`gv${i}`] = key.block ? generation : (generation - 1) | 0;
    });
    links.pages.forEach((page, i) => {
      env[`pa${i}`] = this.layout.pageVersions + 4 * page;
      env[`pv${i}`] = this.pageVersions[page];
    });
    const instance = new WebAssembly.Instance(compiled, { env });
    const module: CompiledModule = { blocks: [], live: blocks.length };
    blocks.forEach((b, index) => {
      const key = this.key(b.ramOff, b.pcLo, b.pcHi);
      this.setSlot(key.slot, instance.exports[`b${index}`]);
      const block: CompiledBlock = { key, module };
      key.block = block;
      module.blocks.push(block);
      this.install(block);
      this.markCode(b.ramOff >>> 12, module);
    });
    this.stats.blocks += blocks.length;
    this.stats.modules++;
  }

  private install(block: CompiledBlock): void {
    const { ramOff, pcLo, pcHi, slot } = block.key;
    const i = (ramOff >>> 1) & LOOKUP_MASK, e = i << 2, t = this.lookupTable;
    t[e + LookupField.RamOff] = ramOff;
    t[e + LookupField.PcLo] = pcLo;
    t[e + LookupField.PcHi] = pcHi;
    t[e + LookupField.Target] = slot;
    if (this.entryBlocks[i] !== null && this.entryBlocks[i] !== block) this.evictions[i] = 1;
    this.entryBlocks[i] = block;
    this.counters[i] = 0;
  }

  private findKey(ramOff: number, pcLo: number, pcHi: number): BlockKey | undefined {
    return this.keys.get(ramOff)?.find((k) => k.pcLo === pcLo && k.pcHi === pcHi);
  }

  /** The key of the block at (ramOff, pc), made (with a new table slot holding `chain`) if needed. */
  private key(ramOff: number, pcLo: number, pcHi: number): BlockKey {
    const found = this.findKey(ramOff, pcLo, pcHi);
    if (found) return found;
    const key: BlockKey = { ramOff, pcLo, pcHi, slot: this.keyCount++, block: null };
    if (key.slot >= this.table.length) this.table.grow(this.table.length);
    this.setSlot(key.slot, this.chain);
    const list = this.keys.get(ramOff);
    if (list) list.push(key); else this.keys.set(ramOff, [key]);
    return key;
  }

  /** Puts `fn` in table slot `slot`, with a new generation (which stops direct calls to what it held). */
  private setSlot(slot: number, fn: WebAssembly.ExportValue): void {
    this.table.set(slot, fn);
    this.generations[slot]++;
  }

  /**
   * Drops every translation and key, so table slots can be handed out from 0 again: no compiled
   * code is running (this is called between blocks) and none that is left can be reached.
   */
  private reset(): void {
    for (const page of [...this.pageModules.keys()]) this.dropBlocks(page);
    this.keys = new Map();
    this.keyCount = 0;
    // Jump caches name slots, which are about to mean other blocks: a new fetch epoch empties them.
    for (const h of this.harts) h.newFetchEpoch();
  }

  private markCode(page: number, module: CompiledModule): void {
    let set = this.pageModules.get(page);
    if (!set) { set = new Set(); this.pageModules.set(page, set); }
    set.add(module);
    this.watchPage(page);
  }

  /**
   * Makes every CPU store to RAM page `page` take the slow path (which calls invalidatePage):
   * this thread's harts at once; true when the page is new to this thread, whose harts on other
   * threads drop their entries when they acknowledge the epoch (see compilePending).
   */
  private watchPage(page: number): boolean {
    if (!this.code.own(this.thread, page)) return false;
    for (const h of this.harts) h.forgetWritablePage(page << 12);
    return true;
  }

  /**
   * A CPU store by a hart of this thread reached RAM page `page`, which holds translated code:
   * drop this thread's translations there and tell the other threads that hold some.
   */
  invalidatePage(page: number): void {
    if (this.code.threads > 1) this.code.written(page, this.thread);
    if (!this.code.owns(this.thread, page)) return;
    this.dropPage(page);
    if (this.pageInvalidations[page] < 255) this.pageInvalidations[page]++;
  }

  /**
   * Drops the translations of pages that harts of other threads or devices wrote since the last
   * call (CodeMap.written): between run slices, at FENCE.I and remote fences, and before a
   * module is installed.
   */
  drain(): void {
    if (this.code.threads > 1) this.code.drain(this.thread, (page) => { if (this.code.owns(this.thread, page)) this.dropPage(page); });
  }

  /** A device may write RAM [offset, offset + length): drop translations of code there. */
  private deviceWrote(offset: number, length: number): void {
    const last = (offset + length - 1) >>> 12;
    for (let page = offset >>> 12; page <= last; page++) if (this.codePages[page] !== 0) this.dropPage(page);
  }

  private dropPage(page: number): void {
    this.dropBlocks(page);
    if (this.inFlightPages[page] === 0) this.code.disown(this.thread, page);
    this.pageVersions[page]++;
  }

  /**
   * Drops the blocks on RAM page `page` from every table; the other blocks of their modules
   * stay (where those call them directly, they check the page's version first).
   */
  private dropBlocks(page: number): void {
    const set = this.pageModules.get(page);
    if (!set) return;
    this.pageModules.delete(page);
    // (A page with blocks on the compile worker stays watched: a store must bump its version.)
    if (this.inFlightPages[page] === 0) this.code.disown(this.thread, page);
    for (const module of set) {
      for (const b of module.blocks) {
        const { key } = b;
        if (key.block !== b || (key.ramOff >>> 12) !== page) continue;
        const i = (key.ramOff >>> 1) & LOOKUP_MASK;
        if (this.entryBlocks[i] === b) {
          this.lookupTable[(i << 2) + LookupField.RamOff] = -1;
          this.entryBlocks[i] = null;
          this.counters[i] = 0;
        }
        key.block = null;
        this.setSlot(key.slot, this.chain);
        this.stats.invalidatedBlocks++;
        if (--module.live === 0) this.stats.invalidatedModules++;
      }
    }
  }
}
