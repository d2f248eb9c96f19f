import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import {
  ConflictError,
  FieldError,
  JobName,
  NotFoundError,
  TooLargeError,
  type DatasetInfo,
  type ProfileDatasetJobData,
} from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { JobProducer } from '@tq/queue';
import { DatasetStore } from '@tq/storage';
import { JobEventsService, type JobEvent } from '../jobs/job-events.service';
import { JobIds } from '../jobs/job-id';
import { jobMetaFor } from '../jobs/job-meta';
import { JobsService } from '../jobs/jobs.service';
import { TenantQuotas } from '../quotas/tenant-quotas.service';
import { featureColumnsOf, receiveUpload } from './multipart-upload';

/** How often a waiting upload re-reads its dataset, in case a job event was missed (a reconnecting stream). */
const POLL_MS = 1000;
/** A profiling dataset whose job cannot be found is lost only past this age (the job is enqueued after it). */
const LOST_AFTER_MS = 10_000;

/**
 * POST /v1/datasets: store the file (streamed), enqueue its profiling job, and by default wait
 * for the job to end, so the answer is the profiled dataset or the 4xx its file earned.
 */
@Injectable()
export class DatasetUploads {
  constructor(
    private readonly datasets: DatasetStore,
    private readonly producer: JobProducer,
    private readonly events: JobEventsService,
    private readonly jobs: JobsService,
    private readonly ids: JobIds,
    private readonly quotas: TenantQuotas,
  ) {}

  /**
   * Stores the upload as a dataset of `tenant`, profiled by a job of that tenant. `clientGone`
   * aborts the wait (not the job) when the client hangs up: nobody reads the answer.
   */
  async upload(
    req: Request,
    tenant: string,
    wait: boolean,
    clientGone?: AbortSignal,
  ): Promise<{ status: 201 | 202; info: DatasetInfo }> {
    const config = loadConfig();
    // Before a byte is received: a tenant at maxStoredBytes gets its 429 at once (an upload that
    // starts under the limit may end over it, by at most MAX_UPLOAD_BYTES).
    await this.quotas.checkStoredBytes(tenant);
    const datasets = this.datasets.forTenant(tenant);
    const jobId = this.ids.issue(JobName.ProfileDataset);
    const { info, fields } = await receiveUpload(req, datasets, { maxBytes: config.MAX_UPLOAD_BYTES, jobId });
    const featureColumns = featureColumnsOf(fields);
    const job: ProfileDatasetJobData = {
      datasetId: info.id,
      format: info.format === 'jsonl' ? 'jsonl' : 'csv',
      ...(fields.labelColumn ? { labelColumn: fields.labelColumn } : {}),
      ...(featureColumns ? { featureColumns } : {}),
      ...(fields.columns ? { columns: fields.columns } : {}),
      ...(fields.task ? { task: fields.task } : {}),
    };
    // Listening before the job exists: a fast job's end cannot slip past.
    const ended = wait ? this.jobEnd(jobId, info.id, datasets, config.DATASET_PROFILE_WAIT_MS, clientGone) : undefined;
    const header = req.headers['x-request-id'];
    const meta = jobMetaFor(typeof header === 'string' ? header : undefined, tenant);
    try {
      await this.producer.add(JobName.ProfileDataset, job, meta, { jobId });
    } catch (err) {
      ended?.stop();
      await datasets.remove(info.id); // never profiled, it would stay "profiling" for ever
      throw err;
    }
    if (!ended) return { status: 202, info };
    await ended.done;
    const final = await this.current(await datasets.get(info.id), datasets);
    if (final.status === 'failed' && final.error) throw storedError(final.error);
    return { status: final.status === 'ready' ? 201 : 202, info: final };
  }

  /**
   * A dataset as it stands. Whatever ended its profiling job without marking it is seen here and
   * marked failed instead of leaving it "profiling" for ever: a job cancelled while it waited
   * (409; an active one marks it itself), a job that failed for good before the worker's clean-up
   * ran (a stalled worker), or a job gone from Redis (removed, flushed). `datasets`: the store of
   * the dataset's tenant.
   */
  async current(info: DatasetInfo, datasets: DatasetStore): Promise<DatasetInfo> {
    if (info.status !== 'profiling' || !info.jobId) return info;
    let state: string | undefined;
    try {
      // The system's look at its own job (the dataset is the tenant's already): no scope.
      state = (await this.jobs.view(info.jobId, undefined)).state;
    } catch (err) {
      // The job is enqueued just after its dataset is stored: too young, it may not exist yet.
      const young = Date.now() - Date.parse(info.createdAt) < LOST_AFTER_MS;
      if (!(err instanceof NotFoundError) || young) return info;
    }
    // Settling races the worker (a cancel it has seen, a job that ended just now): whoever wrote
    // first stands, and the dataset is answered as that writer left it.
    if (state === 'cancelled') {
      const cancelled = { field: 'id', message: 'profiling was cancelled', status: 409 };
      return (await datasets.markFailed(info.id, cancelled)).info;
    }
    if (state !== undefined && state !== 'failed') return info;
    const message = `its profiling job ${state === undefined ? 'is gone' : 'failed'}; upload the file again`;
    return (await datasets.markFailed(info.id, { field: 'id', message, status: 500 })).info;
  }

  /** Resolves when the job ends (event, or its dataset no longer profiling) or after `timeoutMs`. */
  private jobEnd(
    jobId: string,
    datasetId: string,
    datasets: DatasetStore,
    timeoutMs: number,
    clientGone?: AbortSignal,
  ): { done: Promise<void>; stop: () => void } {
    let stop = () => undefined as void;
    const done = new Promise<void>((resolve) => {
      const onEvent = (e: JobEvent) => {
        if (e.jobId === jobId && (e.kind === 'completed' || e.kind === 'failed' || e.kind === 'removed')) stop();
      };
      const poll = setInterval(() => {
        void datasets.get(datasetId).then(
          (d) => d.status !== 'profiling' && stop(),
          () => stop(),
        );
      }, POLL_MS);
      const timer = setTimeout(() => stop(), timeoutMs);
      const onGone = () => stop();
      stop = () => {
        this.events.off('event', onEvent);
        clientGone?.removeEventListener('abort', onGone);
        clearInterval(poll);
        clearTimeout(timer);
        resolve();
      };
      this.events.on('event', onEvent);
      if (clientGone?.aborted) stop();
      else clientGone?.addEventListener('abort', onGone);
    });
    return { done, stop: () => stop() };
  }
}

/** The error a failed profile stored, as the TqError of its status (the error filter answers it). */
function storedError(error: { field: string; message: string; status: number }): Error {
  switch (error.status) {
    case 400:
      return new FieldError(error.field, error.message);
    case 404:
      return new NotFoundError(error.field, error.message);
    case 409:
      return new ConflictError(error.field, error.message);
    case 413:
      return new TooLargeError(error.field, error.message);
    default:
      return new Error(`dataset profiling failed: ${error.field}: ${error.message}`);
  }
}
