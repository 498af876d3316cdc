// A live line graph (uPlot) of the last few minutes; `data` is [times, ...series].
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

const COLORS = ['#2563eb', '#16a34a', '#d97706', '#9333ea'];

export function Graph(props: { title: string; unit: string; series: string[]; data: number[][] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    const el = box.current as HTMLDivElement;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth), height: 160,
      legend: { show: true, live: false },
      scales: { x: { time: true }, y: { range: (_u, min, max) => [0, Math.max(max * 1.1, props.unit === '%' ? 10 : 1)] } },
      axes: [{}, { values: (_u, ticks) => ticks.map((t) => `${+t.toFixed(1)}${props.unit === '%' ? '%' : ''}`), size: 60 }],
      series: [{}, ...props.series.map((label, i) => ({ label: `${label} (${props.unit})`, stroke: COLORS[i % COLORS.length], width: 2 }))],
    };
    plot.current = new uPlot(opts, props.data as uPlot.AlignedData, el);
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, el.clientWidth), height: 160 }));
    ro.observe(el);
    return () => { ro.disconnect(); plot.current?.destroy(); };
  }, []);
  useEffect(() => { plot.current?.setData(props.data as uPlot.AlignedData); }, [props.data]);
  return (
    <figure class="graph" data-points={props.data[0]?.length ?? 0}>
      <figcaption>{props.title}</figcaption>
      <div ref={box} role="img" aria-label={`${props.title}: ${props.series.map((s, i) => `${s} ${lastOf(props.data[i + 1])} ${props.unit}`).join(', ')}`} />
    </figure>
  );
}

function lastOf(a: number[] | undefined): string {
  const v = a && a.length ? a[a.length - 1] : null;
  return v == null ? 'none yet' : String(Math.round(v * 10) / 10);
}
