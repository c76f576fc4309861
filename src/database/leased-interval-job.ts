import { Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { JobLeaseService } from './job-lease.service';

/** What a leased interval job runs and how often. */
export interface LeasedIntervalJobOptions {
  /** Name in the SchedulerRegistry. */
  readonly name: string;
  /** What the job is, for its failure log line ("usage retention failed: ..."). */
  readonly label: string;
  /** The job lease its tick takes (released at shutdown, so another replica takes over at once). */
  readonly lease: string;
  readonly intervalMs: number;
  /** Also one tick right at start. */
  readonly runAtStart: boolean;
  /** Off: no timer, no lease to release. */
  readonly enabled: boolean;
  /** One tick; it takes the lease itself. */
  readonly tick: () => Promise<unknown>;
}

/**
 * A job ticked every `intervalMs` on every replica, whose tick runs under a job lease (one replica
 * at a time): registered with @nestjs/schedule's registry, never overlapping itself (a slow tick
 * skips the next), awaited and its lease released at shutdown. Subclasses only say what to run.
 */
export abstract class LeasedIntervalJob implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger: Logger;
  private running: Promise<unknown> | null = null;

  protected constructor(
    private readonly job: LeasedIntervalJobOptions,
    private readonly leases: JobLeaseService,
    private readonly registry: SchedulerRegistry,
  ) {
    this.logger = new Logger(new.target.name);
  }

  onApplicationBootstrap(): void {
    if (!this.job.enabled) return;
    const timer = setInterval(() => this.runOnce(), this.job.intervalMs);
    timer.unref();
    this.registry.addInterval(this.job.name, timer);
    if (this.job.runAtStart) this.runOnce();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.registry.doesExist('interval', this.job.name)) this.registry.deleteInterval(this.job.name);
    await this.running;
    if (this.job.enabled) await this.leases.release(this.job.lease).catch(() => undefined);
  }

  private runOnce(): void {
    if (this.running) return; // a slow tick is not overlapped by the next
    this.running = this.job
      .tick()
      .catch((err: unknown) => this.logger.error(`${this.job.label} failed: ${(err as Error).message}`))
      .finally(() => (this.running = null));
  }
}
