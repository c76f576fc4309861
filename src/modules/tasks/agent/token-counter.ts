import { Tiktoken } from 'js-tiktoken/lite';
// The same rank module the LLM client's estimator loads: Node shares it (the full js-tiktoken
// entry point would load every encoding again). Typed by src/modules/llm/js-tiktoken-ranks.d.ts.
import o200kBase from 'js-tiktoken/ranks/o200k_base';

/**
 * Counts tokens with o200k_base (the GPT-4o / GPT-4.1 / o-series encoding). For other model
 * families it is an estimate, which is all a context budget needs.
 */
export class TokenCounter {
  private static encoder: Tiktoken | undefined;

  private get enc(): Tiktoken {
    // Building the encoder parses a few MB of ranks: once per process, on first use.
    TokenCounter.encoder ??= new Tiktoken(o200kBase);
    return TokenCounter.encoder;
  }

  count(text: string): number {
    if (!text) return 0;
    // Special-token text (e.g. "<|endoftext|>") inside a source file is just text.
    return this.enc.encode(text, [], []).length;
  }

  /** The longest prefix of `text` within `maxTokens`, cut at a line end where possible. */
  truncate(text: string, maxTokens: number): { text: string; tokens: number; truncated: boolean } {
    if (maxTokens <= 0) return { text: '', tokens: 0, truncated: text.length > 0 };
    const tokens = this.enc.encode(text, [], []);
    if (tokens.length <= maxTokens) return { text, tokens: tokens.length, truncated: false };
    let cut = this.enc.decode(tokens.slice(0, maxTokens));
    const nl = cut.lastIndexOf('\n');
    if (nl > cut.length / 2) cut = cut.slice(0, nl + 1);
    return { text: cut, tokens: this.count(cut), truncated: true };
  }

  /** Keeps the start and the end of `text` within `maxTokens` (for test output). */
  truncateMiddle(text: string, maxTokens: number): { text: string; tokens: number; truncated: boolean } {
    const tokens = this.enc.encode(text, [], []);
    if (tokens.length <= maxTokens) return { text, tokens: tokens.length, truncated: false };
    const marker = '\n[... output shortened ...]\n';
    const room = Math.max(0, maxTokens - this.count(marker));
    const headN = Math.floor(room * 0.4);
    const tailN = room - headN;
    const out = this.enc.decode(tokens.slice(0, headN)) + marker + this.enc.decode(tokens.slice(tokens.length - tailN));
    return { text: out, tokens: this.count(out), truncated: true };
  }
}
