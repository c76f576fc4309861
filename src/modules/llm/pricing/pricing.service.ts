import { Inject, Injectable, Logger } from '@nestjs/common';
import { calcPrice, type ModelPrice } from '@pydantic/genai-prices';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { llmConfig, type LlmConfig } from '../../../config/llm.config';
import { Decimal, divRoundHalfUp, parseDecimal } from '../../../common/decimal';
import { findOverride, loadPriceOverrides, ModelRates, PriceOverrides, PriceRate } from './price-overrides';

/** Token counts of one call, OpenAI-style: input includes cached and cache-write, output includes reasoning. */
export interface TokenCounts {
  readonly inputTokens: number;
  readonly cachedInputTokens: number;
  readonly cacheWriteTokens: number;
  readonly outputTokens: number;
  readonly reasoningTokens: number;
}

export interface ResolvedPrice {
  /** e.g. `genai-prices@0.1.8:openai/gpt-4o` or `override:config/pricing.json#my-model`. */
  readonly source: string;
  readonly rates: ModelRates;
}

export interface PriceQuote {
  /** Integer nano-dollars, rounded half-up once per call; null when unpriced. */
  readonly costNanos: number | null;
  readonly unpriced: boolean;
  readonly priceSource: string | null;
}

export interface PriceLookup {
  /** Provider id (default: `LLM_PROVIDER`). */
  readonly provider?: string;
  /** When the call happened: catalog prices can change by date (default: now). */
  readonly at?: Date | number;
}

export const CATALOG_NAME = 'genai-prices';
export const CATALOG_VERSION = readCatalogVersion();

const MILLION = 1_000_000n;
/** Distinct (provider, model) look-ups kept; past this the caches start over (model names come from callers). */
const MAX_CACHED_MODELS = 10_000;
const NANOS_PER_USD = 1_000_000_000n;

/**
 * Prices LLM calls exactly. Rates come from the price overrides file first, then from the
 * maintained `@pydantic/genai-prices` catalog (which resolves snapshots and date-dependent
 * prices); the cost itself is computed here with BigInt from the rates' decimal form:
 *
 *   cost = uncached_input × input + cached × cached_input + cache_write × cache_write
 *        + (output − reasoning) × output + reasoning × reasoning        (rates in USD per 10^6 tokens)
 *
 * where uncached_input = input − cached − cache_write, missing cached/cache-write rates fall back to
 * the input rate and a missing reasoning rate to the output rate, and a tiered rate uses the tier
 * whose `start` the call's input tokens exceed. The sum is converted to nano-dollars and rounded
 * half-up once. A model with no price anywhere is `unpriced` (cost null), never 0.
 */
@Injectable()
export class PricingService {
  private readonly logger = new Logger(PricingService.name);
  readonly overrides: PriceOverrides;
  // Look-ups per (provider, model): an override scan and the catalog's model matching cost about
  // 35 µs each, twice per call. The overrides file is read once at boot and the catalog is the
  // installed package, so an answer only changes with a catalog price that depends on the date or
  // the time of day: those are never cached.
  private readonly overrideCache = new Map<string, ResolvedPrice | null>();
  private readonly catalogCache = new Map<string, ResolvedPrice | null>();

  constructor(@Inject(llmConfig.KEY) private readonly config: Pick<LlmConfig, 'provider' | 'pricingFile'> & Partial<Pick<LlmConfig, 'pricingFileRequired'>>) {
    this.overrides = loadPriceOverrides(config.pricingFile, process.cwd(), config.pricingFileRequired === true);
    if (this.overrides.entries.length > 0) {
      this.logger.log(`${this.overrides.entries.length} price overrides from ${this.overrides.label}`);
    }
  }

  get defaultProvider(): string {
    return this.config.provider;
  }

  /** Rates for a model: an override when one matches, else the catalog; null when neither knows it. */
  resolve(model: string, lookup: PriceLookup = {}): ResolvedPrice | null {
    const provider = (lookup.provider ?? this.config.provider).toLowerCase();
    return this.override(model, provider) ?? this.catalog(model, provider, lookup.at);
  }

