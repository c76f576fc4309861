import type { Reporter, SerializedError, TestModule } from 'vitest/node';

/**
 * After Vitest's own summary, prints one plain closing line ("N passed, N failed, N skipped")
 * and names each suite that skipped itself (for example the PostgreSQL suites when
 * TEST_DATABASE_URL is unset), so a skipped database is never silent.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError> = []): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const skippedSuites = new Set<string>();
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else {
          skipped++;
          let parent = test.parent;
          while (parent && parent.type === 'suite') {
            if (parent.name.includes('[skipped:')) skippedSuites.add(parent.name);
            parent = parent.parent;
          }
        }
      }
      if (mod.state() === 'failed' && mod.children.size === 0) failed++;
    }
    // A crashed test worker or an error outside any test fails the run: count each as a failure.
    failed += unhandledErrors.length;
    for (const name of skippedSuites) process.stdout.write(`SKIPPED SUITE: ${name}\n`);
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
