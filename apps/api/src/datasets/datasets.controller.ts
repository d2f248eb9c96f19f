import { Controller, Get, Param, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { z } from 'zod';
import {
  BUILTIN_DATASETS,
  COLUMN_KINDS,
  TASKS,
  datasetInfoSchema,
  datasetListSchema,
  type DatasetInfo,
  type DatasetList,
} from '@tq/contracts';
import { builtinDatasetInfo } from '@tq/ml';
import { DatasetNotFoundError, DatasetStore } from '@tq/storage';
import { Scope, type TenantScope } from '../auth/tenant-scope';
import { notFoundAs } from '../common/not-found-as';
import { ErrorResponses, JsonResponse, QueryFrom } from '../common/openapi';
import { ZodPipe } from '../common/zod-body.pipe';
import { RedisReady } from '../redis/redis-ready.guard';
import { DatasetUploads } from './dataset-uploads.service';

const uploadQuerySchema = z
  .object({
    /** "false": answer 202 at once with the dataset still profiling (GET it, or its jobId, later). */
    wait: z.enum(['true', 'false']).default('true').describe('wait for the profile (default) or answer 202 at once'),
  })
  .strict();

@ApiTags('datasets')
@Controller('v1/datasets')
export class DatasetsController {
  constructor(
    private readonly datasets: DatasetStore,
    private readonly uploads: DatasetUploads,
  ) {}

  /**
   * Multipart: `file` (CSV with a header row, JSON lines, or a JSON array of objects), optional `labelColumn`, `featureColumns`
   * (comma-separated), `columns` (JSON overrides), `task`, `name`. The file streams to the store; a
   * worker profiles it.
   */
  @Post()
  // Before the file is received: a Redis that is away would leave it stored with no job to profile it.
  @UseGuards(RedisReady)
  @ApiOperation({ summary: 'Upload a table (CSV, JSON lines or a JSON array); answers with its profile' })
  @ApiConsumes('multipart/form-data')
  @ApiBody({
    schema: {
      type: 'object',
      required: ['file'],
      properties: {
        file: {
          type: 'string',
          format: 'binary',
          description:
            '.csv or .tsv (header row; separated by commas, semicolons, tabs or pipes: the one the header holds most), .jsonl / .ndjson (JSON lines), .json: JSON lines or a JSON array of objects',
        },
        labelColumn: { type: 'string', description: 'the column to learn; absent for a table only predicted on' },
        featureColumns: { type: 'string', description: 'comma-separated; every other column but the label is ignored' },
        columns: {
          type: 'string',
          description: `JSON: per column one of ${[...COLUMN_KINDS.filter((k) => k !== 'text' && k !== 'constant'), 'ignore'].join(', ')}`,
          example: '{"Name": "ignore", "Cylinders": "categorical"}',
        },
        task: { type: 'string', enum: [...TASKS] },
        name: { type: 'string' },
      },
    },
  })
  @QueryFrom(uploadQuerySchema)
  @JsonResponse(201, datasetInfoSchema, 'stored and profiled: status "ready" with its profile')
  @JsonResponse(202, datasetInfoSchema, 'stored, profiling (wait=false, or the wait ran out): GET it later')
  @ErrorResponses(400, 409, 413, 429)
  async upload(
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
    @Query(new ZodPipe(uploadQuerySchema)) query: z.output<typeof uploadQuerySchema>,
    @Scope() scope: TenantScope,
  ): Promise<DatasetInfo> {
    // "close" before the answer is written: the client hung up, so the upload stops waiting for the profile.
    const clientGone = new AbortController();
    res.once('close', () => clientGone.abort());
    const { status, info } = await this.uploads.upload(req, scope.tenant, query.wait === 'true', clientGone.signal);
    res.status(status);
    return info;
  }

  @Get()
  @JsonResponse(
    200,
    datasetListSchema,
    "the built-in datasets, then the tenant's uploaded ones (an admin without X-Tenant: every tenant's), oldest first, with status, profile and tenant",
  )
  async list(@Scope() scope: TenantScope): Promise<DatasetList> {
    const tenants = scope.all ? await this.datasets.store.tenants() : [scope.tenant];
    const uploaded = await Promise.all(
      tenants.map(async (tenant) => {
        const datasets = this.datasets.forTenant(tenant);
        const infos = await datasets.list();
        return Promise.all(infos.map(async (info) => ({ ...(await this.uploads.current(info, datasets)), tenant })));
      }),
    );
    const all = uploaded.flat().sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    return [...BUILTIN_DATASETS.map(builtinDatasetInfo), ...all];
  }

  /** An id of another tenant's dataset answers 404 as one that does not exist: the store is the tenant's. */
  @Get(':id')
  @JsonResponse(200, datasetInfoSchema, 'the dataset: status (profiling, ready, failed), profile or error')
  @ErrorResponses(404)
  async get(@Param('id') id: string, @Scope() scope: TenantScope): Promise<DatasetInfo> {
    const builtin = BUILTIN_DATASETS.find((name) => name === id);
    if (builtin) return builtinDatasetInfo(builtin);
    const datasets = this.datasets.forTenant(scope.tenant);
    return this.uploads.current(await datasets.get(id).catch(notFoundAs(DatasetNotFoundError, 'id')), datasets);
  }
}
