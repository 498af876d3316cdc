// Summaries and plain-text tables for benchmark output.

export interface Summary {
  min: number;
  median: number;
  values: number[];
}

export function summarize(xs: number[]): Summary | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return { min: s[0], median: s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2, values: xs };
}

export function ratio(a: Summary | null | undefined, b: Summary | null | undefined): { min: number; median: number } | null {
  if (!a || !b || b.min <= 0 || b.median <= 0) return null;
  return { min: a.min / b.min, median: a.median / b.median };
}

export function fmtS(x: number): string {
  if (x >= 100) return x.toFixed(1);
  if (x >= 10) return x.toFixed(2);
  return x.toFixed(3);
}

export function fmtRatio(x: number): string {
  return x >= 100 ? `${x.toFixed(0)}x` : x >= 10 ? `${x.toFixed(1)}x` : `${x.toFixed(2)}x`;
}

export function fmtCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : String(n);
}

export function table(rows: string[][], rightAlign: boolean[]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (rightAlign[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd()).join('\n');
}
