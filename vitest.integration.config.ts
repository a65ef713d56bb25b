import { defineConfig } from 'vitest/config';

// Integration tier: real RabbitMQ, real datastores started by the agent, real
// Swift, and the real Python Trove code as the peer. Servers are shared per
// suite (globalSetup), files run in parallel where they do not share state.
export default defineConfig({
  test: {
    include: ['test/integration/**/*.test.ts'],
    globalSetup: ['test/integration/global-setup.ts', 'test/integration/setup/rabbit.ts', 'test/integration/setup/swift.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    fileParallelism: true,
    maxWorkers: 2,
  },
});
