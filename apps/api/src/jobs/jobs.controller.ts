import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Post,
  Query,
  Res,
  Sse,
  UseGuards,
  type MessageEvent,
} from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Observable } from 'rxjs';
import {
  NotFoundError,
  compressRequestSchema,
  inferRequestSchema,
  jobListQuerySchema,
  jobListSchema,
  jobSubmittedSchema,
  jobViewSchema,
  trainRequestSchema,
  JobName,
  type CompressRequest,
  type InferRequest,
  type JobList,
  type JobListQuery,
  type JobSubmitted,
  type JobView,
  type TrainRequest,
} from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { ArtifactStore } from '@tq/storage';
import { ERRORS_EXT } from '@tq/jobs';
import { Scope, type TenantScope } from '../auth/tenant-scope';
import { ErrorResponses, JsonBody, JsonResponse, QueryFrom, RawResponse } from '../common/openapi';
import { COMPRESS_EXAMPLE, INFER_EXAMPLE, TRAIN_EXAMPLE } from '../common/openapi-examples';
import { sendServed, serveOptions } from '../common/send-stream';
import { ZodPipe } from '../common/zod-body.pipe';
import { TenantQuotas } from '../quotas/tenant-quotas.service';
import { RedisReady } from '../redis/redis-ready.guard';
import { AcceptsIdempotencyKey, IdempotencyKey } from './idempotency-key';
import { JobEventsService, type JobEvent } from './job-events.service';
import { JobsService } from './jobs.service';
import { AcceptsRequestId, RequestId } from './request-id';
import { SubmissionChecks } from './submission-checks.service';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

@ApiTags('jobs')
@Controller('v1/jobs')
@UseGuards(RedisReady)
export class JobsController {
  constructor(
    private readonly jobs: JobsService,
    private readonly checks: SubmissionChecks,
    private readonly events: JobEventsService,
    private readonly store: ArtifactStore,
    private readonly quotas: TenantQuotas,
  ) {}

  @Post('train')
  @HttpCode(202)
  @ApiOperation({ summary: 'Train a model (optionally data-parallel)' })
  @JsonBody(trainRequestSchema, TRAIN_EXAMPLE)
  @AcceptsIdempotencyKey()
  @AcceptsRequestId()
  @JsonResponse(202, jobSubmittedSchema, 'queued (or, for a repeated Idempotency-Key, the first job)')
  @ErrorResponses(400, 404, 409, 413, 429)
  async train(
    @Body(new ZodPipe(trainRequestSchema)) body: TrainRequest,
    @Scope() scope: TenantScope,
    @IdempotencyKey() key?: string,
    @RequestId() requestId?: string,
  ): Promise<JobSubmitted> {
    await this.checks.train(body, scope.tenant);
    // It writes a model: not while the tenant stores its maxStoredBytes already.
    await this.quotas.checkStoredBytes(scope.tenant);
    return this.jobs.submit(JobName.Train, body, scope.tenant, { idempotencyKey: key, requestId });
  }

  @Post('compress')
  @HttpCode(202)
  @ApiOperation({ summary: 'Compress a model version' })
  @JsonBody(compressRequestSchema, COMPRESS_EXAMPLE)
  @AcceptsIdempotencyKey()
  @AcceptsRequestId()
  @JsonResponse(202, jobSubmittedSchema, 'queued')
  @ErrorResponses(400, 404, 409, 429)
  async compress(
    @Body(new ZodPipe(compressRequestSchema)) body: CompressRequest,
    @Scope() scope: TenantScope,
    @IdempotencyKey() key?: string,
    @RequestId() requestId?: string,
  ): Promise<JobSubmitted> {
    await this.checks.compress(body, scope.tenant);
    // It writes a model: not while the tenant stores its maxStoredBytes already.
    await this.quotas.checkStoredBytes(scope.tenant);
    return this.jobs.submit(JobName.Compress, body, scope.tenant, { idempotencyKey: key, requestId });
  }

  @Post('infer')
  @HttpCode(202)
  @ApiOperation({ summary: 'Batch inference over instances or a dataset' })
  @JsonBody(inferRequestSchema, INFER_EXAMPLE)
  @AcceptsIdempotencyKey()
  @AcceptsRequestId()
  @JsonResponse(202, jobSubmittedSchema, 'queued')
  @ErrorResponses(400, 404, 409, 413, 429)
  async infer(
    @Body(new ZodPipe(inferRequestSchema)) body: InferRequest,
    @Scope() scope: TenantScope,
    @IdempotencyKey() key?: string,
    @RequestId() requestId?: string,
  ): Promise<JobSubmitted> {
    await this.checks.infer(body, scope.tenant);
    return this.jobs.submit(JobName.Infer, body, scope.tenant, { idempotencyKey: key, requestId });
  }

