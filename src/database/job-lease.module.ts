import { Module } from '@nestjs/common';
import { JobLeaseService } from './job-lease.service';

/**
 * The database lease for jobs that run once per tick across replicas (quota evaluation, scheduled
 * billing exports). Each importing module gets the same service; its owner names this process.
 */
@Module({
  providers: [JobLeaseService],
  exports: [JobLeaseService],
})
export class JobLeaseModule {}
