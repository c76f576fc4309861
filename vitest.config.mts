import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// SWC compiles the tests and sources: unlike Vite's default transform it emits decorator
// metadata, which Nest's dependency injection relies on.
export default defineConfig({
  plugins: [swc.vite({ module: { type: 'es6' } })],
  test: {
    globals: true,
    environment: 'node',
    include: ['src/**/*.spec.ts', 'dashboard/src/**/*.spec.ts', 'test/**/*.e2e-spec.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Suites start servers, databases and child processes: run files one at a time on this 2-core machine.
    fileParallelism: false,
    pool: 'forks',
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
