// Prints one plain closing line ("N passed, N failed, N skipped") after Jest's own summary,
// and names the suites that skipped themselves (for example PostgreSQL when TEST_DATABASE_URL is unset).
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skippedNotes = new Set();
    for (const suite of results.testResults) {
      for (const t of suite.testResults) {
        if (t.status === 'pending' && t.ancestorTitles.some((a) => a.includes('[skipped:'))) {
          const title = t.ancestorTitles.find((a) => a.includes('[skipped:'));
          skippedNotes.add(title);
        }
      }
    }
    for (const note of skippedNotes) process.stdout.write(`SKIPPED SUITE: ${note}\n`);
    const passed = results.numPassedTests;
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const skipped = results.numPendingTests + results.numTodoTests;
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
module.exports = SummaryReporter;