  @Get()
  @ApiOperation({ summary: 'List jobs, newest first' })
  @QueryFrom(jobListQuerySchema)
  @JsonResponse(200, jobListSchema, 'one page of jobs')
  @ErrorResponses(400)
  list(@Query(new ZodPipe(jobListQuerySchema)) query: JobListQuery, @Scope() scope: TenantScope): Promise<JobList> {
    return this.jobs.list(query, scope);
  }

  @Get(':id')
  @JsonResponse(200, jobViewSchema, 'the job')
  @ErrorResponses(404, 410)
  get(@Param('id') id: string, @Scope() scope: TenantScope): Promise<JobView> {
    return this.jobs.view(id, scope);
  }

  @Delete(':id')
  @ApiOperation({ summary: 'Cancel a job: a waiting one is removed, an active one stops at its next batch' })
  @JsonResponse(200, jobViewSchema, 'the job after the request')
  @ErrorResponses(404, 409, 410)
  cancel(@Param('id') id: string, @Scope() scope: TenantScope): Promise<JobView> {
    return this.jobs.cancel(id, scope);
  }

  /** Infer output: JSONL, one line per input row, in input order. */
  @Get(':id/output')
  @RawResponse('application/x-ndjson', 'one JSON line per input row: {"scores":[...],"classIndex":n,"label":"..."}')
  @ErrorResponses(404)
  async output(@Param('id') id: string, @Scope() scope: TenantScope, @Res() res: Response): Promise<void> {
    const view = await this.jobs.view(id, scope);
    if (view.type !== JobName.Infer || view.state !== 'completed')
      throw new NotFoundError('id', `job ${id} has no output (${view.type}, ${view.state})`);
    const served = await this.store
      .forTenant(view.tenant)
      .serveOutput(id, serveOptions(loadConfig().DOWNLOAD_REDIRECT_SECONDS));
    sendServed(res, served, 'application/x-ndjson');
  }

  /** A table's infer job: its failed rows, one JSON line each ({"row":n,"column":"c","message":"..."}), in row order. */
  @Get(':id/errors')
  @RawResponse('application/x-ndjson', 'one JSON line per failed row: {"row":n,"column":"...","message":"..."}')
  @ErrorResponses(404)
  async errors(@Param('id') id: string, @Scope() scope: TenantScope, @Res() res: Response): Promise<void> {
    const view = await this.jobs.view(id, scope);
    if (view.type !== JobName.Infer || view.state !== 'completed')
      throw new NotFoundError('id', `job ${id} has no errors (${view.type}, ${view.state})`);
    let served;
    try {
      served = await this.store
        .forTenant(view.tenant)
        .serveOutput(id, serveOptions(loadConfig().DOWNLOAD_REDIRECT_SECONDS), ERRORS_EXT);
    } catch (err) {
      if (err instanceof NotFoundError)
        throw new NotFoundError('id', `job ${id} has no errors: every row was predicted`);
      throw err;
    }
    sendServed(res, served, 'application/x-ndjson');
  }

  /** Server-Sent Events: the current view, then every change, until the job ends. */
  @Sse(':id/events')
  @RawResponse(
    'text/event-stream',
    '"job" events carry the job view (the first at once, the last in a terminal state); "progress" events carry progress',
  )
  @ErrorResponses(404)
  async stream(@Param('id') id: string, @Scope() scope: TenantScope): Promise<Observable<MessageEvent>> {
    const first = await this.jobs.view(id, scope);
    return new Observable<MessageEvent>((subscriber) => {
      let closed = false;
      const send = (view: JobView) => {
        if (closed) return;
        subscriber.next({ type: 'job', data: view });
        if (TERMINAL.has(view.state)) {
          closed = true;
          subscriber.complete();
        }
      };
      const onEvent = (event: JobEvent) => {
        if (event.jobId !== id) return;
        if (event.kind === 'progress') subscriber.next({ type: 'progress', data: event.data as object });
        else void this.jobs.view(id, scope).then(send, (err: unknown) => subscriber.error(err));
      };
      this.events.on('event', onEvent);
      send(first);
      // A job that ended between the first read and the subscription would otherwise never be reported.
      if (!closed)
        void this.jobs.view(id, scope).then(
          (v) => TERMINAL.has(v.state) && send(v),
          () => undefined,
        );
      return () => {
        closed = true;
        this.events.off('event', onEvent);
      };
    });
  }
}
