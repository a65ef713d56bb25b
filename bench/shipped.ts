/**
 * Runs a benchmark's own "ours" child mode the way the agent ships: the
 * bench file compiled to JavaScript (tsconfig.bench.json into dist-bench/,
 * built once per run) under the release launcher's Node flags and thread
 * pool, so its peak RSS is the agent's and not Node's TypeScript stripper's
 * (~25 MiB more). The child reads `stdin` (a token) and prints one JSON line.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

/**
 * The two "ours" child modes of a backup bench, both sides of one command
 * line: `--ours-backup <storage url> <the bench's own args…>` and
 * `--ours-restore <storage url> <state dir> <location> <checksum>`, the Swift
 * token on stdin (never on argv). `file` is the bench's own module.
 */
export function oursChild(file: string) {
  return {
    backup: <T>(storageUrl: string, token: string, args: string[]): Promise<T> => runShipped<T>(file, ['--ours-backup', storageUrl, ...args], token),
    restore: <T>(storageUrl: string, token: string, stateDir: string, location: string, checksum: string): Promise<T> =>
      runShipped<T>(file, ['--ours-restore', storageUrl, stateDir, location, checksum], token),
  };
}

/** The child side of oursChild: runs the mode this process was started in (nothing in the parent). */
export async function serveOursChild(modes: {
  backup(storageUrl: string, token: string, args: string[]): Promise<void>;
  restore(storageUrl: string, token: string, stateDir: string, location: string, checksum: string): Promise<void>;
}): Promise<void> {
  const [mode, storageUrl, ...rest] = process.argv.slice(2);
  if (mode !== '--ours-backup' && mode !== '--ours-restore') return;
  const token = readFileSync(0, 'utf8').trim();
  if (mode === '--ours-backup') return modes.backup(storageUrl!, token, rest);
  const [stateDir, location, checksum] = rest;
  return modes.restore(storageUrl!, token, stateDir!, location!, checksum!);
}
