/**
 * The main thread's side of harts on threads of their own (Machine with `threads: 'per-hart'`):
 * starts one worker per hart (hart-thread.ts), answers their mailboxes (device registers, the
 * machine's end) from the event loop, and pauses, resumes and stops them.
 *
 * Device emulation stays on this thread, one mailbox call at a time: the event loop is the big
 * lock (as QEMU's iothread lock), so devices need no locking of their own; a hart that waits for
 * a device waits only for that call, the other harts run on.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { Hart } from '../cpu/hart.js';
import { restoreHart, saveHart } from '../cpu/hart-snapshot.js';
import type { CodeMap } from '../cpu/jit/code-map.js';
import { openCompilePorts } from '../cpu/jit/background.js';
import type { JitOptions, JitStats } from '../cpu/jit/jit.js';
import type { AccessWidth } from '../devices/mmio.js';
import type { Bus } from '../hw/bus.js';
import type { GuestMemory } from '../hw/memory.js';
import type { VirtualClock } from './clock.js';
import { HartControl, HartWord, MachineWord, MailOp, MailState, RunState } from './hart-control.js';
import type { HartThreadData } from './hart-thread.js';
import { unhandledTrapMessage } from './sbi.js';

export interface HartThreadsOptions {
  harts: Hart[];
  control: HartControl;
  memory: GuestMemory;
  bus: Bus;
  clock: VirtualClock;
  code: CodeMap;
  jit: JitOptions | false;
  hostFirmware: boolean;
  quantum: number;
  /** After every device access (console flush, CLINT update). */
  onDeviceAccess: () => void;
  consoleWrite: (bytes: Uint8Array) => void;
  systemReset: (type: number, reason: number) => void;
  /** A hart's thread failed or a trap reached M-mode: the machine must stop with this message. */
  fail: (message: string) => void;
}

/** How long pause and stop wait for a hart thread to answer (a hart in a device call answers when it returns). */
const HART_STOP_MS = 10_000;
/**
 * V8's young generation of a hart thread's heap. V8's default (48 MB, sized for the main thread)
 * held ~18 MB more per hart thread in a 4-hart boot; 4 MB held less still but made 2-hart boots
 * ~10% slower in two of three A/Bs (hart 0's thread allocates through the boot: the JIT's
 * tables and instances), 8 and 16 MB were within the noise (docs/PERFORMANCE.md).
 */
const HART_YOUNG_GENERATION_MB = 8;

type WaitAsync = (a: Int32Array, i: number, v: number) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

export class HartThreads {
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  private ended = false;
  /** Hart threads that have not exited. */
  private alive = 0;
  private readonly exited: Promise<void>[] = [];

  constructor(private readonly o: HartThreadsOptions) {}

  /** Each thread's JIT statistics as of the last pause or stop (null before, or without a JIT). */
  readonly jitStats: (JitStats | null)[] = [];

  /** The worker thread of hart `id` (after start()), for diagnostics and tests. */
  worker(id: number): Worker { return this.workers[id]; }

  /** Starts a thread per hart, each from its hart's state on this thread. */
  start(): void {
    const { control, memory } = this.o;
    control.setRun(RunState.Running);
    // One group of lines to the compile worker: the threads share what it compiles for each.
    const compilePorts = this.o.jit === false ? null : openCompilePorts(this.o.harts.length);
    for (const [i, hart] of this.o.harts.entries()) {
      const { port1, port2 } = new MessageChannel();
      const compilePort = compilePorts?.[i] ?? null;
      port1.postMessage(saveHart(hart));
      const data: HartThreadData = {
        id: hart.id, harts: this.o.harts.length, memory: memory.wasmMemory, ramBase: memory.base, ramSize: memory.size,
        control: control.shared, clock: this.o.clock.shared, code: this.o.code.shared, compilePort,
        jit: this.o.jit, hostFirmware: this.o.hostFirmware, devices: this.o.bus.deviceRanges, states: port2, quantum: this.o.quantum,
      };
      const transfer: MessagePort[] = [port2];
      if (compilePort) transfer.push(compilePort);
      const worker = new Worker(new URL('./hart-thread.js', import.meta.url), { workerData: data, transferList: transfer, name: `hart ${hart.id}`, resourceLimits: { maxYoungGenerationSizeMb: HART_YOUNG_GENERATION_MB } });
      port1.on('message', (m: unknown) => {
        if (typeof m === 'object' && m !== null && 'console' in m) this.o.consoleWrite((m as { console: Uint8Array }).console);
      });
      this.exited.push(new Promise<void>((resolve) => {
        worker.on('error', (e) => { if (!this.ended) this.o.fail(`hart ${hart.id}'s thread failed: ${e instanceof Error ? e.message : String(e)}`); });
        worker.on('exit', (code) => {
          this.alive--;
          if (!this.ended) this.o.fail(`hart ${hart.id}'s thread ended (exit code ${code}) while the machine ran`);
          resolve();
        });
      }));
      this.workers.push(worker);
      this.alive++;
      this.ports.push(port1);
      void this.serve(hart.id);
    }
  }

