import { join } from 'node:path';
import { JobLeaseService } from '../src/database/job-lease.service';
import { QuotaEvaluationService } from '../src/modules/quotas/quota-evaluation.service';
import { createTestApp, TestApp } from './support/create-app';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';

/**
 * With several replicas, one evaluates each tick: two app instances on one database take turns
 * only through the evaluation lease (a row with owner and expiry).
 */
const leaseSuite = (database: 'sqlite' | 'postgres') => () => {
  let a: TestApp;
  let b: TestApp;
  let pg: ScratchDatabase | undefined;

  beforeAll(async () => {
    if (database === 'postgres') pg = await createScratchPostgres();
    a = await createTestApp({ env: { QUOTA_EVALUATION_INTERVAL_S: '60', ...(pg ? { DATABASE_URL: pg.url } : {}) } });
    // The second instance shares the first one's database (SQLite file or PostgreSQL).
    const url = pg ? pg.url : `sqlite:${join(a.dir, 'asa.db')}`;
    b = await createTestApp({ env: { QUOTA_EVALUATION_INTERVAL_S: '60', DATABASE_URL: url } });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await pg?.drop();
  });

  it('only the lease holder evaluates; the other takes over when the lease expires', async () => {
    const evalA = a.app.get(QuotaEvaluationService);
    const evalB = b.app.get(QuotaEvaluationService);
    const ownerA = a.app.get(JobLeaseService).owner;
    const ownerB = b.app.get(JobLeaseService).owner;
    expect(ownerA).not.toBe(ownerB);
    const t0 = Date.now() + 3_600_000; // ahead of any lease the apps' own schedulers may have taken

    const [ra, rb] = await Promise.all([evalA.tick(new Date(t0)), evalB.tick(new Date(t0))]);
    expect([ra.evaluated, rb.evaluated].filter(Boolean)).toHaveLength(1);
    const [holder, other] = ra.evaluated ? [evalA, evalB] : [evalB, evalA];
    const holderOwner = ra.evaluated ? ownerA : ownerB;
    expect((ra.evaluated ? rb : ra).lease_owner).toBe(holderOwner);

    // The holder renews it on its next tick; the other keeps standing by.
    expect((await holder.tick(new Date(t0 + 60_000))).evaluated).toBe(true);
    expect((await other.tick(new Date(t0 + 61_000))).evaluated).toBe(false);
    // The holder stops ticking (a crash): after 1.5 intervals the lease is free.
    expect((await other.tick(new Date(t0 + 60_000 + 89_000))).evaluated).toBe(false);
    const takeover = await other.tick(new Date(t0 + 60_000 + 91_000));
    expect(takeover.evaluated).toBe(true);
    expect((await holder.tick(new Date(t0 + 60_000 + 92_000))).evaluated).toBe(false);
  });
};

describe('quota evaluation lease (SQLite, two instances on one file)', leaseSuite('sqlite'));
describePostgres('quota evaluation lease', leaseSuite('postgres'));
