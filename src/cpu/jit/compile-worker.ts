/**
 * The JIT's compile thread: translates batches of hot blocks to WebAssembly and compiles the
 * module, off the thread the harts run on (background.ts sends the jobs). Each JIT attaches a
 * MessagePort of its own; jobs and results travel on it.
 */
import { parentPort, type MessagePort } from 'node:worker_threads';
import type { CompileJob, CompileResult } from './background.js';
import { ReplayLinker } from './links.js';
import { ModuleTranslator } from './translate.js';

function compile(job: CompileJob): CompileResult {
  try {
    const translator = new ModuleTranslator(job.memoryPages, job.layout, job.plans, new ReplayLinker(job.links), job.concurrent);
    const module = new WebAssembly.Module(translator.translate());
    return { id: job.id, module, importedSlots: translator.importedSlots };
  } catch (e) {
    return { id: job.id, error: e instanceof Error ? e.message : String(e) };
  }
}

parentPort?.on('message', ({ port }: { port: MessagePort }) => {
  port.on('message', (job: CompileJob) => port.postMessage(compile(job)));
});
