/**
 * SIMULATOR, standalone: an OpenAI-compatible server for offline trials, with plausible token
 * counts. Never started by the service itself. What it answers to a chat:
 *
 *   npm run simulator                          the built-in script: fixes for the bundled sample
 *                                              repository (demo/sample-repo), as in `npm run demo`
 *   npm run simulator -- --script my.json      the first rule of the file whose pattern matches the prompt
 *   npm run simulator -- --reply "some text"   always the same text
 *
 *   OPENAI_BASE_URL=http://127.0.0.1:8100/v1 OPENAI_API_KEY=sim npm start
 */
import { parseArgs } from 'node:util';
import { demoResponder } from '../demo/demo-responder';
import { Responder, startOpenAiCompatibleServer } from './openai-compatible-server';
import { loadSimulatorScript, scriptedResponder } from './scripted-responder';

const USAGE = 'usage: npm run simulator -- [--port 8100] [--host 127.0.0.1] [--script file.json | --reply "text"]';

function options(): { port: number; host: string; respond: Responder; mode: string } {
  let values: { port?: string; host?: string; script?: string; reply?: string };
  try {
    ({ values } = parseArgs({
      options: { port: { type: 'string' }, host: { type: 'string' }, script: { type: 'string' }, reply: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${USAGE}`);
  }
  const port = Number(values.port ?? 8100);
  if (!/^\d+$/.test(values.port ?? '8100') || port > 65535) throw new Error(`--port must be 0..65535, got ${values.port}`);
  if (values.script !== undefined && values.reply !== undefined) throw new Error(`give --script or --reply, not both\n${USAGE}`);
  if (values.script !== undefined) {
    const script = loadSimulatorScript(values.script);
    return { port, host: values.host ?? '127.0.0.1', respond: scriptedResponder(script), mode: `script ${values.script} (${script.rules.length} rules)` };
  }
  if (values.reply !== undefined) {
    const content = values.reply;
    return { port, host: values.host ?? '127.0.0.1', respond: () => ({ content }), mode: 'a fixed reply (--reply)' };
  }
  return { port, host: values.host ?? '127.0.0.1', respond: demoResponder, mode: 'the built-in script (fixes for demo/sample-repo)' };
}

async function main(): Promise<void> {
  const opts = options();
  const sim = await startOpenAiCompatibleServer({ port: opts.port, host: opts.host, respond: opts.respond });
  console.log(`SIMULATOR (not a real model), answering chats with ${opts.mode}\nlistening: OPENAI_BASE_URL=${sim.baseUrl}`);
  const stop = () => void sim.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
