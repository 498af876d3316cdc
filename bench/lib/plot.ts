// Line charts as PNG files: uPlot (the web console's charting library) drawn by Debian's
// chromium through playwright-core, the pair the browser test uses. A benchmark hands over its
// series; the page is built from uPlot's own files in node_modules, with no network.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

import { chromium } from 'playwright-core';

import { GuestError } from './guest.js';

const CHROMIUM = process.env['VESSEL_CHROMIUM'] ?? '/usr/bin/chromium';

export interface Chart {
  title: string;
  yLabel: string;
  /** Seconds since the start (the x axis). */
  x: number[];
  series: { label: string; values: (number | null)[]; color: string; dash?: boolean }[];
}

/** A colour for series `i` of `n` (hues around the wheel). */
export const hue = (i: number, n: number): string => `hsl(${Math.round((360 * i) / Math.max(1, n))}, 70%, 42%)`;

/** Draws the charts one above the other into `file` (PNG, 900 px wide). */
export async function plotPng(file: string, charts: Chart[]): Promise<void> {
  if (!fs.existsSync(CHROMIUM)) throw new GuestError(`no chromium at ${CHROMIUM} to draw ${file} (apt-get install chromium, or set VESSEL_CHROMIUM)`);
  const require = createRequire(import.meta.url);
  const dist = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
  const js = fs.readFileSync(path.join(dist, 'uPlot.iife.min.js'), 'utf8');
  const css = fs.readFileSync(path.join(dist, 'uPlot.min.css'), 'utf8');
  const html = `<!doctype html><html><head><style>${css} body{margin:8px;font-family:sans-serif;background:#fff}</style></head>` +
    `<body><div id="charts"></div><script>${js}</script></body></html>`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 920, height: 400 * charts.length + 20 } });
    await page.setContent(html);
    await page.evaluate((cs: Chart[]) => {
      const U = (globalThis as unknown as { uPlot: new (opts: unknown, data: unknown, el: unknown) => unknown }).uPlot;
      const root = (globalThis as unknown as { document: { getElementById(id: string): { appendChild(el: unknown): void }; createElement(t: string): unknown } }).document;
      for (const c of cs) {
        const el = root.createElement('div');
        root.getElementById('charts').appendChild(el);
        new U({
          title: c.title, width: 900, height: 380, scales: { x: { time: false } },
          axes: [{ label: 'seconds' }, { label: c.yLabel, size: 60 }],
          series: [{ label: 's' }, ...c.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, points: { show: false }, ...(s.dash ? { dash: [6, 4] } : {}) }))],
        }, [c.x, ...c.series.map((s) => s.values)], el);
      }
    }, charts);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await page.locator('#charts').screenshot({ path: file });
  } finally {
    await browser.close();
  }
}
