import { Body, Controller, Get, HttpStatus, Param, Post, Query, Res, StreamableFile } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { createReadStream, existsSync } from 'node:fs';
import { CurrentPrincipal } from '../auth/current-principal.decorator';
import { Principal } from '../auth/principal';
import { BillingExportService } from './billing-export.service';
import { exportToJson } from './billing-export.view';
import { BillingExportFileMissingException } from './billing.exceptions';
import { BillingExportIdParamDto } from './dto/billing-export-id-param.dto';
import { CreateBillingExportDto } from './dto/create-billing-export.dto';
import { ListBillingExportsQueryDto } from './dto/list-billing-exports-query.dto';

@ApiTags('billing')
@ApiBearerAuth()
@Controller('api/v1/billing/exports')
export class BillingController {
  constructor(private readonly exporter: BillingExportService) {}

  @Post()
  @ApiOperation({
    summary: 'Export a period now: 201 with the new version, or 200 with the latest one when its data has not changed',
    description: 'A user-scope key exports only its own calls (the export is recorded for its user).',
  })
  async create(@Body() body: CreateBillingExportDto, @CurrentPrincipal() principal: Principal, @Res({ passthrough: true }) reply: FastifyReply) {
    const period = this.exporter.resolvePeriod(body.from, body.to);
    const outcome = await this.exporter.run({
      period,
      groupBy: body.group_by,
      userId: principal.scope === 'admin' ? null : principal.userId,
      createdBy: `api:${principal.keyName}`,
    });
    reply.status(outcome.created ? HttpStatus.CREATED : HttpStatus.OK);
    return { ...exportToJson(outcome.export), new_version: outcome.created };
  }

  @Get()
  @ApiOperation({ summary: 'Exports, newest first, a page at a time (a user-scope key sees only its own)' })
  async list(@Query() query: ListBillingExportsQueryDto, @CurrentPrincipal() principal: Principal) {
    const { items, nextCursor } = await this.exporter.list(principal, query.limit ?? 100, query.cursor);
    return { exports: items.map(exportToJson), next_cursor: nextCursor };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One export' })
  async get(@Param() params: BillingExportIdParamDto, @CurrentPrincipal() principal: Principal) {
    return exportToJson(await this.exporter.get(params.id, principal));
  }

  @Get(':id/download')
  @ApiOperation({ summary: 'The export file (text/csv), streamed' })
  @ApiProduces('text/csv')
  async download(@Param() params: BillingExportIdParamDto, @CurrentPrincipal() principal: Principal): Promise<StreamableFile> {
    const exp = await this.exporter.get(params.id, principal);
    const path = this.exporter.filePath(exp);
    if (!existsSync(path)) throw new BillingExportFileMissingException(exp.fileName);
    return new StreamableFile(createReadStream(path), {
      type: 'text/csv; charset=utf-8',
      disposition: `attachment; filename="${exp.fileName}"`,
      length: exp.bytes,
    });
  }
}
