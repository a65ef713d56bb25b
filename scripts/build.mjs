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
  // TurboFan stays the top JIT tier: its own code (5 MiB of the node binary)
  // is paged out with the rest once the agent is quiet (process/idle-memory.ts),
  // and it takes ~5% less CPU per call than Maglev alone (--max-opt=2).
  "#!/usr/bin/env -S node --max-semi-space-size=1\n" +
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
