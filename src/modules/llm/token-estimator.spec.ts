import { TokenEstimator } from './token-estimator';

describe('TokenEstimator', () => {
  const est = new TokenEstimator();

  it('picks the model family’s encoding, cl100k_base for models it does not know', () => {
    expect(est.encodingFor('gpt-4o')).toBe('o200k_base');
    expect(est.encodingFor('gpt-4o-mini-2024-07-18')).toBe('o200k_base');
    expect(est.encodingFor('o3-mini')).toBe('o200k_base');
    expect(est.encodingFor('gpt-5.1-codex')).toBe('o200k_base'); // not in tiktoken's table: by family
    expect(est.encodingFor('openai/o4-mini-high')).toBe('o200k_base');
    expect(est.encodingFor('gpt-4')).toBe('cl100k_base');
    expect(est.encodingFor('gpt-3.5-turbo')).toBe('cl100k_base');
    expect(est.encodingFor('text-embedding-3-small')).toBe('cl100k_base');
    expect(est.encodingFor('llama3.1:8b')).toBe('cl100k_base');
  });

  it('counts text, including text that looks like special tokens, without throwing', () => {
    expect(est.countText('', 'gpt-4o')).toBe(0);
    expect(est.countText('Hello there friend', 'gpt-4o')).toBe(3);
    expect(est.countText('<|endoftext|>', 'gpt-4o')).toBe(1);
  });

  it('counts a chat prompt with the per-message overhead', () => {
    // 3 priming + [3 + "system" 1 + "You are terse." 4] + [3 + "user" 1 + "hi" 1] = 16
    expect(
      est.countChatPrompt({
        model: 'gpt-4o',
        messages: [
          { role: 'system', content: 'You are terse.' },
          { role: 'user', content: 'hi' },
        ],
      }),
    ).toBe(16);
    // content parts are counted by their text: same as the plain string
    expect(est.countChatPrompt({ model: 'gpt-4o', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] })).toBe(8);
    expect(est.countChatPrompt({ model: 'gpt-4o', messages: [] })).toBe(3);
  });

  it('counts embedding inputs: strings, lists of strings, token arrays', () => {
    expect(est.countEmbeddingInput('alpha', 'text-embedding-3-small')).toBe(1);
    expect(est.countEmbeddingInput(['alpha', 'Hello there friend'], 'text-embedding-3-small')).toBe(4);
    expect(est.countEmbeddingInput([1, 2, 3], 'text-embedding-3-small')).toBe(3);
    expect(est.countEmbeddingInput([[1, 2], [3]], 'text-embedding-3-small')).toBe(3);
  });
});
