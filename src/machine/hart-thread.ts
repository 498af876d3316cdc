/**
 * One hart on a host thread of its own (a worker_threads worker; hart-threads.ts starts them).
 * It runs the hart, with a JIT of its own (its own tables, the VM's compile worker and CodeMap),
 * on the VM's shared guest memory; SBI calls are served here; device registers and the end of
 * the machine go to the main thread through the hart's mailbox (hart-control.ts), one call at a
 * time, the main thread's event loop playing QEMU's "big lock"; the SBI debug console's output
 * goes by the hart's states port.
 *
 * Between run slices, and before it runs again after a sleep, the thread applies what other
 * threads asked of it: interrupt wires, IPIs, HSM starts, remote fences, stores to translated
 * code (CodeMap.drain) and new code pages (CodeMap epochs).
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { Irq } from '../cpu/csr.js';
import { Hart } from '../cpu/hart.js';
import { restoreHart, saveHart } from '../cpu/hart-snapshot.js';
import { CodeMap, type CodeMapShared } from '../cpu/jit/code-map.js';
import { Jit, type JitOptions } from '../cpu/jit/jit.js';
import type { AccessWidth } from '../devices/mmio.js';
import type { HartBus } from '../hw/bus.js';
import { nameThisThread } from '../hw/host-threads.js';
import { GuestMemory } from '../hw/memory.js';
import { TIMEBASE_FREQUENCY, VirtualClock } from './clock.js';
import { HARDWARE_LINES, HARDWARE_WIRES, HartControl, HartWord, MachineWord, MailOp, MailState, RunState } from './hart-control.js';
import { HartState, Sbi, SbiError } from './sbi.js';

export interface HartThreadData {
  id: number;
  harts: number;
  memory: WebAssembly.Memory;
  ramBase: number;
  ramSize: number;
  control: SharedArrayBuffer;
  clock: SharedArrayBuffer;
  code: CodeMapShared;
  /** A line to the VM's compile worker, or null to compile on this thread. */
  compilePort: MessagePort | null;
  jit: JitOptions | false;
  /** Linux boot: SBI is served here and a trap into M-mode ends the machine. */
  hostFirmware: boolean;
  /** Where devices answer (the main thread's bus). */
  devices: { base: number; end: number }[];
  /**
   * Hart states (hart-snapshot.ts), both ways: the main thread sends one before the hart first
   * runs and at every resume; this thread sends one at every pause and when it ends. Console
   * output of the SBI debug console goes this way too, as { console: Uint8Array }.
   */
  states: MessagePort;
  quantum: number;
}

/** The longest a sleeping hart goes without looking at its words (a guard, as in Machine). */
const MAX_SLEEP_MS = 1000;
const TICKS_PER_MS = TIMEBASE_FREQUENCY / 1000;
/** How long a spinning hart's thread sleeps when it yields (Hart.yielding): long enough for the kernel to run another thread. */
const SPIN_NAP_MS = 0.05;

const data = workerData as HartThreadData;
const self = data.id;
const control = new HartControl(data.control, data.harts);
const words = control.words;
const code = new CodeMap(data.code);
const clock = VirtualClock.attach(data.clock);

const box = control.at(self, HartWord.Mail);

/** Waits until the main thread took the last request (a posted store may still be in it). */
function awaitMailbox(): void {
  while (Atomics.load(words, box) === MailState.Request) Atomics.wait(words, box, MailState.Request);
}

/**
 * Puts a request in the mailbox without waiting for the answer: the main thread answers one
 * request at a time, so a later call from this hart sees the device after it.
 */
function post(op: MailOp, a: number, b: number, c: number, d: number): void {
  awaitMailbox();
  words[control.at(self, HartWord.MailOp)] = op;
  words[control.at(self, HartWord.MailA)] = a;
  words[control.at(self, HartWord.MailB)] = b;
  words[control.at(self, HartWord.MailC)] = c;
  words[control.at(self, HartWord.MailD)] = d;
  Atomics.store(words, box, MailState.Request);
  Atomics.notify(words, box);
}

/** Calls into the main thread: the request, then sleep until it answers (Idle). */
function mail(op: MailOp, a: number, b: number, c: number, d: number): number {
  post(op, a, b, c, d);
  awaitMailbox();
  return Atomics.load(words, control.at(self, HartWord.MailResult));
}

/** The bus as a hart on this thread sees it: RAM here, device registers on the main thread. */
class RemoteBus implements HartBus {
  constructor(readonly ram: GuestMemory, private readonly devices: { base: number; end: number }[]) {}

  isMmio(pa: number, width: number): boolean {
    return this.devices.some((d) => pa >= d.base && pa + width <= d.end);
  }

