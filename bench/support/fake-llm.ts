/**
 * The local OpenAI-compatible server the call benchmarks talk to, in its own process (so its work
 * is not counted against the client's event loop). Answers at once with fixed usage: the client's
 * own cost is as large a share of each call as it can be. Prints `{"baseUrl": ...}` when listening.
 *
 *   npx ts-node --transpile-only bench/support/fake-llm.ts
 */
import { startOpenAiCompatibleServer } from '../../src/simulator/openai-compatible-server';

async function main(): Promise<void> {
  let requests: unknown[] = [];
  const server = await startOpenAiCompatibleServer({
    port: 0,
    host: '127.0.0.1',
    respond: () => {
      requests.length = 0; // the simulator keeps every request; a benchmark sends thousands
      return { content: 'ok, done.', usage: { prompt_tokens: 1_000, completion_tokens: 4 } };
    },
  });
  requests = server.requests;
  process.stdout.write(`${JSON.stringify({ baseUrl: server.baseUrl })}\n`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