  /** Answers hart `id`'s mailbox whenever it holds a request, until the machine ends. */
  private async serve(id: number): Promise<void> {
    const words = this.o.control.words, box = this.o.control.at(id, HartWord.Mail);
    while (!this.ended) {
      if (Atomics.load(words, box) === MailState.Request) { this.answer(id); continue; }
      const r = waitAsync(words, box, MailState.Idle);
      if (r.async) await r.value;
    }
  }

  private answer(id: number): void {
    const { control, bus } = this.o, words = control.words;
    const arg = (w: HartWord): number => words[control.at(id, w)];
    const op = arg(HartWord.MailOp), a = arg(HartWord.MailA), b = arg(HartWord.MailB), c = arg(HartWord.MailC), d = arg(HartWord.MailD);
    let result = 0;
    try {
      switch (op) {
        case MailOp.Load: {
          const v = bus.loadMmio((a >>> 0) + b * 2 ** 32, c as AccessWidth);
          result = v ?? 0;
          words[control.at(id, HartWord.MailD)] = v === undefined ? 1 : 0;
          break;
        }
        case MailOp.Store: result = bus.storeMmio((a >>> 0) + b * 2 ** 32, c as AccessWidth, d) ? 1 : 0; break;
        case MailOp.SystemReset: this.o.systemReset(a, b); break;
        case MailOp.MachineTrap:
          this.o.fail(unhandledTrapMessage(id, a, b === 1, BigInt.asUintN(64, (BigInt(d) << 32n) | BigInt(c >>> 0))));
          break;
        default: this.o.fail(`hart ${id} made an unknown call ${op} to the main thread`);
      }
    } finally {
      words[control.at(id, HartWord.MailResult)] = result;
      Atomics.store(words, control.at(id, HartWord.Mail), MailState.Idle);
      Atomics.notify(words, control.at(id, HartWord.Mail));
    }
    this.o.onDeviceAccess();
  }

  /** Answers every mailbox holding a request now (while this thread blocks for the harts). */
  private answerWaiting(): void {
    for (let id = 0; id < this.o.harts.length; id++) {
      if (Atomics.load(this.o.control.words, this.o.control.at(id, HartWord.Mail)) === MailState.Request) this.answer(id);
    }
  }

  /**
   * Waits (blocking this thread, answering mailboxes meanwhile) until every live hart thread
   * counted itself in `word` (Parked or Ended), then takes their states into the harts of this
   * thread. A thread that does not answer within HART_STOP_MS is given up on.
   */
  private awaitThreads(word: MachineWord): void {
    const { control } = this.o, at = control.machineAt(word);
    const deadline = performance.now() + HART_STOP_MS;
    for (;;) {
      this.answerWaiting();
      const n = Atomics.load(control.words, at);
      if (n >= this.alive || performance.now() > deadline) break;
      Atomics.wait(control.words, at, n, 1);
    }
    this.ports.forEach((port, i) => {
      for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
        const msg = m.message as unknown;
        if (typeof msg === 'object' && msg !== null && 'console' in msg) this.o.consoleWrite((msg as { console: Uint8Array }).console);
        else if (typeof msg === 'object' && msg !== null && 'jitStats' in msg) this.jitStats[i] = (msg as { jitStats: JitStats }).jitStats;
        else restoreHart(this.o.harts[i], msg);
      }
    });
  }

  /** Stops every hart at an instruction boundary; their states are then in the harts of this thread. */
  pause(): void {
    Atomics.store(this.o.control.words, this.o.control.machineAt(MachineWord.Parked), 0);
    this.o.control.setRun(RunState.Paused);
    this.awaitThreads(MachineWord.Parked);
  }

  /** Continues from the harts' states on this thread (a snapshot may have replaced them). */
  resume(): void {
    this.o.harts.forEach((hart, i) => this.ports[i].postMessage(saveHart(hart)));
    this.o.control.setRun(RunState.Running);
  }

  /**
   * Ends every hart thread; their last states are then in the harts of this thread. Not from
   * inside a mailbox answer (the asking hart waits for it): Machine.stop() only sets the run
   * state, and its run() calls this.
   */
  async stop(): Promise<void> {
    if (this.ended) return;
    this.o.control.setRun(RunState.Stopped);
    this.awaitThreads(MachineWord.Ended);
    this.ended = true;
    for (let id = 0; id < this.o.harts.length; id++) Atomics.notify(this.o.control.words, this.o.control.at(id, HartWord.Mail));
    await Promise.race([Promise.all(this.exited), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    await Promise.all(this.workers.map((w) => w.terminate()));
    for (const port of this.ports) port.close();
  }
}
