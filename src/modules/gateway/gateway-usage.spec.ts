import { MAX_REPORTED_TOKENS } from '../llm/reported-usage';
import { OpenAiErrorException } from '../../common/openai-error';
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

describe('maxOutputTokens refuses output limits that are not whole numbers >= 0', () => {
  const refusal = (endpoint: 'chat' | 'responses', body: Record<string, unknown>) => {
    try {
      maxOutputTokens(endpoint, body);
    } catch (err) {
      return err as OpenAiErrorException;
    }
    throw new Error(`${JSON.stringify(body)} was accepted`);
  };

  it.each([['100000'], [-1], [1.5], [{}], [true], [[10]], [Number.NaN]])('max_tokens %j is a 400 naming the field', (bad) => {
    for (const field of ['max_tokens', 'max_completion_tokens']) {
      const err = refusal('chat', { [field]: bad });
      expect(err).toBeInstanceOf(OpenAiErrorException);
      expect(err.status).toBe(400);
      expect(err.body.error).toMatchObject({ type: 'invalid_request_error', param: field });
      expect(err.body.error.message).toContain(`'${field}'`);
    }
    expect(refusal('responses', { max_output_tokens: bad }).body.error.param).toBe('max_output_tokens');
  });

  it('a valid limit beside an invalid one does not hide it', () => {
    expect(refusal('chat', { max_completion_tokens: 10, max_tokens: '5' }).body.error.param).toBe('max_tokens');
  });

  it('null or absent is no limit (the default allowance); 0 is a limit', () => {
    expect(maxOutputTokens('chat', { max_tokens: null })).toBe(maxOutputTokens('chat', {}));
    expect(maxOutputTokens('responses', { max_output_tokens: null })).toBe(maxOutputTokens('responses', {}));
    expect(maxOutputTokens('chat', { max_tokens: 0 })).toBe(0);
  });

  it('both chat limits given: the larger is reserved, whichever the upstream honours', () => {
    expect(maxOutputTokens('chat', { max_tokens: 100_000, max_completion_tokens: 10 })).toBe(100_000);
    expect(maxOutputTokens('chat', { max_tokens: 10, max_completion_tokens: 20_000 })).toBe(20_000);
    expect(maxOutputTokens('chat', { max_tokens: 100_000, max_completion_tokens: 10, n: 2 })).toBe(200_000);
  });

  it('fields of another call kind are not read (they are passed on as unknown fields)', () => {
    expect(maxOutputTokens('responses', { max_tokens: 'x', max_output_tokens: 7 })).toBe(7);
    expect(maxOutputTokens('chat', { max_output_tokens: 'x', max_tokens: 7 })).toBe(7);
  });
});
