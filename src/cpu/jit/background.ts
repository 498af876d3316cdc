/**
 * Compiling on another thread: a JIT sends batches of hot blocks, with the link answers it
 * recorded (links.ts), to one compile worker per process (compile-worker.ts) and gets
 * WebAssembly.Modules back, so translation and V8's compile do not stop the harts.
 */
import { setFlagsFromString } from 'node:v8';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { lowerOtherThreads } from '../../hw/host-threads.js';
import type { BlockPlan } from './block.js';
import type { JitLayout } from './dispatcher.js';
import type { LinkAnswers } from './links.js';

export interface CompileJob {
  readonly id: number;
  readonly memoryPages: number;
  readonly layout: JitLayout;
  /** Harts on other threads share the memory (ModuleTranslator). */
  readonly concurrent: boolean;
  readonly plans: BlockPlan[];
  readonly links: LinkAnswers;
}

export type CompileResult =
  | { readonly id: number; readonly module: WebAssembly.Module; readonly importedSlots: number[]; readonly error?: undefined }
  | { readonly id: number; readonly error: string; readonly module?: undefined };

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
    worker = new Worker(new URL('./compile-worker.js', import.meta.url));
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

/** A port to the process's compile worker for a JIT on another thread (CompileLine.connect), or null. */
export function openCompilePort(): MessagePort | null {
  const w = compileWorker();
  if (!w) return null;
  const { port1, port2 } = new MessageChannel();
  w.postMessage({ port: port2 }, [port2]);
  return port1;
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
   * `port`: a line made on another thread with openCompilePort (a hart's worker thread uses the
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
    const { port1, port2 } = new MessageChannel();
    w.postMessage({ port: port2 }, [port2]);
    return new CompileLine(port1, onResult, onFailure);
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
