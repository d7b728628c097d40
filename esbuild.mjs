// One build script, four bundles: the extension host (node/cjs, `vscode` external),
// the CLI (node/cjs), the change reader's worker thread (node/cjs), and the webview (browser/iife).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as esbuild from 'esbuild';

// PGlite's files that the extension bundle loads at run time. PGlite resolves them with
// `new URL('./pglite.wasm', import.meta.url)`; the extension bundle maps import.meta.url to
// the bundle's own file URL, so they must sit next to dist/extension.js.
const PGLITE_ASSETS = ['pglite.wasm', 'pglite.data', 'initdb.wasm'];
const pgliteDist = path.join('node_modules', '@electric-sql', 'pglite', 'dist');

/** Native (.node) addons: esbuild cannot bundle them; the code that loads them tolerates their absence. */
const NATIVE_ADDONS = ['lz4-napi', '@antoniomuso/*', '@databricks/databricks-sql-kernel-*', 'bufferutil', 'utf-8-validate', '*.node'];

/** Copies PGlite's WASM/data files into dist/ after each extension build. */
const copyPgliteAssets = {
  name: 'copy-pglite-assets',
  setup(build) {
    build.onEnd((result) => {
      if (result.errors.length > 0) return;
      fs.mkdirSync('dist', { recursive: true });
      for (const f of PGLITE_ASSETS) fs.copyFileSync(path.join(pgliteDist, f), path.join('dist', f));
    });
  },
};

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

const common = {
  bundle: true,
  sourcemap: !production,
  minify: production,
  logLevel: 'info',
};

const contexts = await Promise.all([
  esbuild.context({
    ...common,
    entryPoints: ['src/extension.ts'],
    outfile: 'dist/extension.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // The .vsix has no node_modules: everything but `vscode` is bundled, PGlite included.
    // The native addons (@databricks/sql's LZ4 and Rust kernel, ws's optional speedups)
    // are loaded in try/catch; a .vsix cannot carry per-platform binaries, so they stay out.
    external: ['vscode', ...NATIVE_ADDONS],
    define: {
      // esbuild leaves import.meta empty in CJS output; PGlite needs a real file URL.
      'import.meta.url': '__dnsImportMetaUrl',
      // zod probes `navigator` (a Node 21+ global); VS Code warns when extensions touch it.
      navigator: 'undefined',
    },
    banner: { js: 'const __dnsImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
    plugins: [copyPgliteAssets],
  }),
  esbuild.context({
    ...common,
    entryPoints: ['src/cli.ts'],
    outfile: 'dist/cli.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
    // PGlite loads its WASM and data files next to its own module: keep it a runtime dependency.
    // @databricks/sql's native addons (optional, loaded in try/catch) cannot be bundled.
    external: ['@electric-sql/pglite', ...NATIVE_ADDONS],
  }),
  // The change reader's worker thread (src/sync/worker/changePlanWorker.ts): the extension and
  // the CLI start it from dist/, next to their own bundles.
  esbuild.context({
    ...common,
    entryPoints: ['src/sync/worker/changePlanWorkerMain.ts'],
    outfile: 'dist/changePlanWorker.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // Databricks sources are read here too: @databricks/sql is bundled, its native addons
    // (lz4-napi, the Rust kernel) stay out as in the other bundles (loaded in try/catch).
    external: NATIVE_ADDONS,
  }),
  esbuild.context({
    ...common,
    entryPoints: ['media/main.ts'],
    outfile: 'dist/webview.js',
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
  }),
]);

if (watch) {
  await Promise.all(contexts.map((c) => c.watch()));
} else {
  await Promise.all(contexts.map((c) => c.rebuild()));
  await Promise.all(contexts.map((c) => c.dispose()));
}
