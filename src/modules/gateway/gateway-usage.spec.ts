import { MAX_REPORTED_TOKENS } from '../llm/reported-usage';
import { maxOutputTokens } from './gateway-usage';

describe('maxOutputTokens (the output a gateway call reserves against block quotas)', () => {
  it('reserves max_tokens once per choice a chat asks for with n', () => {
    expect(maxOutputTokens('chat', { max_tokens: 1000 })).toBe(1000);
    expect(maxOutputTokens('chat', { max_tokens: 1000, n: 1 })).toBe(1000);
    expect(maxOutputTokens('chat', { max_completion_tokens: 1000, n: 100 })).toBe(100_000);
    // Without a limit, the default allowance for each choice.
    expect(maxOutputTokens('chat', { n: 3 })).toBe(3 * maxOutputTokens('chat', {}));
    // Never past the largest count a record may carry.
    expect(maxOutputTokens('chat', { max_tokens: MAX_REPORTED_TOKENS, n: 128 })).toBe(MAX_REPORTED_TOKENS);
  });

  it('reads n only where it means choices, and only as a whole number', () => {
    expect(maxOutputTokens('chat', { max_tokens: 10, n: 2.5 })).toBe(10);
    expect(maxOutputTokens('chat', { max_tokens: 10, n: '4' })).toBe(10);
    expect(maxOutputTokens('responses', { max_output_tokens: 10, n: 4 })).toBe(10);
    expect(maxOutputTokens('embeddings', { n: 4 })).toBe(0);
  });
});
