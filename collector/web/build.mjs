/**
 * Builds the live-view page into collector/web/dist: app.js (bundled and minified by esbuild),
 * app.css and index.html. Run from `npm run build` (`node collector/web/build.mjs`); no CDN, no framework.
 */
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const src = fileURLToPath(new URL('./src/', import.meta.url));
const dist = fileURLToPath(new URL('./dist/', import.meta.url));

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  entryPoints: { app: `${src}app.js` },
  outdir: dist,
  bundle: true,
  minify: true,
  sourcemap: false,
  format: 'esm',
  target: 'es2020',
  legalComments: 'none',
  logLevel: 'warning',
});
await build({ entryPoints: { app: `${src}app.css` }, outdir: dist, bundle: true, minify: true, logLevel: 'warning' });
await copyFile(`${src}index.html`, `${dist}index.html`);
