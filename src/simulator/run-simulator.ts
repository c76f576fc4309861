/**
 * SIMULATOR, standalone: an OpenAI-compatible server for offline demos, answering every chat with
 * a canned text and plausible token counts. Never started by the service itself.
 *
 *   npm run simulator -- --port 8100
 *   OPENAI_BASE_URL=http://127.0.0.1:8100/v1 OPENAI_API_KEY=sim npm start
 */
import { startOpenAiCompatibleServer } from './openai-compatible-server';

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const port = Number(argValue('port') ?? 8100);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got ${argValue('port')}`);
  const content = argValue('reply') ?? 'This is a simulated answer from the asa-backend simulator.';
  const sim = await startOpenAiCompatibleServer({ port, host: argValue('host') ?? '127.0.0.1', respond: () => ({ content }) });
  console.log(`SIMULATOR (not a real model) listening: OPENAI_BASE_URL=${sim.baseUrl}`);
  const stop = () => void sim.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
