import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { InjectReadDataSource, InjectWriteDataSource } from '../../database/data-sources';

/** Owners kept in memory: an owner never changes once set, so a cached answer never goes stale. */
const CACHED_OWNERS = 50_000;

/**
 * Who a task id named by a gateway call belongs to.
 *
 * A task of the task runner belongs to its user. Any other id belongs to the user of the first
 * call made under it: that call claims it in `gateway_tasks` before it is sent upstream (one
 * INSERT that does nothing if the id is taken, atomic on SQLite's file lock and on PostgreSQL's
 * unique index, so across replicas too), and every later call reads the owner the claim left.
 * Ids are therefore first come, first served: a user that finds an id taken gets a 403 and picks
 * another. Answers are cached, so only the first call under an id in a process touches the database.
 */
@Injectable()
export class GatewayTaskOwners {
  private readonly owners = new Map<string, string | null>();

  constructor(
    @InjectReadDataSource() private readonly read: DataSource,
    @InjectWriteDataSource() private readonly write: DataSource,
  ) {}

  /** The id's owner (null: no user), claiming it for `claimant` if nobody has it yet. */
  async claim(taskId: string, claimant: string | null): Promise<string | null> {
    const cached = this.owners.get(taskId);
    if (cached !== undefined) return cached;
    const task = await this.read
      .createQueryBuilder()
      .select('t.user_id', 'user_id')
      .from('tasks', 't')
      .where('t.id = :taskId', { taskId })
      .getRawOne<{ user_id: string | null }>();
    const owner = task ? task.user_id : await this.claimGatewayTask(taskId, claimant);
    this.remember(taskId, owner);
    return owner;
  }

  private async claimGatewayTask(taskId: string, claimant: string | null): Promise<string | null> {
    await this.write
      .createQueryBuilder()
      .insert()
      .into('gateway_tasks', ['task_id', 'user_id', 'created_at_ms'])
      .values({ task_id: taskId, user_id: claimant, created_at_ms: Date.now() })
      .orIgnore()
      .execute();
    // Read on the connection that wrote: on SQLite the read-only one may not see the claim yet.
    const row = await this.write
      .createQueryBuilder()
      .select('g.user_id', 'user_id')
      .from('gateway_tasks', 'g')
      .where('g.task_id = :taskId', { taskId })
      .getRawOne<{ user_id: string | null }>();
    if (!row) throw new Error(`task id "${taskId}" was claimed but its claim cannot be read back`);
    return row.user_id;
  }

  private remember(taskId: string, owner: string | null): void {
    if (this.owners.size >= CACHED_OWNERS) this.owners.delete(this.owners.keys().next().value as string);
    this.owners.set(taskId, owner);
  }
}
