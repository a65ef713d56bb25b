// The body of the shipped launchers (dist/bin/guestagent.js, the release's
// app/cli-entry.js): size libuv's pool, then run the bundle's main with the
// idle-memory addon's path relative to the launcher.
export const launcherBody = (bundle, addon) =>
  "const { availableParallelism } = await import('node:os');\n" +
  '// libuv\'s pool compresses backups (one gzip block per thread): cores + 2.\n' +
  "process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, availableParallelism() + 2));\n" +
  `const { main } = await import('${bundle}');\n` +
  `process.exit(await main(process.argv.slice(2), process.env, { idleMemoryModule: new URL('${addon}', import.meta.url).pathname }));\n`;
