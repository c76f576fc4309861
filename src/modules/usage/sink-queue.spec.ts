import { DEFAULT_SINK_POLICY, UsageRecord, UsageSink, UsageSinkPolicy } from '../../plugins/sdk';
import { usageRecord } from '../../../test/support/usage-records';
import { SinkQueue } from './sink-queue';

const record = (n: number): UsageRecord => usageRecord({ createdAtMs: 1_700_000_000_000 + n, costNanos: n });

class CollectingSink implements UsageSink {
  readonly name = 'collect';
  readonly batches: UsageRecord[][] = [];
  failuresLeft = 0;
  hangNext = false;
  async write(records: readonly UsageRecord[]): Promise<void> {
    if (this.hangNext) {
      this.hangNext = false;
      return new Promise(() => undefined);
    }
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      throw new Error('database is locked');
    }
    this.batches.push([...records]);
  }
  get written() {
    return this.batches.flat();
  }
}

const policy = (p: Partial<UsageSinkPolicy>): UsageSinkPolicy => ({ ...DEFAULT_SINK_POLICY, flushIntervalMs: 10, maxRetryDelayMs: 20, ...p });

describe('SinkQueue', () => {
  it('writes a partial batch after the flush interval, in order', async () => {
    const sink = new CollectingSink();
    const q = new SinkQueue(sink, policy({ flushIntervalMs: 30 }));
    const recs = [1, 2, 3].map(record);
    for (const r of recs) await q.enqueue(r);
    expect(sink.batches).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 80));
    expect(sink.written.map((r) => r.id)).toEqual(recs.map((r) => r.id));
    expect(q.stats).toMatchObject({ queued: 0, written: 3, failedWrites: 0, dropped: 0 });
  });

  it('never hands a sink more than maxBatchSize records at once', async () => {
    const sink = new CollectingSink();
    const q = new SinkQueue(sink, policy({ maxBatchSize: 4 }));
    for (let i = 0; i < 10; i++) await q.enqueue(record(i));
    await q.flush();
    expect(sink.written).toHaveLength(10);
    expect(Math.max(...sink.batches.map((b) => b.length))).toBeLessThanOrEqual(4);
  });

  it('retries a failing batch until it is written, losing nothing (retry policy)', async () => {
    const sink = new CollectingSink();
    sink.failuresLeft = 3;
    const q = new SinkQueue(sink, policy({ onFailure: 'retry' }));
    for (let i = 0; i < 5; i++) await q.enqueue(record(i));
    await q.flush();
    expect(sink.written).toHaveLength(5);
    expect(q.stats).toMatchObject({ written: 5, failedWrites: 3, dropped: 0 });
  });

  it('drops and counts a failing batch for a drop-policy sink', async () => {
    const sink = new CollectingSink();
    sink.failuresLeft = 1;
    const q = new SinkQueue(sink, policy({ onFailure: 'drop' }));
    for (let i = 0; i < 3; i++) await q.enqueue(record(i));
    await q.flush();
    await q.enqueue(record(9));
    await q.flush();
    expect(sink.written).toHaveLength(1);
    expect(q.stats).toMatchObject({ written: 1, failedWrites: 1, dropped: 3 });
  });

  it('times out a hanging write and retries it', async () => {
    const sink = new CollectingSink();
    sink.hangNext = true;
    const q = new SinkQueue(sink, policy({ onFailure: 'retry', writeTimeoutMs: 50 }));
    await q.enqueue(record(1));
    await q.flush();
    expect(sink.written).toHaveLength(1);
    expect(q.stats.failedWrites).toBe(1);
  });

  it('makes callers wait for space when the queue is full instead of dropping', async () => {
    const sink = new CollectingSink();
    sink.failuresLeft = 2; // hold the first batch back for a while
    const q = new SinkQueue(sink, policy({ onFailure: 'retry', queueCapacity: 3, maxBatchSize: 3, maxRetryDelayMs: 40 }));
    for (let i = 0; i < 3; i++) await q.enqueue(record(i));
    let fourthAccepted = false;
    const fourth = q.enqueue(record(3)).then(() => (fourthAccepted = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(fourthAccepted).toBe(false);
    await fourth;
    await q.flush();
    expect(sink.written).toHaveLength(4);
  });

  it('gives up at the drain deadline with a retrying sink that keeps failing, and says how many', async () => {
    const sink = new CollectingSink();
    sink.failuresLeft = Number.POSITIVE_INFINITY;
    const q = new SinkQueue(sink, policy({ onFailure: 'retry' }));
    await q.enqueue(record(1));
    await q.enqueue(record(2));
    await q.drain(Date.now() + 100);
    expect(q.stats).toMatchObject({ written: 0, dropped: 2, queued: 0 });
  });

  it('with the journal: hands a batch to the sink only after beforeWrite, and reports each written batch', async () => {
    const sink = new CollectingSink();
    let release!: () => void;
    const durable = new Promise<void>((r) => (release = r));
    const reported: string[][] = [];
    const q = new SinkQueue(sink, policy({}), { beforeWrite: () => durable, written: (b) => reported.push(b.map((r) => r.id)) });
    const recs = [record(1), record(2)];
    for (const r of recs) await q.enqueue(r);
    await new Promise((r) => setTimeout(r, 50));
    expect(sink.batches).toHaveLength(0); // the journal entries are not durable yet
    release();
    await q.flush();
    expect(sink.written.map((r) => r.id)).toEqual(recs.map((r) => r.id));
    expect(reported).toEqual([recs.map((r) => r.id)]);
  });

  it('with the journal: keeps (does not drop) what a failing sink has not written at the drain deadline', async () => {
    const sink = new CollectingSink();
    sink.failuresLeft = Number.POSITIVE_INFINITY;
    const written: string[] = [];
    const q = new SinkQueue(sink, policy({ onFailure: 'retry' }), { keepAtDeadline: true, written: (b) => written.push(...b.map((r) => r.id)) });
    await q.enqueue(record(1));
    await q.enqueue(record(2));
    await q.drain(Date.now() + 100);
    expect(q.stats).toMatchObject({ written: 0, dropped: 0, kept: 2, queued: 0 });
    expect(written).toEqual([]); // nothing confirmed: the journal keeps both
  });
});
