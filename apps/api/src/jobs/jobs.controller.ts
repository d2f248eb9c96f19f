import { Body, Controller, Delete, Get, Headers, HttpCode, NotFoundException, Param, Post, Query, Res, Sse, type MessageEvent } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Observable } from 'rxjs';
import { compressRequestSchema, inferRequestSchema, jobListQuerySchema, trainRequestSchema, JobName, type CompressRequest, type InferRequest, type JobListQuery, type JobView, type TrainRequest } from '@tq/contracts';
import { ArtifactStore } from '@tq/storage';
import { openApiSchema } from '../common/openapi';
import { sendStream } from '../common/send-stream';
import { ZodPipe } from '../common/zod-body.pipe';
import { JobEventsService, type JobEvent } from './job-events.service';
import { JobsService } from './jobs.service';
import { SubmissionChecks } from './submission-checks.service';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

@ApiTags('jobs')
@Controller('v1/jobs')
export class JobsController {
  constructor(private readonly jobs: JobsService, private readonly checks: SubmissionChecks, private readonly events: JobEventsService, private readonly store: ArtifactStore) {}

  @Post('train') @HttpCode(202) @ApiOperation({ summary: 'Train a model (optionally data-parallel)' }) @ApiBody({ schema: openApiSchema(trainRequestSchema) })
  async train(@Body(new ZodPipe(trainRequestSchema)) body: TrainRequest, @Headers('idempotency-key') key?: string) {
    await this.checks.train(body);
    return this.jobs.submit(JobName.Train, body, key);
  }

  @Post('compress') @HttpCode(202) @ApiOperation({ summary: 'Compress a model version' }) @ApiBody({ schema: openApiSchema(compressRequestSchema) })
  async compress(@Body(new ZodPipe(compressRequestSchema)) body: CompressRequest, @Headers('idempotency-key') key?: string) {
    await this.checks.compress(body);
    return this.jobs.submit(JobName.Compress, body, key);
  }

  @Post('infer') @HttpCode(202) @ApiOperation({ summary: 'Batch inference over instances or a dataset' }) @ApiBody({ schema: openApiSchema(inferRequestSchema) })
  async infer(@Body(new ZodPipe(inferRequestSchema)) body: InferRequest, @Headers('idempotency-key') key?: string) {
    await this.checks.infer(body);
    return this.jobs.submit(JobName.Infer, body, key);
  }

  @Get()
  list(@Query(new ZodPipe(jobListQuerySchema)) query: JobListQuery) {
    return this.jobs.list(query);
  }

  @Get(':id')
  get(@Param('id') id: string): Promise<JobView> {
    return this.jobs.view(id);
  }

  @Delete(':id')
  cancel(@Param('id') id: string): Promise<JobView> {
    return this.jobs.cancel(id);
  }

  /** Infer output: JSONL, one line per input row, in input order. */
  @Get(':id/output')
  async output(@Param('id') id: string, @Res() res: Response): Promise<void> {
    const view = await this.jobs.view(id);
    if (view.type !== 'infer' || view.state !== 'completed') throw new NotFoundException({ statusCode: 404, message: `id: job ${id} has no output (${view.type}, ${view.state})` });
    sendStream(res, await this.store.openOutput(id), 'application/x-ndjson');
  }

  /** Server-Sent Events: the current view, then every change, until the job ends. */
  @Sse(':id/events')
  async stream(@Param('id') id: string): Promise<Observable<MessageEvent>> {
    const first = await this.jobs.view(id);
    return new Observable<MessageEvent>((subscriber) => {
      let closed = false;
      const send = (view: JobView) => {
        if (closed) return;
        subscriber.next({ type: 'job', data: view });
        if (TERMINAL.has(view.state)) { closed = true; subscriber.complete(); }
      };
      const onEvent = (event: JobEvent) => {
        if (event.jobId !== id) return;
        if (event.kind === 'progress') subscriber.next({ type: 'progress', data: event.data as object });
        else void this.jobs.view(id).then(send, (err: unknown) => subscriber.error(err));
      };
      this.events.on('event', onEvent);
      send(first);
      // A job that ended between the first read and the subscription would otherwise never be reported.
      if (!closed) void this.jobs.view(id).then((v) => TERMINAL.has(v.state) && send(v), () => undefined);
      return () => { closed = true; this.events.off('event', onEvent); };
    });
  }
}
