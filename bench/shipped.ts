/**
 * Runs a benchmark's own "ours" child mode the way the agent ships: the
 * bench file compiled to JavaScript (tsconfig.bench.json into dist-bench/,
 * built once per run) under the release launcher's Node flags and thread
 * pool, so its peak RSS is the agent's and not Node's TypeScript stripper's
 * (~25 MiB more). The child reads `stdin` (a token) and prints one JSON line.
 */
import { execFileSync, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** dist/bin/guestagent.js's shebang flags (scripts/build.mjs). */
export const LAUNCHER_FLAGS = ['--max-semi-space-size=1'];
let built = false;

function compiled(file: string): string {
  if (!built) {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.bench.json')], { stdio: 'inherit' });
    built = true;
  }
  return join(ROOT, 'dist-bench', relative(ROOT, file).replace(/\.ts$/, '.js'));
}

export function runShipped<T>(file: string, args: string[], stdin: string): Promise<T> {
  const script = compiled(file);
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [...LAUNCHER_FLAGS, script, ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, GA_BENCH_ROOT: ROOT, UV_THREADPOOL_SIZE: process.env['UV_THREADPOOL_SIZE'] ?? String(Math.max(4, availableParallelism() + 2)) },
    });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as T) : reject(new Error(`${args[0]} exited ${code}`))));
    c.stdin.end(stdin);
  });
}
