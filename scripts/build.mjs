// Emits dist/ (JavaScript) and its launcher dist/bin/guestagent.js.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
mkdirSync('dist/bin', { recursive: true });
writeFileSync(
  'dist/bin/guestagent.js',
  // A small young generation: the agent's garbage is short-lived, and 16 MiB
  // semi-spaces (V8's default) cost ~40 MiB of RSS under load for nothing.
  // Maglev is the top JIT tier: TurboFan's own code, paged in from the node
  // binary once it compiles anything, is 5 MiB of idle RSS (67.5 -> 62 MiB
  // after 10,000 pings), for no CPU per call measurably saved here.
  "#!/usr/bin/env -S node --max-semi-space-size=1 --max-opt=2\n" +
    "const { availableParallelism } = await import('node:os');\n" +
    "process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, availableParallelism() + 2));\n" +
    "const { main } = await import('../src/main.js');\nprocess.exit(await main(process.argv.slice(2), process.env));\n",
);
chmodSync('dist/bin/guestagent.js', 0o755);
writeFileSync('dist/package.json', JSON.stringify({ type: 'module' }) + '\n');
// The idle-memory module (src/process/idle-memory.ts: malloc_trim, pageout), at the same path relative to dist/src as to src.
execFileSync(process.execPath, ['scripts/build-native.mjs'], { stdio: 'inherit' });
mkdirSync('dist/native/build', { recursive: true });
copyFileSync('native/build/idle-memory.node', 'dist/native/build/idle-memory.node');
