import { MAX_REPORTED_TOKENS, trustedTokenCounts } from './reported-usage';

describe('trustedTokenCounts', () => {
  it('takes whole counts within bounds, absent ones as 0', () => {
    expect(trustedTokenCounts({ inputTokens: 10, outputTokens: 2 })).toEqual({ inputTokens: 10, cachedInputTokens: 0, cacheWriteTokens: 0, outputTokens: 2, reasoningTokens: 0 });
    expect(trustedTokenCounts({ inputTokens: MAX_REPORTED_TOKENS, cachedInputTokens: 5, cacheWriteTokens: null })).toMatchObject({ inputTokens: MAX_REPORTED_TOKENS, cachedInputTokens: 5 });
  });

  it.each([
    [{ inputTokens: MAX_REPORTED_TOKENS + 1 }],
    [{ inputTokens: 1e20 }],
    [{ inputTokens: -1 }],
    [{ inputTokens: 1.5 }],
    [{ inputTokens: '10' }],
    [{ inputTokens: NaN }],
    [{ inputTokens: 10, outputTokens: Infinity }],
    [{ inputTokens: 10, reasoningTokens: {} }],
    [{ inputTokens: 10, cachedInputTokens: 8, cacheWriteTokens: 3 }],
  ])('refuses %j', (reported) => {
    expect(trustedTokenCounts(reported)).toBeNull();
  });
});
