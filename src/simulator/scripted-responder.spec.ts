import { parseSimulatorScript, scriptedResponder } from './scripted-responder';

const chat = (...contents: string[]) => ({ path: '/v1/chat/completions', headers: {}, body: { model: 'm', messages: contents.map((content) => ({ role: 'user', content })) } });

describe('simulator scripts', () => {
  const script = parseSimulatorScript(
    JSON.stringify({
      rules: [
        { pattern: 'average\\(\\)', reply: 'fix average' },
        { pattern: 'AVERAGE|hello', flags: 'i', reply: 'second rule' },
      ],
      fallback: 'nothing scripted',
    }),
    'script.json',
  );
  const respond = scriptedResponder(script);

  it('answers with the first rule whose pattern matches any message, else the fallback', () => {
    expect(respond(chat('system text', 'the bug: average() is wrong'))).toEqual({ content: 'fix average' });
    expect(respond(chat('Hello there'))).toEqual({ content: 'second rule' });
    expect(respond(chat('AVERAGE without parentheses'))).toEqual({ content: 'second rule' });
    expect(respond(chat('something else'))).toEqual({ content: 'nothing scripted' });
  });

  it('has a fallback of its own when the file gives none', () => {
    const bare = scriptedResponder(parseSimulatorScript('{ "rules": [] }', 's.json'));
    expect(bare(chat('x'))).toEqual({ content: 'The simulator script has no reply for this prompt.' });
  });

  it.each([
    ['not json', /^s\.json: not valid JSON/],
    ['[]', /^s\.json: must be a JSON object with "rules"/],
    ['{ "rules": {} }', /^s\.json: "rules" must be a list/],
    ['{ "rules": [], "replies": [] }', /^s\.json: unknown field "replies"/],
    ['{ "rules": [], "fallback": 3 }', /^s\.json: "fallback" must be a string/],
    ['{ "rules": [ { "reply": "x" } ] }', /^s\.json: rules\[0\]\.pattern must be a non-empty string/],
    ['{ "rules": [ { "pattern": "a", "reply": "x" }, { "pattern": "(", "reply": "x" } ] }', /^s\.json: rules\[1\]\.pattern is not a valid regular expression/],
    ['{ "rules": [ { "pattern": "a" } ] }', /^s\.json: rules\[0\]\.reply must be a string/],
    ['{ "rules": [ { "pattern": "a", "reply": "x", "flags": "g" } ] }', /^s\.json: rules\[0\]\.flags must be/],
    ['{ "rules": [ { "pattern": "a", "reply": "x", "model": "y" } ] }', /^s\.json: rules\[0\]: unknown field "model"/],
  ])('refuses %s with a message naming the file and the field', (text, message) => {
    expect(() => parseSimulatorScript(text, 's.json')).toThrow(message);
  });
});
