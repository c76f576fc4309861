import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CostAlert } from '../sdk';
import { formatUsd, headline } from './alert-text';
import { alertmanagerAlert } from './alertmanager.notifier';
import { postOrThrow } from './http-post';
import { signWebhook } from './webhook.notifier';

const alert: CostAlert = {
  id: '00000000-0000-4000-8000-000000000001',
  kind: 'quota_threshold',
  state: 'firing',
  ruleId: 'team-daily',
  scope: {},
  thresholdPercent: 50,
  percent: 50,
  spendUsd: null,
  limitUsd: null,
  spendTokens: 500_000,
  limitTokens: 1_000_000,
  window: { kind: 'day', start: '2026-11-20T00:00:00.000Z', end: '2026-11-21T00:00:00.000Z' },
  action: 'alert',
  firedAt: '2026-11-20T12:00:00.000Z',
  resolvedAt: null,
};

describe('notifier messages', () => {
  it('shows exact amounts without float noise or rounding', () => {
    expect(formatUsd('41.200000000')).toBe('$41.20');
    expect(formatUsd('0.000012300')).toBe('$0.0000123');
    expect(formatUsd('1000000.000000001')).toBe('$1000000.000000001');
    expect(formatUsd(null)).toBeNull();
  });

  it('describes global, token-limited rules', () => {
    expect(headline(alert)).toBe('Quota team-daily passed 50 % (global (all calls)): 500000 tokens of 1000000 tokens');
  });

  it("says a block rule refused a call when what was left could not cover it, below 100 %", () => {
    const refused: CostAlert = { ...alert, action: 'block', thresholdPercent: 100, percent: 0, spendTokens: 0 };
    expect(headline(refused)).toBe("Quota team-daily refused a call (global (all calls)): 0 tokens of 1000000 tokens spent, too little left for the call's worst-case cost");
    expect(headline({ ...refused, percent: 100, spendTokens: 1_000_000 })).toBe('Quota team-daily passed 100 % (global (all calls)): 1000000 tokens of 1000000 tokens');
  });

  it("describes a task window as the task's, with no made-up start", () => {
    const task: CostAlert = { ...alert, scope: { task_id: 't-1' }, window: { kind: 'task', start: null, end: null } };
    const am = alertmanagerAlert(task, new Date('2026-11-20T12:01:00.000Z')) as { annotations: Record<string, string> };
    expect(am.annotations.window_start).toBeUndefined();
    expect(am.annotations.description).toContain('in the task window');
    expect(JSON.stringify(am)).not.toContain('1970');
  });

  it('maps thresholds to Alertmanager severities and sets endsAt only on resolve', () => {
    const now = new Date('2026-11-20T12:01:00.000Z');
    expect(alertmanagerAlert(alert, now)).toMatchObject({ labels: { severity: 'warning', threshold: '50' }, startsAt: alert.firedAt });
    expect(alertmanagerAlert(alert, now)).not.toHaveProperty('endsAt');
    expect(alertmanagerAlert({ ...alert, thresholdPercent: 100 }, now)).toMatchObject({ labels: { severity: 'critical' } });
    const resolved = { ...alert, state: 'resolved' as const, resolvedAt: '2026-11-21T00:00:00.000Z' };
    expect(alertmanagerAlert(resolved, now)).toMatchObject({ endsAt: '2026-11-21T00:00:00.000Z' });
  });

  it('signs the timestamp with the body', () => {
    const a = signWebhook('secret-secret-secret', '{"a":1}', 1_790_000_000);
    expect(a).toMatch(/^t=1790000000,v1=[0-9a-f]{64}$/);
    expect(signWebhook('secret-secret-secret', '{"a":1}', 1_790_000_001)).not.toBe(a);
  });

  it('keeps the URL out of errors even when the receiver echoes it', async () => {
    const server = createServer((req, res) => res.writeHead(404).end(`no route for POST ${req.url}`));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T0/B0/sekrit-token`;
    try {
      const err = await postOrThrow('Slack', url, { body: '{}', headers: {}, timeoutMs: 5_000 }).catch((e: Error & { httpStatus: number }) => e);
      expect(err).toMatchObject({ httpStatus: 404, message: 'Slack answered HTTP 404: no route for POST <path>' });
    } finally {
      server.close();
    }
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const refused = await postOrThrow('Slack', `http://127.0.0.1:${port}/x/sekrit`, { body: '{}', headers: {}, timeoutMs: 5_000 }).catch((e: Error) => e);
    expect((refused as Error).message).toBe('Slack could not be reached: ECONNREFUSED');
  });
});