  loadMmio(pa: number, width: AccessWidth): number | undefined {
    if (!this.isMmio(pa, width)) return undefined;
    const v = mail(MailOp.Load, pa >>> 0, Math.floor(pa / 2 ** 32), width, 0);
    // The device may have moved a wire: a PLIC claim lowers the external interrupt. Seen only
    // at the next run slice, the hart would take the stale interrupt again and again, each time
    // claiming nothing (Linux's handler returns when a claim reads 0): 15-20 empty claims, each
    // a round trip to the main thread, for every interrupt an idle guest took.
    applyWires();
    return Atomics.load(words, control.at(self, HartWord.MailD)) === 1 ? undefined : v;
  }

  /**
   * A posted write: a device answers there (isMmio), so the store cannot fault, and the hart
   * goes on while the main thread runs the device (a virtio notify that does disk I/O does not
   * stop the hart); its next device access waits for this one.
   */
  storeMmio(pa: number, width: AccessWidth, value: number): boolean {
    if (!this.isMmio(pa, width)) return false;
    post(MailOp.Store, pa >>> 0, Math.floor(pa / 2 ** 32), width, value);
    return true;
  }
}

const memory = new GuestMemory(data.ramBase, data.ramSize, data.memory);
const jit = data.jit === false ? undefined
  : new Jit(memory, data.jit, { map: code, thread: self, compilePort: data.compilePort ?? undefined });
const sbi = new Sbi({
  hartCount: data.harts,
  hartState: (id) => control.get(id, HartWord.Hsm),
  startHart: (id, addr, opaque) => {
    if (id >= control.allotted) return SbiError.Failed;
    control.starts[2 * id] = BigInt.asIntN(64, addr);
    control.starts[2 * id + 1] = BigInt.asIntN(64, opaque);
    const started = Atomics.compareExchange(words, control.at(id, HartWord.Hsm), HartState.Stopped, HartState.StartPending) === HartState.Stopped;
    if (!started) return SbiError.AlreadyAvailable;
    control.wake(id);
    return SbiError.Success;
  },
  stopHart: (id) => { control.set(id, HartWord.Hsm, HartState.Stopped); hart.waiting = true; },
  sendIpi: (id) => {
    if (id === self) { hart.raiseSoftwareInterrupt(Irq.SSI); return; }
    Atomics.or(words, control.at(id, HartWord.SoftIrq), 1 << Irq.SSI);
    control.wake(id);
  },
  remoteFence: (ids) => remoteFence(ids),
  systemReset: (type, reason) => { mail(MailOp.SystemReset, type, reason, 0, 0); hart.waiting = true; },
  consoleWrite: (bytes) => data.states.postMessage({ console: bytes }),
  consoleRead: () => new Uint8Array(0),
  readPhys: (addr, len) => memory.slice(addr, len),
  writePhys: (addr, bytes) => memory.write(addr, bytes),
});
const hart = new Hart(self, new RemoteBus(memory, data.devices), {
  now: () => clock.now(),
  timebaseHz: TIMEBASE_FREQUENCY,
  concurrent: true,
  supervisorEcall: data.hostFirmware ? (h: Hart) => sbi.handle(h) : undefined,
  machineTrap: data.hostFirmware ? (h: Hart, cause: number, interrupt: boolean) => {
    mail(MailOp.MachineTrap, cause, interrupt ? 1 : 0, h.pcLo, h.pcHi);
    h.waiting = true;
  } : undefined,
}, jit);

/** Remote fences this hart has completed (FenceAck). */
let fencesDone = control.get(self, HartWord.FenceAck);

/**
 * SBI remote fence: this hart's at once; every other target's before returning, unless it is
 * asleep (it applies the request before it runs again). A target is not woken: a running one
 * looks at its requests between run slices, a sleeping one when it wakes (an idle Linux guest
 * sends tens of fences a second, and waking every idle hart for each cost a few % of a core).
 * While waiting, this hart answers the fences asked of it, so two harts fencing each other do
 * not wait forever.
 */
function remoteFence(ids: number[]): void {
  const waits: [number, number][] = [];
  for (const id of ids) {
    if (id === self) { hart.flushTlb(); hart.syncCode(); continue; }
    waits.push([id, Atomics.add(words, control.at(id, HartWord.FenceReq), 1) + 1]);
  }
  for (const [id, wanted] of waits) {
    const ack = control.at(id, HartWord.FenceAck);
    for (;;) {
      const done = Atomics.load(words, ack);
      if (done - wanted >= 0 || control.get(id, HartWord.Asleep) === 1 || control.run === RunState.Stopped) break;
      applyFences();
      Atomics.wait(words, ack, done, 0.2);
    }
  }
}

function applyFences(): void {
  const asked = control.get(self, HartWord.FenceReq);
  if (asked === fencesDone) return;
  hart.flushTlb();
  hart.syncCode();
  fencesDone = asked;
  control.set(self, HartWord.FenceAck, asked);
  Atomics.notify(words, control.at(self, HartWord.FenceAck));
}

