import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decimalToString, parseDecimal } from '../../../common/decimal';
import { nanosToUsdExact } from '../../../common/money';
import { PriceOverridesError } from './price-overrides';
import { CATALOG_VERSION, PricingService, TokenCounts } from './pricing.service';

const usage = (u: Partial<TokenCounts>): TokenCounts => ({
  inputTokens: 0,
  cachedInputTokens: 0,
  cacheWriteTokens: 0,
  outputTokens: 0,
  reasoningTokens: 0,
  ...u,
});

// Rates quoted below are those of the @pydantic/genai-prices catalog bundled with the installed
// version (USD per million tokens); 1 USD per million tokens = 1,000 nano-dollars per token.
describe('PricingService', () => {
  let dir: string;
  let catalogOnly: PricingService;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-pricing-'));
    catalogOnly = new PricingService({ provider: 'openai', pricingFile: join(dir, 'absent.json') });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const withOverrides = (content: unknown, provider = 'openai') => {
    const file = join(dir, `pricing-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return new PricingService({ provider, pricingFile: file });
  };

  describe('catalog prices', () => {
    it('names the catalog version in price sources', () => {
      expect(CATALOG_VERSION).toMatch(/^\d+\.\d+\.\d+/);
    });

    it('gpt-4o: 1,000 input + 500 output', () => {
      // gpt-4o: input 2.5, output 10.
      // 1000 × 2.5 + 500 × 10 = 2500 + 5000 = 7500 USD/M tokens -> 0.0075 USD = 7,500,000 nanos
      const q = catalogOnly.price(usage({ inputTokens: 1000, outputTokens: 500 }), ['gpt-4o']);
      expect(q).toEqual({ costNanos: 7_500_000, unpriced: false, priceSource: `genai-prices@${CATALOG_VERSION}:openai/gpt-4o` });
    });

    it('gpt-4o-mini: 1,234 input + 567 output, exact where floats are not', () => {
      // gpt-4o-mini: input 0.15, output 0.6.
      // 1234 × 0.15 = 185.1; 567 × 0.6 = 340.2; sum 525.3 USD/M -> 0.0005253 USD = 525,300 nanos
      // (in floating point 1234 * 0.15 is 185.10000000000002)
      const q = catalogOnly.price(usage({ inputTokens: 1234, outputTokens: 567 }), ['gpt-4o-mini']);
      expect(q.costNanos).toBe(525_300);
      expect(q.priceSource).toBe(`genai-prices@${CATALOG_VERSION}:openai/gpt-4o-mini`);
    });

    it('gpt-4: 3 input + 1 output', () => {
      // gpt-4: input 30, output 60. 3 × 30 + 1 × 60 = 150 USD/M -> 0.00015 USD = 150,000 nanos
      expect(catalogOnly.price(usage({ inputTokens: 3, outputTokens: 1 }), ['gpt-4']).costNanos).toBe(150_000);
    });

    it('o3-mini with reasoning tokens: reasoning is part of output, priced once at the output rate', () => {
      // o3-mini: input 1.1, output 4.4, no separate reasoning rate.
      // 2000 × 1.1 = 2200; visible output (3000 − 2500) × 4.4 = 2200; reasoning 2500 × 4.4 = 11000
      // sum 15400 USD/M -> 0.0154 USD = 15,400,000 nanos (not 26,400,000: reasoning is not added on top)
      const q = catalogOnly.price(usage({ inputTokens: 2000, outputTokens: 3000, reasoningTokens: 2500 }), ['o3-mini']);
      expect(q.costNanos).toBe(15_400_000);
      expect(q.priceSource).toBe(`genai-prices@${CATALOG_VERSION}:openai/o3-mini`);
    });

    it('cached input: the cached part at the cache-read rate, the rest at the input rate', () => {
      // gpt-4o: input 2.5, cached 1.25, output 10. 2000 input of which 1536 cached, 100 output.
      // (2000 − 1536) × 2.5 = 1160; 1536 × 1.25 = 1920; 100 × 10 = 1000; sum 4080 USD/M -> 4,080,000 nanos
      expect(catalogOnly.price(usage({ inputTokens: 2000, cachedInputTokens: 1536, outputTokens: 100 }), ['gpt-4o']).costNanos).toBe(4_080_000);
    });

    it('cache writes at the catalog cache-write rate (anthropic)', () => {
      // claude-sonnet-4-0: input 3, cache write 3.75, cache read 0.3, output 15.
      // 4740 input = 5 uncached + 4735 written; 255 output:
      // 5 × 3 = 15; 4735 × 3.75 = 17756.25; 255 × 15 = 3825; sum 21596.25 USD/M -> 21,596,250 nanos
      const anthropic = new PricingService({ provider: 'anthropic', pricingFile: join(dir, 'absent.json') });
      const q = anthropic.price(usage({ inputTokens: 4740, cacheWriteTokens: 4735, outputTokens: 255 }), ['claude-sonnet-4-20250514']);
      expect(q.costNanos).toBe(21_596_250);
      expect(q.priceSource).toBe(`genai-prices@${CATALOG_VERSION}:anthropic/claude-sonnet-4-0`);
    });

    it('resolves a dated snapshot to its model', () => {
      const q = catalogOnly.price(usage({ inputTokens: 1000, outputTokens: 500 }), ['gpt-4o-2024-08-06']);
      expect(q).toMatchObject({ costNanos: 7_500_000, priceSource: `genai-prices@${CATALOG_VERSION}:openai/gpt-4o` });
    });

    it('tiered prices: the tier applies when input tokens exceed its start', () => {
      // gemini-1.5-pro (google): input 1.25, above 128,000 input tokens 2.5; output 5, above 128,000: 10.
      const google = new PricingService({ provider: 'google', pricingFile: join(dir, 'absent.json') });
      // exactly 128,000 input: base tier. 128000 × 1.25 = 160000; 1000 × 5 = 5000; 165000 USD/M -> 165,000,000 nanos
      expect(google.price(usage({ inputTokens: 128_000, outputTokens: 1000 }), ['gemini-1.5-pro']).costNanos).toBe(165_000_000);
      // 128,001 input: upper tier for input AND output. 128001 × 2.5 = 320002.5; 1000 × 10 = 10000;
      // 330002.5 USD/M -> 0.3300025 USD = 330,002,500 nanos
      expect(google.price(usage({ inputTokens: 128_001, outputTokens: 1000 }), ['gemini-1.5-pro']).costNanos).toBe(330_002_500);
    });

    it('conditional prices by date: the price in force when the call was made', () => {
      // claude-sonnet-4-6: before 2026-03-13 input was tiered (3; 6 above 200,000), from then flat 3.
      const anthropic = new PricingService({ provider: 'anthropic', pricingFile: join(dir, 'absent.json') });
      const u = usage({ inputTokens: 300_000 });
      // 300000 × 6 = 1,800,000 USD/M = 1.8 USD = 1,800,000,000 nanos
      expect(anthropic.price(u, ['claude-sonnet-4-6'], { at: new Date('2026-01-15T00:00:00Z') }).costNanos).toBe(1_800_000_000);
      // 300000 × 3 = 900,000 USD/M = 0.9 USD
      expect(anthropic.price(u, ['claude-sonnet-4-6'], { at: Date.parse('2026-04-01T00:00:00Z') }).costNanos).toBe(900_000_000);
    });

    it('looks each model up once, except prices that depend on the call’s time, looked up at every call’s time', () => {
      const svc = new PricingService({ provider: 'anthropic', pricingFile: join(dir, 'absent.json') });
      // A fixed price: the same resolution object from the second look-up on.
      const first = svc.resolve('claude-opus-4-7');
      expect(first).not.toBeNull();
      expect(svc.resolve('claude-opus-4-7')).toBe(first);
      // A price by date, alternating times on one (warm) service: each call gets the price of its own time.
      const u = usage({ inputTokens: 300_000 });
      for (let i = 0; i < 3; i++) {
        expect(svc.price(u, ['claude-sonnet-4-6'], { at: Date.parse('2026-04-01T00:00:00Z') }).costNanos).toBe(900_000_000);
        expect(svc.price(u, ['claude-sonnet-4-6'], { at: Date.parse('2026-01-15T00:00:00Z') }).costNanos).toBe(1_800_000_000);
      }
      // An invalid time prices nothing, and leaves later calls of the model priced.
      expect(svc.price(u, ['claude-opus-4-6'], { at: Number.NaN }).unpriced).toBe(true);
      expect(svc.price(u, ['claude-opus-4-6'], { at: Date.parse('2026-04-01T00:00:00Z') }).costNanos).toBe(1_500_000_000);
    });

    it('answers from its cache exactly as a fresh service does', () => {
      const models = ['gpt-4o', 'gpt-4o-mini', 'gpt-4o-2024-08-06', 'o3-mini', 'gpt-4', 'text-embedding-3-small', 'totally-unknown-model', 'gpt-4o'];
      const warm = new PricingService({ provider: 'openai', pricingFile: join(dir, 'absent.json') });
      const u = usage({ inputTokens: 1_234, cachedInputTokens: 200, outputTokens: 567, reasoningTokens: 17 });
      for (let round = 0; round < 2; round++) {
        for (const model of models) {
          const fresh = new PricingService({ provider: 'openai', pricingFile: join(dir, 'absent.json') });
          expect(warm.price(u, [model]), model).toEqual(fresh.price(u, [model]));
          expect(warm.maxCostNanos(model, 1_000, 100), model).toBe(fresh.maxCostNanos(model, 1_000, 100));
        }
      }
    });

    it('an unknown model is unpriced: cost null, never 0', () => {
      expect(catalogOnly.price(usage({ inputTokens: 10, outputTokens: 10 }), ['totally-unknown-model'])).toEqual({
        costNanos: null,
        unpriced: true,
        priceSource: null,
      });
      // a known model under a provider the catalog does not have is unknown too
      const local = new PricingService({ provider: 'my-local-server', pricingFile: join(dir, 'absent.json') });
      expect(local.price(usage({ inputTokens: 10 }), ['gpt-4o']).unpriced).toBe(true);
    });

    it('tries the response model first, then the requested one', () => {
      // response model unknown, requested model known: priced by the requested one (gpt-4: 1 × 30 = 30 USD/M = 30,000 nanos)
      expect(catalogOnly.price(usage({ inputTokens: 1 }), ['weird-snapshot-name', 'gpt-4']).costNanos).toBe(30_000);
    });

    it('worst-case cost: prompt at the input rate, every output token at the output rate', () => {
      // gpt-4o: 1000 × 2.5 + 4096 × 10 = 2500 + 40960 = 43460 USD/M -> 43,460,000 nanos
      expect(catalogOnly.maxCostNanos('gpt-4o', 1000, 4096)).toBe(43_460_000);
      expect(catalogOnly.maxCostNanos('nope', 1000, 4096)).toBeNull();
    });
  });

  describe('overrides file', () => {
    const custom = {
      models: [
        {
          model: 'acme-llm',
          provider: 'acme',
          input: '0.0015',
          cached_input: '0.0005',
          cache_write: 0.002,
          output: '0.003',
          reasoning: '0.004',
          note: 'contract price',
        },
        { model: 'gpt-4o', provider: 'openai', input: '5', output: 20 },
        { model: 'house-model-*', input: '1', output: '2' },
      ],
    };

    it('prices a custom model with every rate, rounding half-up once per record', () => {
      const acme = withOverrides(custom, 'acme');
      // input 1001 = 501 uncached + 300 cached + 200 written; output 701 = 600 visible + 101 reasoning
      // 501 × 0.0015 = 0.7515; 300 × 0.0005 = 0.15; 200 × 0.002 = 0.4; 600 × 0.003 = 1.8; 101 × 0.004 = 0.404
      // sum 3.5055 USD/M -> 3505.5 nanos -> rounded half-up once: 3506
      const q = acme.price(usage({ inputTokens: 1001, cachedInputTokens: 300, cacheWriteTokens: 200, outputTokens: 701, reasoningTokens: 101 }), ['acme-llm']);
      expect(q.costNanos).toBe(3506);
      expect(q.unpriced).toBe(false);
      expect(q.priceSource).toMatch(/^override:.*pricing-[a-z0-9]+\.json#acme-llm$/);
      // 1 token × 0.0015 = 1.5 nanos -> 2; a second record rounds on its own (no drift carried over)
      expect(acme.price(usage({ inputTokens: 1 }), ['acme-llm']).costNanos).toBe(2);
      // provider-specific: not used under another provider
      expect(withOverrides(custom, 'openai').price(usage({ inputTokens: 1 }), ['acme-llm']).unpriced).toBe(true);
    });

    it('an override beats the catalog, also for a snapshot of the requested model', () => {
      const svc = withOverrides(custom);
      // 1000 × 5 + 500 × 20 = 15000 USD/M -> 15,000,000 nanos (catalog would be 7,500,000)
      const q = svc.price(usage({ inputTokens: 1000, outputTokens: 500 }), ['gpt-4o-2024-08-06', 'gpt-4o']);
      expect(q.costNanos).toBe(15_000_000);
      expect(q.priceSource).toMatch(/#gpt-4o$/);
      // cached tokens fall back to the override's input rate: 1000 × 5 = 5000 USD/M
      expect(svc.price(usage({ inputTokens: 1000, cachedInputTokens: 1000 }), ['gpt-4o']).costNanos).toBe(5_000_000);
      // models without an override still come from the catalog (gpt-4: 1 × 30 = 30,000 nanos)
      expect(svc.price(usage({ inputTokens: 1 }), ['gpt-4']).priceSource).toBe(`genai-prices@${CATALOG_VERSION}:openai/gpt-4`);
    });

    it('a trailing * matches a prefix, for any provider when none is given', () => {
      const svc = withOverrides(custom, 'whatever');
      // 10 × 1 + 10 × 2 = 30 USD/M -> 30,000 nanos
      const q = svc.price(usage({ inputTokens: 10, outputTokens: 10 }), ['house-model-7b']);
      expect(q.costNanos).toBe(30_000);
      expect(q.priceSource).toMatch(/#house-model-\*$/);
    });

    it('tiered override rates', () => {
      const svc = withOverrides({ models: [{ model: 'big', input: { base: '1', tiers: [{ start: 100, price: '3' }] }, output: '2' }] });
      // 100 × 1 + 1 × 2 = 102 USD/M -> 102,000 nanos; 101 × 3 + 1 × 2 = 305 USD/M -> 305,000 nanos
      expect(svc.price(usage({ inputTokens: 100, outputTokens: 1 }), ['big']).costNanos).toBe(102_000);
      expect(svc.price(usage({ inputTokens: 101, outputTokens: 1 }), ['big']).costNanos).toBe(305_000);
    });

    it('the shipped config/pricing.json is valid', () => {
      const svc = new PricingService({ provider: 'openai', pricingFile: join(process.cwd(), 'config/pricing.json') });
      expect(svc.overrides.label).toBe(join('config', 'pricing.json'));
    });

    it.each([
      ['not JSON', '{ nope', /is not valid JSON/],
      ['a non-object', '[]', /top level: must be an object/],
      ['an unknown top-level field', { prices: [] }, /unknown field "prices"/],
      ['a missing output rate', { models: [{ model: 'm', input: '1' }] }, /models\[0\] \("m"\): "output" is required/],
      ['a missing input rate', { models: [{ model: 'ok', output: 1 }] }, /models\[0\] \("ok"\): "input" is required/],
      ['a negative rate', { models: [{ model: 'ok', input: 1, output: 1 }, { model: 'm', input: '-1', output: 1 }] }, /models\[1\] \("m"\): "input" must be a non-negative decimal/],
      ['a bad rate', { models: [{ model: 'm', input: 'cheap', output: 1 }] }, /models\[0\] \("m"\): "input" must be a non-negative decimal.*"cheap"/],
      ['a negative number', { models: [{ model: 'm', input: -1, output: 1 }] }, /"input" must be a non-negative decimal/],
      ['an unknown field', { models: [{ model: 'm', input: 1, output: 1, outptu: 2 }] }, /models\[0\] \("m"\): unknown field "outptu"/],
      ['no model', { models: [{ input: 1, output: 1 }] }, /models\[0\]: "model" must be a non-empty model id/],
      ['a duplicate', { models: [{ model: 'm', input: 1, output: 1 }, { model: 'M', input: 2, output: 2 }] }, /models\[1\] \("M"\): duplicates models\[0\]/],
      ['a bad tier', { models: [{ model: 'm', input: { base: 1, tiers: [{ start: -5, price: 1 }] }, output: 1 }] }, /tiers\[0\]\.start must be a non-negative integer/],
    ])('refuses %s with a message naming the file and the entry', (_name, content, message) => {
      let error: unknown;
      try {
        withOverrides(content);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(PriceOverridesError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toContain(dir);
    });
  });
});

describe('decimal helpers', () => {
  it('parses decimals from strings and from numbers without float arithmetic', () => {
    expect(parseDecimal('2.50')).toEqual({ units: 250n, scale: 2 });
    expect(parseDecimal(0.075)).toEqual({ units: 75n, scale: 3 });
    expect(parseDecimal(1e-7)).toEqual({ units: 1n, scale: 7 });
    expect(parseDecimal('1.5e3')).toEqual({ units: 1500n, scale: 0 });
    expect(parseDecimal(10)).toEqual({ units: 10n, scale: 0 });
    expect(decimalToString(parseDecimal('0.0015')!)).toBe('0.0015');
    for (const bad of ['-1', 'abc', '', '1.2.3', Number.NaN, Number.POSITIVE_INFINITY, -0.5]) expect(parseDecimal(bad)).toBeNull();
  });

  it('formats nano-dollars as exact USD', () => {
    expect(nanosToUsdExact(3506)).toBe('0.000003506');
    expect(nanosToUsdExact(1_800_000_000)).toBe('1.800000000');
    expect(nanosToUsdExact(123_456_789_012_345_678n)).toBe('123456789.012345678');
  });
});
