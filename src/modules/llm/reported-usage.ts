import type { TokenCounts } from './pricing/pricing.service';

/**
 * The most tokens one call may report in any one count. No model's context or output comes near
 * it; a provider (or an OpenAI-compatible server behind the gateway) that reports more is wrong,
 * and a count that size would make a cost no exact integer of nano-dollars can hold.
 */
export const MAX_REPORTED_TOKENS = 100_000_000;

/** A count as a provider reported it: absent (`undefined`/`null`, read as 0) or anything else. */
type Reported = Partial<Record<keyof TokenCounts, unknown>>;

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_REPORTED_TOKENS;

/**
 * The token counts a provider reported, when they can be trusted: every count present is a whole
 * number from 0 to MAX_REPORTED_TOKENS, and the cached and cache-write parts fit in the prompt.
 * Otherwise null, and the caller records the call with its own estimate (`estimated: true`), as
 * for a response without usage: a negative, fractional, string or absurd count is never billed.
 */
export function trustedTokenCounts(reported: Reported): TokenCounts | null {
  const read = (k: keyof TokenCounts): number | null => {
    const v = reported[k];
    if (v === undefined || v === null) return 0;
    return isCount(v) ? v : null;
  };
  const counts = {
    inputTokens: read('inputTokens'),
    cachedInputTokens: read('cachedInputTokens'),
    cacheWriteTokens: read('cacheWriteTokens'),
    outputTokens: read('outputTokens'),
    reasoningTokens: read('reasoningTokens'),
  };
  if (Object.values(counts).some((v) => v === null)) return null;
  const c = counts as TokenCounts;
  if (c.cachedInputTokens + c.cacheWriteTokens > c.inputTokens) return null;
  return c;
}
