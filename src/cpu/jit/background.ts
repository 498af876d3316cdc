/**
 * Compiling on another thread: a JIT sends batches of hot blocks, with the link answers it
 * recorded (links.ts), to one compile worker per process (compile-worker.ts) and gets
 * WebAssembly.Modules back, so translation and V8's compile do not stop the harts.
 */
import { setFlagsFromString } from 'node:v8';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { lowerOtherThreads } from '../../hw/host-threads.js';
import type { BlockPlan } from './block.js';
import type { LinkAnswers } from './links.js';
import type { BlockRef, ModuleLinks } from './translate.js';

export interface CompileJob {
  readonly id: number;
  readonly memoryPages: number;
  /** Harts on other threads share the memory (ModuleTranslator). */
  readonly concurrent: boolean;
  readonly plans: BlockPlan[];
  readonly links: LinkAnswers;
  /** The CodeMap content version of each page of the blocks, read before their code was. */
  readonly versions: [page: number, version: number][];
}

/** A module compiled for another thread of the same VM, offered to this one (Jit.adopt). */
export interface SharedModule {
  readonly module: WebAssembly.Module;
  /** Its blocks, in export order (b<i>): only where they start, the cheapest to clone. */
  readonly blocks: BlockRef[];
  readonly links: ModuleLinks;
  readonly versions: [page: number, version: number][];
}

export type CompileResult =
  | { readonly id: number; readonly module: WebAssembly.Module; readonly links: ModuleLinks; readonly error?: undefined; readonly shared?: undefined }
  | { readonly id: number; readonly error: string; readonly module?: undefined; readonly shared?: undefined }
  | { readonly shared: SharedModule; readonly id?: undefined };

/** What the compile worker is sent to attach a line: the lines of one group (a VM's hart threads) share their modules. */
export interface LineAttach { readonly port: MessagePort; readonly group: number }

/**
 * V8's young generation of the compile worker's heap: a translation's garbage dies young and
 * little survives, so a small one costs no time and V8's default (48 MB) only held RSS
 * (docs/PERFORMANCE.md, "Compiled once per VM").
 */
const COMPILER_YOUNG_GENERATION_MB = 8;

/** The process's compile worker: undefined until first asked for, null once it failed. */
let worker: Worker | null | undefined;
const lines = new Set<CompileLine>();

function compileWorker(): Worker | null {
  if (worker !== undefined) return worker;
  // V8's background threads exist by now, the worker's does not: only they go below the harts.
  lowerOtherThreads();
  // Compile every function of a module when the worker builds it, not each one lazily on the
  // harts' thread at its first call (V8's default; ~0.4 s of a boot there). The flag is the
  // process's, so it takes effect with the worker.
  setFlagsFromString('--no-wasm-lazy-compilation');
  try {
    worker = new Worker(new URL('./compile-worker.js', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: COMPILER_YOUNG_GENERATION_MB } });
  } catch {
    worker = null;
    return null;
  }
  worker.unref(); // the harts' work keeps the process alive, not the compiler
  worker.on('error', (e) => {
    worker = null;
    for (const line of [...lines]) line.fail(e instanceof Error ? e : new Error(String(e)));
  });
  return worker;
}

let groups = 0;

/** A port to the compile worker for a line in `group`; the worker gets the other end. */
function attach(w: Worker, group: number): MessagePort {
  const { port1, port2 } = new MessageChannel();
  const message: LineAttach = { port: port2, group };
  w.postMessage(message, [port2]);
  return port1;
}

/**
 * Ports to the process's compile worker for `count` JITs on other threads (CompileLine.connect)
 * that run one VM's harts: a module compiled for one of them is offered to the others. Null
 * when no worker thread can be started.
 */
export function openCompilePorts(count: number): MessagePort[] | null {
  const w = compileWorker();
  if (!w) return null;
  const group = ++groups;
  return Array.from({ length: count }, () => attach(w, group));
}

/** One JIT's connection to the compile worker. */
export class CompileLine {
  private open = true;

  private constructor(private readonly port: MessagePort, private readonly onResult: (result: CompileResult) => void,
    private readonly onFailure: (error: Error) => void) {
    port.on('message', (result: CompileResult) => this.deliver(result));
    port.unref();
    lines.add(this);
  }

  /**
   * A line to the process's compile worker, or null when no worker thread can be started.
   * `port`: a line made on another thread with openCompilePorts (a hart's worker thread uses the
   * compile worker of the VM's main thread, so the VM has one).
   */
  static connect(onResult: (result: CompileResult) => void, onFailure: (error: Error) => void, port?: MessagePort): CompileLine | null {
    if (port) {
      const line = new CompileLine(port, onResult, onFailure);
      port.on('close', () => line.fail(new Error('the compile worker is gone')));
      return line;
    }
    const w = compileWorker();
    if (!w) return null;
    return new CompileLine(attach(w, ++groups), onResult, onFailure);
  }

  send(job: CompileJob): void { this.port.postMessage(job); }

  /** Delivers the results that have arrived, without waiting for the event loop to turn. */
  poll(): void {
    for (let m = receiveMessageOnPort(this.port); m && this.open; m = receiveMessageOnPort(this.port)) this.deliver(m.message as CompileResult);
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    lines.delete(this);
    this.port.close();
  }

  /** The worker died: nothing sent will come back. */
  fail(error: Error): void {
    this.close();
    this.onFailure(error);
  }

  private deliver(result: CompileResult): void {
    if (this.open) this.onResult(result);
  }
}