  /**
   * Prices a call. `models` are tried in order (typically the response model, then the requested
   * one), overrides before the catalog, so an override of the requested model still wins over a
   * catalog entry for the dated snapshot the provider answered with.
   */
  price(usage: TokenCounts, models: readonly (string | null | undefined)[], lookup: PriceLookup = {}): PriceQuote {
    const resolved = this.resolveFirst(models, lookup);
    if (!resolved) return { costNanos: null, unpriced: true, priceSource: null };
    return { costNanos: Number(costNanos(resolved.rates, usage)), unpriced: false, priceSource: resolved.source };
  }

  /** Worst-case cost in nano-dollars of a call with this prompt size and output allowance; null when unpriced. */
  maxCostNanos(model: string, promptTokens: number, maxOutputTokens: number, lookup: PriceLookup = {}): number | null {
    const resolved = this.resolve(model, lookup);
    if (!resolved) return null;
    // Every output token at the higher of the output and reasoning rates: nothing can cost more.
    const output = higherRate(resolved.rates.output, resolved.rates.reasoning, promptTokens);
    const rates: ModelRates = { ...resolved.rates, output, reasoning: null };
    return Number(
      costNanos(rates, { inputTokens: promptTokens, cachedInputTokens: 0, cacheWriteTokens: 0, outputTokens: maxOutputTokens, reasoningTokens: 0 }),
    );
  }

  /** What to do about a model with no known price, for the messages that refuse its calls. */
  unpricedHint(model: string, provider = this.config.provider): string {
    return (
      `model "${model}" (provider ${provider}) has no known price: add it to ${this.overrides.label} (PRICING_FILE), e.g. ` +
      `{ "models": [{ "model": ${JSON.stringify(model)}, "input": "0.50", "output": "1.50" }] } with its USD rates per million tokens`
    );
  }

  private resolveFirst(models: readonly (string | null | undefined)[], lookup: PriceLookup): ResolvedPrice | null {
    const candidates = [...new Set(models.filter((m): m is string => typeof m === 'string' && m.trim() !== ''))];
    const provider = (lookup.provider ?? this.config.provider).toLowerCase();
    for (const model of candidates) {
      const o = this.override(model, provider);
      if (o) return o;
    }
    for (const model of candidates) {
      const r = this.catalog(model, provider, lookup.at);
      if (r) return r;
    }
    return null;
  }

  private override(model: string, provider: string): ResolvedPrice | null {
    const key = `${provider}\u0000${model}`;
    let resolved = this.overrideCache.get(key);
    if (resolved === undefined) {
      const o = findOverride(this.overrides.entries, model, provider);
      resolved = o ? { source: `override:${this.overrides.label}#${o.model}`, rates: o.rates } : null;
      remember(this.overrideCache, key, resolved);
    }
    return resolved;
  }

  private catalog(model: string, provider: string, at: Date | number | undefined): ResolvedPrice | null {
    const key = `${provider}\u0000${model}`;
    const cached = this.catalogCache.get(key);
    if (cached !== undefined) return cached;
    const found = resolveFromCatalog(model, provider, toDate(at));
    if (!found.dependsOnTime) remember(this.catalogCache, key, found.price);
    return found.price;
  }
}

function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  if (cache.size >= MAX_CACHED_MODELS) cache.clear();
  cache.set(key, value);
}

/** Exact cost in nano-dollars (rounded half-up once) of the given usage at the given rates. */
export function costNanos(rates: ModelRates, usage: TokenCounts): bigint {
  const input = nonNegative(usage.inputTokens);
  const cached = Math.min(nonNegative(usage.cachedInputTokens), input);
  const cacheWrite = Math.min(nonNegative(usage.cacheWriteTokens), input - cached);
  const output = nonNegative(usage.outputTokens);
  const reasoning = Math.min(nonNegative(usage.reasoningTokens), output);
  const parts: [number, Decimal][] = [
    [input - cached - cacheWrite, rateAt(rates.input, input)],
    [cached, rateAt(rates.cachedInput ?? rates.input, input)],
    [cacheWrite, rateAt(rates.cacheWrite ?? rates.input, input)],
    [output - reasoning, rateAt(rates.output, input)],
    [reasoning, rateAt(rates.reasoning ?? rates.output, input)],
  ];
  const scale = Math.max(...parts.map(([, r]) => r.scale));
  // Σ tokens × rate, in units of 10^-scale USD per million tokens.
  let sum = 0n;
  for (const [tokens, rate] of parts) sum += BigInt(tokens) * rate.units * 10n ** BigInt(scale - rate.scale);
  // nanos = sum / 10^scale / 10^6 × 10^9
  return divRoundHalfUp(sum * NANOS_PER_USD, 10n ** BigInt(scale) * MILLION);
}

