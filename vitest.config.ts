import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/** Workspace packages resolve to their sources, so unit tests need no build. */
export const alias = {
  '@hashwatch/protocol': fileURLToPath(new URL('./packages/protocol/src/index.ts', import.meta.url)),
  '@hashwatch/diagnosis': fileURLToPath(new URL('./packages/diagnosis/src/index.ts', import.meta.url)),
  '@hashwatch/agent': fileURLToPath(new URL('./agent/src/index.ts', import.meta.url)),
  '@hashwatch/collector': fileURLToPath(new URL('./collector/src/index.ts', import.meta.url)),
};

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      { resolve: { alias }, test: { name: 'protocol', root: 'packages/protocol', include: ['src/**/*.test.ts'] } },
      {
        resolve: { alias },
        test: { name: 'diagnosis', root: 'packages/diagnosis', include: ['src/**/*.test.ts', 'test/**/*.test.ts'] },
      },
      {
        resolve: { alias },
        test: { name: 'agent', root: 'agent', include: ['src/**/*.test.ts', 'test/**/*.test.ts'], testTimeout: 30_000 },
      },
      {
        resolve: { alias },
        test: {
          name: 'collector',
          root: 'collector',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'e2e',
          root: 'test',
          include: ['**/*.test.ts'],
          exclude: ['bench/**'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
    ],
    reporters: ['default', './scripts/summary-reporter.ts'],
  },
});
