// Builds the web console (web/src) into static files in dist/web: index.html, assets/app.js and
// assets/app.css (esbuild: one bundle, minified, with source maps), served by `vessel host --listen`.
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// Built beside and then swapped in, so that a host serving dist/web meanwhile misses it for a moment at most.
const final = path.join(here, '..', 'dist', 'web');
const out = `${final}.new-${process.pid}`;
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(path.join(out, 'assets'), { recursive: true });
await esbuild.build({
  entryPoints: { app: path.join(here, 'src', 'main.tsx') },
  outdir: path.join(out, 'assets'),
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  loader: { '.css': 'css' },
  logLevel: 'warning',
});
for (const f of ['index.html', 'favicon.svg']) fs.copyFileSync(path.join(here, f), path.join(out, f));
const old = `${final}.old-${process.pid}`;
if (fs.existsSync(final)) fs.renameSync(final, old);
fs.renameSync(out, final);
fs.rmSync(old, { recursive: true, force: true });