/** The rate that applies to a call with this many input tokens. */
export function rateAt(rate: PriceRate, inputTokens: number): Decimal {
  if (!isTiered(rate)) return rate;
  let price = rate.base;
  for (const tier of rate.tiers) if (inputTokens > tier.start) price = tier.price;
  return price;
}

function higherRate(a: PriceRate, b: PriceRate | null, inputTokens: number): Decimal {
  const x = rateAt(a, inputTokens);
  if (!b) return x;
  const y = rateAt(b, inputTokens);
  const scale = Math.max(x.scale, y.scale);
  const xs = x.units * 10n ** BigInt(scale - x.scale);
  const ys = y.units * 10n ** BigInt(scale - y.scale);
  return xs >= ys ? x : y;
}

function isTiered(rate: PriceRate): rate is Extract<PriceRate, { base: Decimal }> {
  return 'base' in rate;
}

/** The catalog's price of a model at a time, and whether another time could give another price. */
function resolveFromCatalog(model: string, provider: string, at: Date): { price: ResolvedPrice | null; dependsOnTime: boolean } {
  let result: ReturnType<typeof calcPrice>;
  try {
    // Only the model resolution is used; the usage passed here is irrelevant to the rates returned.
    result = calcPrice({ input_tokens: 0, output_tokens: 0 }, model, { providerId: provider, timestamp: at });
  } catch {
    return { price: null, dependsOnTime: true }; // an invalid time, say: another call may succeed
  }
  if (!result) return { price: null, dependsOnTime: false };
  // Conditional prices (a start date, a time of day) are chosen by the call's time.
  const dependsOnTime = Array.isArray(result.model.prices);
  const rates = catalogRates(result.model_price);
  if (!rates) return { price: null, dependsOnTime };
  return { price: { source: `${CATALOG_NAME}@${CATALOG_VERSION}:${result.provider.id}/${result.model.id}`, rates }, dependsOnTime };
}

function catalogRates(p: ModelPrice): ModelRates | null {
  const input = catalogRate(p.input_mtok);
  const output = catalogRate(p.output_mtok);
  // A model priced only per image/second/request is not a token-priced model: leave it unpriced.
  if (!input && !output) return null;
  const zero: Decimal = { units: 0n, scale: 0 };
  return {
    input: input ?? zero,
    cachedInput: catalogRate(p.cache_read_mtok),
    cacheWrite: catalogRate(p.cache_write_mtok),
    output: output ?? zero,
    reasoning: catalogRate(p.output_reasoning_mtok),
  };
}

function catalogRate(v: ModelPrice[string]): PriceRate | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'number') return parseDecimal(v);
  const base = parseDecimal(v.base);
  if (!base) return null;
  const tiers = [...v.tiers]
    .map((t) => ({ start: t.start, price: parseDecimal(t.price) }))
    .filter((t): t is { start: number; price: Decimal } => t.price !== null)
    .sort((a, b) => a.start - b.start);
  return { base, tiers };
}

function nonNegative(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

function toDate(at: Date | number | undefined): Date {
  if (at === undefined) return new Date();
  return at instanceof Date ? at : new Date(at);
}

function readCatalogVersion(): string {
  try {
    const entry = createRequire(join(process.cwd(), 'noop.js')).resolve('@pydantic/genai-prices');
    // dist/index.cjs -> package.json (the package's exports do not expose package.json itself)
    return (JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
