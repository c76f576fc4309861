import { readFileSync } from 'node:fs';
import type { Responder, SimulatedRequest } from './openai-compatible-server';

/**
 * A simulator script: the reply to a chat is the first rule whose `pattern` (a JavaScript regular
 * expression) matches the request's prompt, else `fallback`. The prompt is the text of every
 * message, one per line, system message first. Embeddings are answered as always (vectors derived
 * from the input), whatever the script says.
 *
 *   { "rules": [ { "pattern": "average\\(\\)", "flags": "i", "reply": "```diff\n...```" } ],
 *     "fallback": "No fix proposed." }
 */
export interface SimulatorScript {
  rules: { pattern: RegExp; reply: string }[];
  fallback: string;
}

const REGEX_FLAGS = /^[imsu]*$/;

/** Parses a script's JSON text; every problem names `source` and the field, as a start-up error should. */
export function parseSimulatorScript(text: string, source: string): SimulatorScript {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${source}: not valid JSON (${(err as Error).message})`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) {
    throw new Error(`${source}: must be a JSON object with "rules" (a list of { "pattern", "reply" }) and optionally "fallback"`);
  }
  const { rules, fallback, ...rest } = json as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw new Error(`${source}: unknown field ${JSON.stringify(unknown[0])}; a script has "rules" and "fallback"`);
  if (!Array.isArray(rules)) throw new Error(`${source}: "rules" must be a list of { "pattern", "reply" } objects`);
  if (fallback !== undefined && typeof fallback !== 'string') throw new Error(`${source}: "fallback" must be a string`);
  const parsed = rules.map((rule: unknown, i) => {
    const where = `${source}: rules[${i}]`;
    if (!rule || typeof rule !== 'object' || Array.isArray(rule)) throw new Error(`${where} must be an object with "pattern" and "reply"`);
    const { pattern, flags, reply, ...extra } = rule as Record<string, unknown>;
    const extraKeys = Object.keys(extra);
    if (extraKeys.length > 0) throw new Error(`${where}: unknown field ${JSON.stringify(extraKeys[0])}; a rule has "pattern", "flags" and "reply"`);
    if (typeof pattern !== 'string' || pattern === '') throw new Error(`${where}.pattern must be a non-empty string (a regular expression)`);
    if (typeof reply !== 'string') throw new Error(`${where}.reply must be a string (the assistant's answer)`);
    if (flags !== undefined && (typeof flags !== 'string' || !REGEX_FLAGS.test(flags))) {
      throw new Error(`${where}.flags must be a string of the regular expression flags i, m, s, u`);
    }
    try {
      return { pattern: new RegExp(pattern, flags as string | undefined), reply };
    } catch (err) {
      throw new Error(`${where}.pattern is not a valid regular expression: ${(err as Error).message}`);
    }
  });
  return { rules: parsed, fallback: fallback ?? 'The simulator script has no reply for this prompt.' };
}

export function loadSimulatorScript(path: string): SimulatorScript {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`--script ${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseSimulatorScript(text, path);
}

/** The text a script's patterns are matched against: every message's text, one per line. */
export function promptOf(req: SimulatedRequest): string {
  const messages: unknown[] = Array.isArray(req.body?.messages) ? req.body.messages : [];
  return messages
    .map((m) => {
      const content = (m as { content?: unknown })?.content;
      if (typeof content === 'string') return content;
      if (Array.isArray(content)) return content.map((p) => (typeof p?.text === 'string' ? p.text : '')).join(' ');
      return '';
    })
    .join('\n');
}

export function scriptedResponder(script: SimulatorScript): Responder {
  return (req) => {
    const prompt = promptOf(req);
    const rule = script.rules.find((r) => r.pattern.test(prompt));
    return { content: rule ? rule.reply : script.fallback };
  };
}
