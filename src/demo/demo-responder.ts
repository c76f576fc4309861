import type { Responder, SimulatedRequest } from '../simulator/openai-compatible-server';

/**
 * SIMULATED model for the offline demo: answers the bug-fix agent's prompts about the bundled
 * sample repository (demo/sample-repo) with canned diffs. It knows nothing else; any other
 * prompt gets an answer without a diff.
 */

export const MATH_BUG = 'average() returns the wrong result: the average of 2, 4 and 6 should be 4.';
export const STRINGS_BUG = 'slugify() leaves spaces in titles with several words: "Hello Big World" must become "hello-big-world".';

/** Correct fix of src/math.js. */
export const MATH_FIX = [
  '--- a/src/math.js',
  '+++ b/src/math.js',
  '@@ -9,7 +9,7 @@ function sum(values) {',
  ' /** Arithmetic mean of a non-empty list of numbers. */',
  ' function average(values) {',
  "   if (values.length === 0) throw new RangeError('average() of an empty list');",
  '-  return sum(values) / (values.length - 1);',
  '+  return sum(values) / values.length;',
  ' }',
  ' ',
  ' /** Limits `value` to the range [min, max]. */',
  '',
].join('\n');

/** Plausible but wrong fix of src/strings.js: applies, yet a run of spaces becomes several dashes. */
export const STRINGS_WRONG_FIX = [
  '--- a/src/strings.js',
  '+++ b/src/strings.js',
  '@@ -2,7 +2,7 @@',
  ' ',
  ' /** Turns a title into a URL slug: "Hello Big World" -> "hello-big-world". */',
  ' function slugify(title) {',
  "-  return title.trim().toLowerCase().replace(' ', '-');",
  "+  return title.trim().toLowerCase().replaceAll(' ', '-');",
  ' }',
  ' ',
  ' function capitalize(word) {',
  '',
].join('\n');

/** Correct fix of src/strings.js. */
export const STRINGS_FIX = STRINGS_WRONG_FIX.replace(".replaceAll(' ', '-');", '.replace(/\\s+/g, \'-\');');

function userPrompt(req: SimulatedRequest): string {
  const messages: Array<{ role?: string; content?: unknown }> = Array.isArray(req.body?.messages) ? req.body.messages : [];
  return messages
    .filter((m) => m.role === 'user')
    .map((m) => (typeof m.content === 'string' ? m.content : ''))
    .join('\n');
}

/** The "## Bug report" section of the agent's prompt (the files shown below it mention every function). */
function bugReport(prompt: string): string {
  const m = /## Bug report\n([\s\S]*?)(\n## |$)/.exec(prompt);
  return m ? m[1] : '';
}

const answer = (explanation: string, diff: string) => ({ content: `[SIMULATED LLM] ${explanation}\n\n\`\`\`diff\n${diff}\`\`\`\n` });

export const demoResponder: Responder = (req) => {
  const prompt = userPrompt(req);
  const bug = bugReport(prompt);
  const isRetry = /## Attempt \d+ of \d+ failed/.test(prompt);
  if (/average/i.test(bug)) {
    return answer('average() divides by one less than the number of values; divide by values.length.', MATH_FIX);
  }
  if (/slugify/i.test(bug)) {
    return isRetry
      ? answer('The tests show runs of spaces must collapse into one dash: replace every run of whitespace.', STRINGS_FIX)
      : answer('slugify() replaces only the first space; replace all of them.', STRINGS_WRONG_FIX);
  }
  return { content: '[SIMULATED LLM] The demo simulator only knows the bundled sample repository; no fix proposed.' };
};