/** Brings the hart's interrupt wires (mip's hardware bits) to what the main thread drives. */
function applyWires(): void {
  const lines = control.get(self, HartWord.Lines) & HARDWARE_LINES;
  const changed = lines ^ (hart.mipHw & HARDWARE_LINES);
  if (changed !== 0) for (const irq of HARDWARE_WIRES) if ((changed & (1 << irq)) !== 0) hart.setInterruptLine(irq, (lines & (1 << irq)) !== 0);
}

/** Applies what other threads asked of this hart (see the file comment). */
function service(): void {
  const epoch = code.pendingEpoch(self);
  if (epoch >= 0) { hart.forgetCodePages(); code.acknowledge(self, epoch); }
  hart.syncCode();
  jit?.poll(); // modules back from the compile worker, and the other threads' to adopt
  applyFences();
  applyWires();
  if (control.get(self, HartWord.SoftIrq) !== 0 && (Atomics.exchange(words, control.at(self, HartWord.SoftIrq), 0) & (1 << Irq.SSI)) !== 0) {
    hart.raiseSoftwareInterrupt(Irq.SSI);
  }
  if (control.get(self, HartWord.Hsm) === HartState.StartPending) {
    hart.enterSupervisor(control.starts[2 * self], BigInt(self), control.starts[2 * self + 1]);
    control.set(self, HartWord.Hsm, HartState.Started);
  }
}

/** Whether something is waiting for service() (checked after Asleep is set, before sleeping). */
function workPending(): boolean {
  return control.run !== RunState.Running || control.get(self, HartWord.FenceReq) !== fencesDone
    || ((control.get(self, HartWord.Lines) ^ hart.mipHw) & HARDWARE_LINES) !== 0
    || control.get(self, HartWord.SoftIrq) !== 0 || control.get(self, HartWord.Hsm) === HartState.StartPending;
}

/**
 * Whether this hart runs no instruction until it has looked at its requests: for remote fences
 * (Asleep) and for the JIT's epochs (CodeMap quiescent), which both may then skip waiting for it.
 */
function setAsleep(asleep: boolean): void {
  control.set(self, HartWord.Asleep, asleep ? 1 : 0);
  code.setQuiescent(self, asleep);
}

/** Sleeps up to `ms` or until woken; runs no instruction meanwhile (Asleep, CodeMap quiescent). */
function sleep(ms: number): void {
  const wake = control.at(self, HartWord.Wake);
  const seen = Atomics.load(words, wake);
  setAsleep(true);
  if (!workPending()) Atomics.wait(words, wake, seen, ms);
  // Not asleep first, then service(): a request seen as made to a sleeping hart is applied before it runs.
  setAsleep(false);
}

/**
 * Stops running for good or until a resume: marks the hart asleep, hands its state to the main
 * thread and counts this thread in `word` (Parked or Ended), which the main thread waits on.
 */
function handBack(word: MachineWord): void {
  setAsleep(true);
  if (jit) data.states.postMessage({ jitStats: { ...jit.stats } });
  data.states.postMessage(saveHart(hart));
  control.setInstret(self, hart.instret);
  Atomics.add(words, control.machineAt(word), 1);
  Atomics.notify(words, control.machineAt(word));
}

/** Pause: hands the hart's state to the main thread and waits for the resume, which may bring a new one. */
function park(): void {
  handBack(MachineWord.Parked);
  while (control.run === RunState.Paused) Atomics.wait(words, control.machineAt(MachineWord.Run), RunState.Paused);
  const next = receiveMessageOnPort(data.states);
  if (next) restoreHart(hart, next.message);
  setAsleep(false);
}

function main(): void {
  // The hart threads keep the default priority (started after V8's helpers were lowered, see
  // host-threads.ts) and carry the hart's name.
  nameThisThread(`vessel-hart${self}`);
  const first = receiveMessageOnPort(data.states);
  if (!first) throw new Error(`hart ${self}: no state to start from`);
  restoreHart(hart, first.message);
  for (;;) {
    const run = control.run;
    if (run === RunState.Stopped) break;
    if (run === RunState.Paused) { park(); continue; }
    service();
    if (control.get(self, HartWord.Hsm) !== HartState.Started) { sleep(MAX_SLEEP_MS); continue; }
    hart.run(data.quantum);
    control.setInstret(self, hart.instret);
    if (hart.yielding) {
      // The guest spins: give the core away for a moment (another hart's thread may hold what it waits for).
      Atomics.wait(words, control.at(self, HartWord.Wake), Atomics.load(words, control.at(self, HartWord.Wake)), SPIN_NAP_MS);
      continue;
    }
    if (hart.waiting && !hart.hasPendingInterrupt()) {
      const ms = Math.ceil((hart.timerDeadline - clock.now()) / TICKS_PER_MS);
      if (ms > 0) sleep(Math.min(MAX_SLEEP_MS, ms));
    }
  }
  handBack(MachineWord.Ended);
  jit?.close();
  data.states.close();
}

main();
