// After tsc: bundles the compiled product (dist/cli/walvault.js and everything it imports) into
// dist/bundle/, which the bin/ launchers start. A cold process then opens a handful of files
// instead of ~60 dist modules plus commander's and p-queue's: ESM resolution, reads and compiles
// of many small files were the largest share of a cold wal-push after Node's own start.
// - Code splitting keeps every `await import()` of the sources a separate chunk, so `--version`,
//   the archiver's plain `wal-push %p`, and the S3/pg/metrics paths each load only what they use.
// - Native addons, the AWS SDK, pg, pino and prom-client stay external: loaded from node_modules,
//   lazily where the sources load them lazily.
// - Source maps chain through tsc's maps to src/*.ts (run with --enable-source-maps to use them).
// dist/**/*.js stays as it is: tests, the harness and the benchmarks import product modules from it.
import { build } from 'esbuild';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const outdir = join(dist, 'bundle');

// Packages resolved at run time from node_modules, never copied into the bundle.
const EXTERNAL = ['zstd-napi', 'lz4-napi', '@aws-sdk/*', '@smithy/*', 'pg', 'pino', 'prom-client'];

// Modules that locate files relative to themselves (`new URL(…, import.meta.url)`) keep their
// dist/ location, so the paths they compute do not depend on the chunk they land in. detach.js is
// the exception: it starts `./walvault.js` beside itself, and in the bundle that must be the
// bundle's own entry, so the detached uploader starts as cheaply as the call that spawned it.
const KEEP_CHUNK_URL = new Set(['cli/detach.js']);

const originalUrlPlugin = {
  name: 'original-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, (args) => {
      if (!args.path.startsWith(dist + sep)) return undefined;
      const rel = relative(dist, args.path).split(sep).join('/');
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes('import.meta.url') || KEEP_CHUNK_URL.has(rel)) return undefined;
      // Every chunk sits directly in dist/bundle/, so ../<rel> is the module's own dist/ file.
      const contents = text.replaceAll('import.meta.url', `new URL(${JSON.stringify(`../${rel}`)}, import.meta.url).href`);
      return { contents, loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};

const common = {
  absWorkingDir: root,
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  external: EXTERNAL,
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'none',
  // commander is CommonJS; its require() calls of Node built-ins need a real require in ESM output.
  banner: { js: "import { createRequire as __wvCreateRequire } from 'node:module';\nconst require = __wvCreateRequire(import.meta.url);" },
  metafile: true,
  logLevel: 'warning',
};

rmSync(outdir, { recursive: true, force: true });
// The whole CLI (bin/walvault, bin/wal-fetch): one chunk per lazily imported command or path.
const cli = await build({
  ...common,
  entryPoints: { walvault: join(dist, 'cli', 'walvault.js'), main: join(dist, 'cli', 'main.js') },
  chunkNames: '[name]-[hash]',
  plugins: [originalUrlPlugin],
});
// The archiver's hook (bin/wal-push): the same entry, built again with only the plain `wal-push %p`
// path inside, so a cold push opens a few files (esbuild splits shared code per combination of
// entry points, and the CLI build's many lazy commands cut the push path into ~36 chunks). Anything
// else (flags, --help) goes to the CLI build's main.js, in a process that then never runs this
// build's copy of the modules: two copies of a class never meet in one process.
const hook = await build({
  ...common,
  entryPoints: { 'wal-push': join(dist, 'cli', 'walvault.js') },
  chunkNames: 'wal-push-[name]-[hash]',
  plugins: [
    {
      name: 'cli-build-main',
      setup(b) {
        b.onResolve({ filter: /^\.\/main\.js$/ }, (args) =>
          args.importer === join(dist, 'cli', 'walvault.js') ? { path: './main.js', external: true } : undefined,
        );
      },
    },
    originalUrlPlugin,
  ],
});
if (cli.errors.length > 0 || hook.errors.length > 0) process.exit(1);
// Which modules each output file holds (paths from the package root, e.g. dist/cli/hooks.js,
// node_modules/commander/index.js): test/integration/e2e/startup.test.ts maps the files a process
// loads back to the modules it ran, as it did before the bundle.
const modules = {};
for (const meta of [cli.metafile, hook.metafile]) {
  for (const [file, out] of Object.entries(meta.outputs)) {
    if (file.endsWith('.js')) modules[relative(outdir, join(root, file))] = Object.keys(out.inputs).sort();
  }
}
writeFileSync(join(outdir, 'modules.json'), `${JSON.stringify(modules, null, 1)}\n`);
