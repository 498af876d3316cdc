/**
 * The JIT's compile thread: translates batches of hot blocks to WebAssembly and compiles the
 * module, off the thread the harts run on (background.ts sends the jobs). Each JIT attaches a
 * MessagePort of its own; jobs and results travel on it. The JITs of one VM's hart threads form
 * a group: a module compiled for one is offered to the others too (translations name nothing of
 * one thread's tables: translate.ts ModuleLinks), so the VM compiles its code once.
 */
import { parentPort, type MessagePort } from 'node:worker_threads';
import type { CompileJob, CompileResult, LineAttach } from './background.js';
import { ReplayLinker } from './links.js';
import { ModuleTranslator } from './translate.js';

function compile(job: CompileJob): CompileResult {
  try {
    const translator = new ModuleTranslator(job.memoryPages, job.plans, new ReplayLinker(job.links), job.concurrent);
    const module = new WebAssembly.Module(translator.translate());
    return { id: job.id, module, links: translator.links };
  } catch (e) {
    return { id: job.id, error: e instanceof Error ? e.message : String(e) };
  }
}

const groups = new Map<number, Set<MessagePort>>();

parentPort?.on('message', ({ port, group }: LineAttach) => {
  let members = groups.get(group);
  if (!members) groups.set(group, members = new Set());
  members.add(port);
  port.on('close', () => {
    members.delete(port);
    if (members.size === 0) groups.delete(group);
  });
  port.on('message', (job: CompileJob) => {
    const result = compile(job);
    port.postMessage(result);
    if (result.shared || result.error !== undefined) return;
    const blocks = job.plans.map(({ ramOff, pcLo, pcHi }) => ({ ramOff, pcLo, pcHi }));
    const offer: CompileResult = { shared: { module: result.module, blocks, links: result.links, versions: job.versions } };
    for (const other of members) if (other !== port) other.postMessage(offer);
  });
});
