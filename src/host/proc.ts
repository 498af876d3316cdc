/**
 * What Linux's /proc tells the host about a VM process and about itself: whether a pid is still
 * the process it started (pid plus start time, since pids are reused), its memory and the CPU
 * time its threads wanted but did not get, and the host's CPU and memory.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

function read(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] | null {
  const text = read(`/proc/${pid}/stat`);
  if (text === null) return null;
  return text.slice(text.lastIndexOf(')') + 2).trim().split(' ');
}

/** starttime (field 22, clock ticks after boot), or null when there is no such process. */
export function processStartTime(pid: number): string | null {
  const f = statFields(pid);
  // f[0] is field 3 (state); a zombie has exited already.
  if (!f || f[0] === 'Z') return null;
  return f[19] ?? null;
}

/** True while `pid` is the process that had start time `start` (not a successor with its pid). */
export function sameProcess(pid: number, start: string): boolean {
  return processStartTime(pid) === start;
}

/** The process's command line, NUL-separated arguments split. */
export function processArgs(pid: number): string[] {
  const text = read(`/proc/${pid}/cmdline`);
  return text === null ? [] : text.split('\0').filter((a) => a !== '');
}

/** Resident set size in bytes (VmRSS), or null. */
export function processRss(pid: number): number | null {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(read(`/proc/${pid}/status`) ?? '');
  return m ? Number(m[1]) * 1024 : null;
}

/**
 * CPU time of all the process's threads, and the time they waited on a run queue for a core
 * (wanted but not given), in microseconds, from /proc/<pid>/task/<tid>/schedstat.
 */
export function processSchedStat(pid: number): { runUs: number; waitUs: number } | null {
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  let run = 0, wait = 0;
  for (const tid of tids) {
    const parts = (read(`/proc/${pid}/task/${tid}/schedstat`) ?? '').trim().split(' ');
    if (parts.length < 2) continue;
    run += Number(parts[0]);
    wait += Number(parts[1]);
  }
  return { runUs: run / 1000, waitUs: wait / 1000 };
}

/** Open file descriptors of a process (this one by default). */
export function openFds(pid: number | 'self' = 'self'): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

export interface HostCpuSample { busyTicks: number; totalTicks: number }

/** The host's aggregate CPU counters from /proc/stat's first line. */
export function hostCpuSample(): HostCpuSample {
  const line = (read('/proc/stat') ?? '').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busyTicks: total - idle, totalTicks: total };
}

export interface HostMemory { totalBytes: number; availableBytes: number; freeBytes: number }

export function hostMemory(): HostMemory {
  const text = read('/proc/meminfo') ?? '';
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { totalBytes: kb('MemTotal') || os.totalmem(), availableBytes: kb('MemAvailable') || os.freemem(), freeBytes: kb('MemFree') || os.freemem() };
}

export function hostCpuCount(): number {
  return os.availableParallelism();
}
