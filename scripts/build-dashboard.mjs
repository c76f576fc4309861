// Builds the dashboard (dashboard/) into one folder of static files: index.html, app.js, app.css.
// Everything, uPlot included, is bundled: the page loads nothing from outside the service.
// Usage: node scripts/build-dashboard.mjs [outDir]   (default dist/dashboard; `npm run build` runs it)
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = resolve(root, process.argv[2] ?? 'dist/dashboard');

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
await build({
  absWorkingDir: root,
  entryPoints: { app: 'dashboard/src/main.ts' },
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'iife',
  target: ['chrome110', 'firefox110', 'safari16'],
  outdir: outDir,
  logLevel: 'warning',
});
copyFileSync(join(root, 'dashboard/index.html'), join(outDir, 'index.html'));
