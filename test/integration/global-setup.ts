/**
 * Suite-wide servers for the integration tier. Each shared server has its own
 * setup module under test/integration/setup/, listed in
 * vitest.integration.config.ts; this file only checks the runtime.
 */
export default function setup(): void {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 22) {
    throw new Error(`integration tests need Node 22+ (running ${process.version}); run them through npm so node_modules/.bin/node (Node 24) is used`);
  }
}
