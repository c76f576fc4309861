import { existsSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { Decimal, parseDecimal } from '../../../common/decimal';
import { readConfigFile, StartConfigError } from '../../../common/start-config-error';

/** A per-million-token rate: flat, or tiered by the call's input token count. */
export type PriceRate = Decimal | TieredRate;

export interface TieredRate {
  readonly base: Decimal;
  /** Ascending by `start`; a tier applies when the call's input tokens are greater than `start`. */
  readonly tiers: readonly { readonly start: number; readonly price: Decimal }[];
}

/** USD per million tokens for each kind of token. Null: fall back (cached/cache write -> input, reasoning -> output). */
export interface ModelRates {
  readonly input: PriceRate;
  readonly cachedInput: PriceRate | null;
  readonly cacheWrite: PriceRate | null;
  readonly output: PriceRate;
  readonly reasoning: PriceRate | null;
}

export interface PriceOverride {
  /** Model id as written in the file; a trailing `*` matches every model starting with the rest. */
  readonly model: string;
  /** Provider id, or null for any provider. */
  readonly provider: string | null;
  readonly rates: ModelRates;
  /** Position in the file, for messages. */
  readonly index: number;
}

export interface PriceOverrides {
  readonly file: string;
  /** How the file is named in price sources: relative to the working directory when inside it. */
  readonly label: string;
  readonly entries: readonly PriceOverride[];
}

export class PriceOverridesError extends StartConfigError {}

const RATE_FIELDS = {
  input: 'input',
  cached_input: 'cachedInput',
  cache_write: 'cacheWrite',
  output: 'output',
  reasoning: 'reasoning',
} as const;
const ENTRY_FIELDS = new Set(['model', 'provider', ...Object.keys(RATE_FIELDS), 'note', '$comment']);
const TOP_FIELDS = new Set(['models', '$comment', '$schema']);

/**
 * Reads and validates the price overrides file. A missing file means "no overrides"; a file that
 * is there but wrong stops the boot with a message naming the file, the entry and the field.
 */
export function loadPriceOverrides(file: string, cwd = process.cwd(), required = false): PriceOverrides {
  const rel = relative(cwd, file);
  const label = rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
  if (!existsSync(file)) {
    if (required) throw new PriceOverridesError(`PRICING_FILE ${file} does not exist (unset PRICING_FILE to use config/pricing.json when it is there, else the built-in catalog alone)`);
    return { file, label, entries: [] };
  }
  const text = readConfigFile(file, (problem) => new PriceOverridesError(`Price overrides file ${file} ${problem}`));
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new PriceOverridesError(`Price overrides file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return { file, label, entries: parsePriceOverrides(raw, file) };
}

export function parsePriceOverrides(raw: unknown, file: string): PriceOverride[] {
  const fail = (where: string, problem: string): never => {
    throw new PriceOverridesError(`Invalid price overrides file ${file}: ${where}: ${problem}`);
  };
  if (!isObject(raw)) fail('top level', 'must be an object like {"models": [...]}');
  const top = raw as Record<string, unknown>;
  for (const key of Object.keys(top)) if (!TOP_FIELDS.has(key)) fail('top level', `unknown field "${key}" (allowed: models)`);
  const models = top.models ?? [];
  if (!Array.isArray(models)) fail('"models"', 'must be an array of model entries');

  const seen = new Map<string, number>();
  return (models as unknown[]).map((entry, index) => {
    const named = isObject(entry) && typeof entry.model === 'string' ? ` ("${entry.model}")` : '';
    const where = `models[${index}]${named}`;
    if (!isObject(entry)) return fail(where, 'must be an object');
    for (const key of Object.keys(entry)) {
      if (!ENTRY_FIELDS.has(key)) fail(where, `unknown field "${key}" (allowed: ${[...ENTRY_FIELDS].filter((f) => f !== '$comment').join(', ')})`);
    }
    if (typeof entry.model !== 'string' || entry.model.trim() === '' || entry.model.trim() === '*') {
      fail(where, '"model" must be a non-empty model id (a trailing * matches a prefix)');
    }
    const provider = entry.provider;
    if (provider !== undefined && provider !== null && (typeof provider !== 'string' || provider.trim() === '')) {
      fail(where, '"provider" must be a provider id such as "openai", or "*" / absent for any provider');
    }
    if (entry.note !== undefined && typeof entry.note !== 'string') fail(where, '"note" must be a string');
    const rates: Record<string, PriceRate | null> = {};
    for (const [field, prop] of Object.entries(RATE_FIELDS)) {
      const value = entry[field];
      if (value === undefined || value === null) {
        if (field === 'input' || field === 'output') fail(where, `"${field}" is required (USD per million tokens, e.g. "2.50"; use 0 if free)`);
        rates[prop] = null;
        continue;
      }
      rates[prop] = parseRate(value, (problem) => fail(where, `"${field}" ${problem}`));
    }
    const model = (entry.model as string).trim();
    const providerId = typeof provider === 'string' && provider.trim() !== '*' ? provider.trim().toLowerCase() : null;
    const key = `${providerId ?? '*'}|${model.toLowerCase()}`;
    if (seen.has(key)) fail(where, `duplicates models[${seen.get(key)}] (same model and provider)`);
    seen.set(key, index);
    return { model, provider: providerId, rates: rates as unknown as ModelRates, index };
  });
}

function parseRate(value: unknown, fail: (problem: string) => never): PriceRate {
  if (typeof value === 'string' || typeof value === 'number') {
    const d = parseDecimal(value);
    if (!d) fail(`must be a non-negative decimal in USD per million tokens (string like "2.50" or a number), got ${JSON.stringify(value)}`);
    return d as Decimal;
  }
  if (isObject(value)) {
    const base = typeof value.base === 'string' || typeof value.base === 'number' ? parseDecimal(value.base) : null;
    if (!base) fail('tiered price needs "base": a non-negative decimal');
    if (!Array.isArray(value.tiers) || value.tiers.length === 0) fail('tiered price needs "tiers": [{"start": <input tokens>, "price": <decimal>}, ...]');
    const tiers = (value.tiers as unknown[]).map((t, i) => {
      if (!isObject(t)) fail(`tiers[${i}] must be an object`);
      const tier = t as Record<string, unknown>;
      if (typeof tier.start !== 'number' || !Number.isSafeInteger(tier.start) || tier.start < 0) {
        fail(`tiers[${i}].start must be a non-negative integer (the tier applies above this many input tokens)`);
      }
      const price = typeof tier.price === 'string' || typeof tier.price === 'number' ? parseDecimal(tier.price) : null;
      if (!price) fail(`tiers[${i}].price must be a non-negative decimal`);
      return { start: tier.start as number, price: price as Decimal };
    });
    return { base: base as Decimal, tiers: tiers.sort((a, b) => a.start - b.start) };
  }
  return fail(`must be a decimal string, a number, or {"base": ..., "tiers": [...]}, got ${JSON.stringify(value)}`);
}

/** The best override for a model: provider-specific before any-provider, exact before prefix, longest prefix first. */
export function findOverride(entries: readonly PriceOverride[], model: string, provider: string): PriceOverride | null {
  const m = model.trim().toLowerCase();
  const p = provider.trim().toLowerCase();
  let best: { entry: PriceOverride; score: number } | null = null;
  for (const entry of entries) {
    if (entry.provider !== null && entry.provider !== p) continue;
    const pattern = entry.model.toLowerCase();
    let score: number;
    if (pattern.endsWith('*')) {
      const prefix = pattern.slice(0, -1);
      if (!m.startsWith(prefix)) continue;
      score = prefix.length;
    } else {
      if (pattern !== m) continue;
      score = 1_000_000;
    }
    if (entry.provider !== null) score += 10_000_000;
    if (!best || score > best.score) best = { entry, score };
  }
  return best?.entry ?? null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
