export function duration(s: number): string {
  if (!s || s <= 0) return '–';
  if (s < 60) return `${Math.floor(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export const mib = (v: number | null | undefined): string => (v == null ? '–' : `${Math.round(v)} MiB`);
export const bytes = (v: number | null | undefined): string => {
  if (v == null) return '–';
  if (v < 1024) return `${v} B`;
  if (v < 1024 ** 2) return `${(v / 1024).toFixed(1)} KiB`;
  if (v < 1024 ** 3) return `${(v / 1024 ** 2).toFixed(1)} MiB`;
  return `${(v / 1024 ** 3).toFixed(2)} GiB`;
};
export const pct = (v: number | null | undefined): string => (v == null ? '–' : `${v.toFixed(1)} %`);
