#!/usr/bin/env node
// Entry point installed as `guestagent`. The sources are TypeScript run by
// Node's built-in type stripping (Node 22.18+; the project ships Node 24).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`guestagent needs Node 22.18 or newer (this is ${process.version}); run it through npx/npm so node_modules/.bin/node is used\n`);
  process.exit(1);
}
// Backup compression runs on libuv's thread pool (gzip blocks in parallel): size it to the cores.
const { availableParallelism } = await import('node:os');
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, availableParallelism() + 2));
const { main } = await import('../src/main.ts');
process.exit(await main(process.argv.slice(2), process.env));
