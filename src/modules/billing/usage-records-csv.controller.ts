import { Controller, Get, Query, StreamableFile } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal } from '../auth/current-principal.decorator';
import { Principal } from '../auth/principal';
import { UsageRecordsCsvQueryDto } from './dto/usage-records-csv-query.dto';
import { UsageRecordsCsvService } from './usage-records-csv.service';

@ApiTags('usage')
@ApiBearerAuth()
@Controller('api/v1/usage')
export class UsageRecordsCsvController {
  constructor(private readonly records: UsageRecordsCsvService) {}

  @Get('records.csv')
  @ApiOperation({
    summary: 'Raw usage records in [from, to) as CSV, oldest first, streamed with constant memory',
    description: 'A user-scope key gets only its own records.',
  })
  @ApiProduces('text/csv')
  download(@Query() query: UsageRecordsCsvQueryDto, @CurrentPrincipal() principal: Principal): StreamableFile {
    const filter = this.records.filter(query, principal);
    return new StreamableFile(this.records.stream(filter), {
      type: 'text/csv; charset=utf-8',
      disposition: 'attachment; filename="usage-records.csv"',
    });
  }
}
