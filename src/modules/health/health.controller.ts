import { Controller, Get, ServiceUnavailableException } from '@nestjs/common';
import { ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckResult, HealthCheckService } from '@nestjs/terminus';
import { DatabaseUnavailableException } from '../../database/database-errors';
import { DatabaseHealthIndicator } from './database-health.indicator';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: DatabaseHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  @ApiOperation({
    summary: 'Liveness and database check',
    description:
      '200 when the database answers (and, on SQLite, can take writes); otherwise 503 with Retry-After, code DATABASE_UNAVAILABLE ' +
      'and each check in `details`.',
  })
  @ApiServiceUnavailableResponse({ description: 'The database does not answer, or (SQLite) another process holds its write lock' })
  async check(): Promise<HealthCheckResult> {
    const checks = [() => this.db.reads('database')];
    if (this.db.checksWrites) checks.push(() => this.db.writes('database_writes'));
    try {
      return await this.health.check(checks);
    } catch (err) {
      // Terminus answers a failed check with its own 503; give it the shape, code and Retry-After of every other outage answer.
      if (!(err instanceof ServiceUnavailableException)) throw err;
      const result = err.getResponse() as HealthCheckResult;
      const down = Object.entries(result.error ?? {}).map(([key, v]) => `${key}: ${String((v as { message?: unknown }).message ?? 'down')}`);
      throw new DatabaseUnavailableException(down.join('; ') || 'health check failed', result.details);
    }
  }
}
