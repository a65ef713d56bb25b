// Emits dist/ (JavaScript) and its launcher dist/bin/guestagent.js.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';
import { launcherBody } from './launcher.mjs';

rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
mkdirSync('dist/bin', { recursive: true });
// The agent ships as one ES module bundle with a chunk per datastore (the
// datastores stay dynamic imports, so a guest loads only its own): resolving
// and linking ~160 modules from node_modules at every start made the median
// first answer 417 ms against 300 ms bundled (README, Performance). dist/src
// stays as tsc emits it (the benches' compiled children import it).
await build({
  entryPoints: { main: 'dist/src/main.js' },
  outdir: 'dist/app',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  // pg's optional native binding is never used; the idle-memory addon is loaded by path.
  external: ['pg-native', '*.node'],
  // CommonJS dependencies (amqplib, pino, mysql2, pg) call require() for builtins.
  banner: { js: "import { createRequire as __guestagentRequire } from 'node:module';\nconst require = __guestagentRequire(import.meta.url);" },
  legalComments: 'linked',
  // Whitespace and syntax only: V8 scans every byte at the start (main.js 496 -> 341 KB, import
  // ~5 ms less); names are kept, so stack traces in the log still name the functions.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});
writeFileSync(
  'dist/bin/guestagent.js',
  // A small young generation: the agent's garbage is short-lived, and 16 MiB
  // semi-spaces (V8's default) cost ~40 MiB of RSS under load for nothing.
  // TurboFan stays the top JIT tier: its own code (5 MiB of the node binary)
  // is paged out with the rest once the agent is quiet (process/idle-memory.ts),
  // and it takes ~5% less CPU per call than Maglev alone (--max-opt=2).
  "#!/usr/bin/env -S node --max-semi-space-size=1\n" + launcherBody('../app/main.js', '../native/build/idle-memory.node'),
);
chmodSync('dist/bin/guestagent.js', 0o755);
writeFileSync('dist/package.json', JSON.stringify({ type: 'module' }) + '\n');
// The idle-memory module (src/process/idle-memory.ts: malloc_trim, pageout), at the same path relative to dist/src as to src.
execFileSync(process.execPath, ['scripts/build-native.mjs'], { stdio: 'inherit' });
mkdirSync('dist/native/build', { recursive: true });
copyFileSync('native/build/idle-memory.node', 'dist/native/build/idle-memory.node');
