import { defineConfig } from 'vitest/config';

// Unit tier: fakes only, no servers. Fast, run first.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    testTimeout: 10_000,
  },
});
