import { parseUsageTags, tagLikePattern, tagsToColumn } from '../../common/usage-tags';
import { matchRoute } from './gateway-upstreams.service';
import { SseEventSplitter } from './sse-events';

describe('route patterns', () => {
  it.each([
    ['*', 'anything', 'anything'],
    ['gpt-4o', 'gpt-4o', 'gpt-4o'],
    ['gpt-4o', 'gpt-4o-mini', null],
    ['gpt-4*', 'gpt-4o-mini', 'gpt-4o-mini'],
    ['gpt-4*', 'gpt-3.5', null],
    ['ollama/*', 'ollama/llama3', 'llama3'],
    ['ollama/*', 'ollama/', null],
    ['ollama/*', 'llama3', null],
  ])('%s takes %s as %s', (pattern, model, sent) => {
    expect(matchRoute(pattern, model)).toBe(sent);
  });
});

describe('usage tags', () => {
  it('parses, trims and sorts pairs', () => {
    expect(parseUsageTags(' team=search , env=prod')).toEqual({ env: 'prod', team: 'search' });
    expect(Object.keys(parseUsageTags('b=1,a=2'))).toEqual(['a', 'b']);
    expect(tagsToColumn(parseUsageTags('team=search,env=prod'))).toBe('{"env":"prod","team":"search"}');
  });

  it.each([
    ['team', /not a valid key=value pair/],
    ['=x', /not a valid key=value pair/],
    ['1team=x', /not a valid key=value pair/],
    ['team=a b', /not a valid key=value pair/],
    ['team="x"', /not a valid key=value pair/],
    ['team=%', /not a valid key=value pair/],
    [`k=${'v'.repeat(65)}`, /not a valid key=value pair/],
    ['a=1,a=2', /key "a" is given twice/],
    [Array.from({ length: 9 }, (_, i) => `k${i}=v`).join(','), /9 pairs given; at most 8/],
  ])('refuses %s', (text, message) => {
    expect(() => parseUsageTags(text)).toThrow(message);
  });

  it('builds a LIKE pattern that escapes the wildcard _', () => {
    expect(tagLikePattern('team_id', 'a_b')).toBe('%"team\\_id":"a\\_b"%');
  });
});

describe('SSE event splitter', () => {
  it('gives whole events with their bytes untouched, whatever the chunking', () => {
    const wire = 'data: {"a":1}\n\n: comment\n\nevent: response.completed\ndata: {"b":\ndata: 2}\r\n\r\ndata: [DONE]\n\n';
    for (const size of [1, 3, 7, wire.length]) {
      const splitter = new SseEventSplitter();
      const events = [];
      for (let i = 0; i < wire.length; i += size) events.push(...splitter.push(Buffer.from(wire.slice(i, i + size))));
      expect(Buffer.concat(events.map((e) => e.raw)).toString()).toBe(wire);
      expect(events.map((e) => [e.event, e.data])).toEqual([
        [null, '{"a":1}'],
        [null, null],
        ['response.completed', '{"b":\n2}'],
        [null, '[DONE]'],
      ]);
      expect(splitter.rest().length).toBe(0);
    }
  });

  it('keeps an unfinished event as the rest', () => {
    const splitter = new SseEventSplitter();
    expect(splitter.push(Buffer.from('data: {"a":1}\n\ndata: {"cut'))).toHaveLength(1);
    expect(splitter.rest().toString()).toBe('data: {"cut');
  });
});
