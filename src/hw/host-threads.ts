/**
 * Host thread priorities. A hart's thread is the critical path of a VM: every instruction the
 * guest retires runs there. V8's background threads (tier-up compiles of the JIT's modules, GC
 * marking) do useful work, but in bursts of up to four at once; on a small host they outnumber
 * the cores and the kernel's fair scheduler preempts the hart for them (thousands of
 * involuntary switches per boot on a 2-core host, each costing the hart up to a scheduler
 * tick). So they run at the lowest priority (nice 19), getting the cycles the harts leave
 * idle. The JIT's compile worker, started after them, keeps the default priority: at nice 19
 * it would starve whenever other processes keep the cores busy, and the harts would go on
 * interpreting code that should have been compiled (delayed tier-up only leaves compiled code
 * slower).
 *
 * Linux only (thread ids and priorities through /proc and setpriority(2)); elsewhere, and
 * where a thread is gone or the call is refused, priorities stay as they are.
 */
import { readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';

/** The nice value of V8's background threads. */
export const HELPER_NICE = 19;

/** The kernel's id of the calling thread, or -1 when the host does not say. */
function currentThreadId(): number {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return -1;
  }
}

function lower(tid: number): void {
  try {
    setPriority(tid, HELPER_NICE);
  } catch {
    // The thread ended meanwhile, or the host does not allow it: nothing lost but speed.
  }
}

/**
 * Runs every other thread the process has now at the helpers' priority, so the calling thread
 * (the one that runs harts) comes first. Threads started later keep their priority.
 */
export function lowerOtherThreads(): void {
  const self = currentThreadId();
  if (self < 0) return;
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return;
  }
  for (const task of tasks) if (Number(task) !== self) lower(Number(task));
}

/**
 * Names the calling thread (its `comm`, what `top -H` and `ps -L` show), e.g. "vessel-hart0" for
 * a hart's thread, so an operator sees which thread runs which vCPU. At most 15 bytes; a host
 * that refuses keeps the old name.
 */
export function nameThisThread(name: string): void {
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, 15));
  } catch {
    // Not Linux, or /proc not mounted: the thread keeps Node's name.
  }
}
