import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { FakeOpenAi } from './fixtures/fake-openai';
import { bearer, writeApiKeysFile } from './support/api-keys';
import { sqlite, waitFor } from './support/pipeline';
import { sandboxReachableTempDir } from './support/scratch';
import { buildService, freePort, ServiceProcess, startService, waitForHttp } from './support/service-process';

const USER_KEY = 'asa_gateway_crash_user_key';
const CLIENTS = 30;

interface Answered {
  id: string;
  streamed: boolean;
}

/**
 * Clients that call the gateway back to back, plain and streamed, until it dies. A call counts as
 * answered when the client has it whole: a plain body that parses, or a stream that reached [DONE].
 */
async function callUntilDead(base: string, answered: Answered[], stop: { dead: boolean }): Promise<void> {
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let i = 0; !stop.dead; i++) {
        const streamed = (c + i) % 2 === 1;
        try {
          const res = await fetch(`${base}/v1/chat/completions`, {
            method: 'POST',
            headers: { ...bearer(USER_KEY), 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `call ${c}.${i}` }], stream: streamed }),
          });
          const id = res.headers.get('x-asa-request-id');
          const text = await res.text();
          if (res.status !== 200 || !id) continue;
          if (streamed ? text.includes('data: [DONE]') : JSON.parse(text).choices) answered.push({ id, streamed });
        } catch {
          // the service died under this call: not answered
        }
      }
    }),
  );
}

beforeAll(() => buildService(), 300_000);

describe('gateway: kill -9 under load (SQLite, real process)', () => {
  let dir: string;
  let fake: FakeOpenAi;
  beforeAll(async () => {
    dir = sandboxReachableTempDir('asa-gateway-crash-');
    fake = await FakeOpenAi.start({ defaultReply: { content: 'a short answer of a few words', chunkDelayMs: 2 } });
  });
  afterAll(async () => {
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every call a client received whole has a success record after a kill -9 and a restart, never an interrupted one', async () => {
    const port = await freePort();
    const env = {
      PORT: String(port),
      DATABASE_URL: `sqlite:${join(dir, 'asa.db')}`,
      USAGE_JOURNAL_DIR: join(dir, 'journal'),
      OPENAI_BASE_URL: fake.baseUrl,
      OPENAI_API_KEY: 'sk-test',
      OPENAI_MAX_RETRIES: '0',
      API_KEYS_FILE: writeApiKeysFile(dir, [{ name: 'user', key: USER_KEY, userId: 'crash-user' }]),
      TASK_WORKSPACE_DIR: join(dir, 'workspaces'),
    };
    const base = `http://127.0.0.1:${port}`;
    let svc: ServiceProcess = startService({ cwd: dir, env });
    await waitForHttp(`${base}/health`, 60_000, svc);

    const answered: Answered[] = [];
    const stop = { dead: false };
    const load = callUntilDead(base, answered, stop);
    await waitFor('300 answered calls', () => answered.length >= 300, 60_000);
    svc.child.kill('SIGKILL');
    await svc.exited;
    stop.dead = true;
    await load;
    const atKill = [...answered];

    svc = startService({ cwd: dir, env });
    try {
      await waitForHttp(`${base}/health`, 60_000, svc);
      const rows = async () => {
        const db = sqlite(join(dir, 'asa.db'));
        try {
          return await db.all<{ id: string; status: string; error_type: string | null }>('SELECT id, status, error_type FROM llm_usage');
        } finally {
          await db.close();
        }
      };
      const want = new Set(atKill.map((a) => a.id));
      // The replay of the journal writes the records the kill left in memory; wait for all of them.
      await waitFor('a record of every answered call', async () => (await rows()).filter((r) => want.has(r.id)).length === want.size, 60_000);
      const byId = new Map((await rows()).map((r) => [r.id, r]));
      const wrong = atKill.filter((a) => byId.get(a.id)?.status !== 'success').map((a) => ({ ...a, ...byId.get(a.id) }));
      expect(wrong, `${wrong.length} of ${atKill.length} answered calls not recorded as successes`).toEqual([]);
      // And nothing was recorded twice.
      const all = await rows();
      expect(new Set(all.map((r) => r.id)).size).toBe(all.length);
    } finally {
      await svc.stop();
    }
  }, 240_000);
});
