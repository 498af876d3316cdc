// Reading `systemd-analyze time` and `systemd-analyze blame` as a guest prints them.

export interface AnalyzeTime {
  /** Kernel and initramfs ("(kernel)" plus "(initrd)" when systemd ran in an initrd), seconds. */
  kernelS: number;
  userspaceS: number;
  totalS: number;
  /** "<default target> reached after X in userspace": the target (graphical.target on Debian) and X in seconds; null when not printed. */
  target: { unit: string; seconds: number } | null;
}

export interface BlameEntry {
  seconds: number;
  unit: string;
}

/**
 * A systemd time span as systemd prints it ("1min 2.345s", "812ms", "3.5s", "1h 2min", "50us") in seconds;
 * null for text that is not one.
 */
export function parseSpan(text: string): number | null {
  const units: Record<string, number> = { h: 3600, min: 60, s: 1, ms: 1e-3, us: 1e-6, 'µs': 1e-6 };
  const parts = text.trim().split(/\s+/);
  if (parts.length === 0 || parts[0] === '') return null;
  let total = 0;
  for (const p of parts) {
    const m = /^(\d+(?:\.\d+)?)(h|min|ms|us|µs|s)$/.exec(p);
    if (!m) return null;
    total += Number(m[1]) * units[m[2]];
  }
  return total;
}

/** The numbers in `systemd-analyze time` output; null when the text holds no "Startup finished" line. */
export function parseAnalyzeTime(text: string): AnalyzeTime | null {
  const line = /Startup finished in ([^\n]*?) = ([^\n=]+?)\s*$/m.exec(text.replace(/\r/g, ''));
  if (!line) return null;
  let kernelS = 0, userspaceS = 0;
  let found = false;
  for (const term of line[1].split(' + ')) {
    const m = /^(.+?) \((\w+)\)$/.exec(term.trim());
    if (!m) continue;
    const s = parseSpan(m[1]);
    if (s === null) continue;
    if (m[2] === 'userspace') { userspaceS += s; found = true; } else if (m[2] === 'kernel' || m[2] === 'initrd') kernelS += s;
    // firmware and loader (EFI) times are not part of a direct kernel boot.
  }
  const totalS = parseSpan(line[2]);
  if (!found || totalS === null) return null;
  const reached = /(\S+\.target) reached after (.+?) in userspace/.exec(text);
  const targetS = reached ? parseSpan(reached[2]) : null;
  return { kernelS, userspaceS, totalS, target: reached && targetS !== null ? { unit: reached[1], seconds: targetS } : null };
}

/** The lines of `systemd-analyze blame` ("  1.234s foo.service"), in the order printed. */
export function parseBlame(text: string): BlameEntry[] {
  const out: BlameEntry[] = [];
  for (const raw of text.replace(/\r/g, '').split('\n')) {
    const m = /^\s*((?:\d+(?:\.\d+)?(?:h|min|ms|us|µs|s)\s)+)\s*(\S+\.(?:service|mount|device|socket|swap|target|timer|path|slice|scope))\s*$/.exec(raw);
    if (!m) continue;
    const s = parseSpan(m[1]);
    if (s !== null) out.push({ seconds: s, unit: m[2] });
  }
  return out;
}

/** What the guest kernel counted during the boot: where its harts' time went, and the work done. */
export interface GuestCounters {
  /** Seconds summed over all harts, from /proc/stat's `cpu` line (USER_HZ = 100). */
  cpu: { user: number; system: number; idle: number; iowait: number; irq: number; softirq: number };
  /** Context switches and processes created since boot. */
  ctxt: number;
  processes: number;
  /** /proc/vmstat: page faults, major ones, KiB read from block devices. */
  pgfault: number;
  pgmajfault: number;
  pgpginKiB: number;
  /** /proc/interrupts' IPI rows, summed over harts, by their description. */
  ipis: Record<string, number>;
}

/** Reads `cat /proc/stat /proc/vmstat /proc/interrupts` output; null when the `cpu` line is missing. */
export function parseGuestCounters(text: string, userHz = 100): GuestCounters | null {
  const t = text.replace(/\r/g, '');
  const cpu = /^cpu\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(t);
  if (!cpu) return null;
  const n = (i: number): number => Number(cpu[i]) / userHz;
  const num = (re: RegExp): number => Number(re.exec(t)?.[1] ?? NaN);
  const ipis: Record<string, number> = {};
  for (const m of t.matchAll(/^\s*IPI\d+:((?:\s+\d+)+)\s+(.*)$/gm)) {
    ipis[m[2].trim()] = m[1].trim().split(/\s+/).reduce((a, x) => a + Number(x), 0);
  }
  return {
    cpu: { user: n(1) + n(2), system: n(3), idle: n(4), iowait: n(5), irq: n(6), softirq: n(7) },
    ctxt: num(/^ctxt (\d+)$/m), processes: num(/^processes (\d+)$/m),
    pgfault: num(/^pgfault (\d+)$/m), pgmajfault: num(/^pgmajfault (\d+)$/m), pgpginKiB: num(/^pgpgin (\d+)$/m),
    ipis,
  };
}
