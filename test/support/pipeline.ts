import { createServer, Server, Socket } from 'node:net';
import { Database } from 'sqlite3';
import type { UsageRecord, UsageSink, UsageSinkPolicy } from '../../src/plugins/sdk';

/** A sink that fails every write. */
export class ThrowingSink implements UsageSink {
  readonly name = 'throwing';
  calls = 0;
  async write(): Promise<void> {
    this.calls++;
    throw new Error('sink exploded');
  }
}

/** A sink whose writes never settle (a dead remote that accepts and never answers). */
export class HangingSink implements UsageSink {
  readonly name = 'hanging';
  calls = 0;
  constructor(readonly policy: Partial<UsageSinkPolicy> = {}) {}
  write(): Promise<void> {
    this.calls++;
    return new Promise<void>(() => undefined);
  }
}

/** A sink that records what it receives, and can be held shut to simulate a slow destination. */
export class GatedSink implements UsageSink {
  readonly name: string;
  readonly received: UsageRecord[] = [];
  readonly policy: Partial<UsageSinkPolicy> = { onFailure: 'retry' };
  private gate: Promise<void> = Promise.resolve();
  private release: () => void = () => undefined;

  constructor(name = 'gated') {
    this.name = name;
  }

  hold(): void {
    this.gate = new Promise<void>((r) => (this.release = r));
  }

  resume(): void {
    this.release();
    this.gate = Promise.resolve();
  }

  async write(records: readonly UsageRecord[]): Promise<void> {
    await this.gate;
    this.received.push(...records);
  }
}

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs SQL on a separate SQLite connection (another process's view of the same file). */
export function sqlite(file: string) {
  const db = new Database(file);
  const run = (sql: string) => new Promise<void>((res, rej) => db.exec(sql, (err) => (err ? rej(err) : res())));
  const all = <T>(sql: string) => new Promise<T[]>((res, rej) => db.all(sql, (err, rows) => (err ? rej(err) : res(rows as T[]))));
  const close = () => new Promise<void>((res, rej) => db.close((err) => (err ? rej(err) : res())));
  return { run, all, close };
}

/**
 * A TCP proxy on 127.0.0.1 in front of a server (PostgreSQL): `stop()` cuts every connection
 * and refuses new ones, `start()` brings it back on the same port.
 */
export class TcpProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<number> {
    const server = createServer((client) => {
      const upstream = new Socket();
      upstream.connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(this.port, '127.0.0.1', () => res());
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
    return this.port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((res) => server.close(() => res()));
  }
}
