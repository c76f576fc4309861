import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { LlmUsage } from './entities/llm-usage.entity';
import { UsageQueryService } from './usage-query.service';
import { UsageController } from './usage.controller';
import { UsageRecordsController } from './usage-records.controller';
import { UsageRecordsService } from './usage-records.service';
import { UsageModuleBase } from './usage.module-definition';
import { UsageJournalReplayer } from './journal/usage-journal-replayer.service';
import { UsageJournal } from './journal/usage-journal.service';
import { UsageRecorder } from './usage-recorder.service';

/**
 * Usage pipeline and usage API. `UsageModule.forRoot({ sinks: [...] })` in AppModule lists
 * the built-in sink classes; plugins come from USAGE_SINK_PLUGINS.
 */
@Module({
  imports: [TypeOrmModule.forFeature([LlmUsage])],
  controllers: [UsageController, UsageRecordsController],
  providers: [UsageJournal, UsageRecorder, UsageJournalReplayer, UsageQueryService, UsageRecordsService],
  exports: [UsageJournal, UsageRecorder, UsageQueryService, TypeOrmModule],
})
export class UsageModule extends UsageModuleBase {}
