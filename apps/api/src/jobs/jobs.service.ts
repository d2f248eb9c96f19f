import { Injectable } from '@nestjs/common';
import type { Job } from 'bullmq';
import {
  CANCELLED_REASON,
  ConflictError,
  GoneError,
  NotFoundError,
  JOB_STATES,
  JobName,
  PUBLIC_JOB_TYPES,
  QUEUE_OF_JOB,
  type CompressRequest,
  type InferJobData,
  type InferRequest,
  type JobList,
  type JobListQuery,
  type JobSubmitted,
  type JobView,
  type PublicJobType,
  type TrainRequest,
} from '@tq/contracts';
import { loadConfig } from '@tq/config';
import {
  JobProducer,
  RedisClientHolder,
  STATES_OF,
  undoTombstone,
  isCommandTimeout,
  listTombstones,
  readJobView,
  readLocksHeld,
  readTombstone,
  requestCancel,
  toJobView,
  writeTombstone,
} from '@tq/queue';
import { JobInputStore } from '@tq/storage';
import { MetricsService } from '../metrics/metrics.service';
import { TenantQuotas } from '../quotas/tenant-quotas.service';
import { RedisEpoch } from '../redis/redis-epoch.service';
import { claimIdempotencyKey } from './idempotency';
import { JobIds, typeOfJobId } from './job-id';
import { jobMetaFor } from './job-meta';
import { UnansweredWrites } from './unanswered-writes.service';

/** A client's X-Request-Id is kept when it is a plain token; otherwise the API makes one. */

/** From optional request headers: undefined when the header was not sent. */
export interface SubmitOptions {
  idempotencyKey?: string | undefined;
  requestId?: string | undefined;
  /** The caller's tenant: the job's, counted against its quotas. */
  tenant?: string | undefined;
}

/** Job lifecycle over BullMQ: submit, look up, list, cancel. */
@Injectable()
export class JobsService {
  constructor(
    private readonly producer: JobProducer,
    private readonly redis: RedisClientHolder,
    private readonly inputs: JobInputStore,
    private readonly metrics: MetricsService,
    private readonly ids: JobIds,
    private readonly unanswered: UnansweredWrites,
    private readonly epoch: RedisEpoch,
    private readonly quotas: TenantQuotas,
  ) {}

  /**
   * Wraps the validated request in the job envelope and enqueues it. A repeated Idempotency-Key
   * with the same body returns the same job, with another body a 409. Inline infer rows are stored
   * as the job's input artifact first, so the queue holds a reference, not megabytes of JSON.
   */
  async submit(
    type: PublicJobType,
    request: TrainRequest | CompressRequest | InferRequest,
    opts: SubmitOptions = {},
  ): Promise<JobSubmitted> {
    const jobId = this.ids.issue(type, opts.idempotencyKey);
    const started = Date.now();
    try {
      const submitted = await this.enqueue(jobId, type, request, opts);
      this.unanswered.answered(`submit:${jobId}`);
      return submitted;
    } catch (err) {
      // Sent to a Redis that did not answer: it may still run, after the client got its 503.
      if (isCommandTimeout(err))
        this.unanswered.submissionTimedOut(jobId, type, started, opts.idempotencyKey !== undefined);
      throw err;
    }
  }

  private async enqueue(
    jobId: string,
    type: PublicJobType,
    request: TrainRequest | CompressRequest | InferRequest,
    opts: SubmitOptions,
  ): Promise<JobSubmitted> {
    // A repeated key with the same body: the same job, and its stored input is not written again.
    if (opts.idempotencyKey && !(await claimIdempotencyKey(this.redis.client, this.redis.prefix, jobId, request))) {
      const earlier = await this.view(jobId).catch(() => undefined);
      if (earlier) return { id: jobId, type, state: earlier.state };
    }
    const meta = jobMetaFor(opts.requestId, opts.tenant);
    // Counted before it is added (one script: no two submissions share the last slot), released if not added.
    await this.quotas.admitJob(meta.tenant, QUEUE_OF_JOB[type], jobId);
    const job = await this.storeAndAdd(jobId, type, request, meta).catch(async (err: unknown) => {
      await this.quotas.releaseJob(meta.tenant, QUEUE_OF_JOB[type], jobId).catch(() => undefined);
      throw err;
    });
    // A new job is waiting; only a repeated Idempotency-Key can return an older job in another state.
    const state = opts.idempotencyKey ? (await this.view(jobId)).state : 'waiting';
    return { id: job.id ?? jobId, type, state };
  }

  private async storeAndAdd(
    jobId: string,
    type: PublicJobType,
    request: TrainRequest | CompressRequest | InferRequest,
    meta: ReturnType<typeof jobMetaFor>,
  ): Promise<Job> {
    const payload = type === JobName.Infer ? await this.storeInlineRows(jobId, request as InferRequest) : request;
    return this.producer.add(type, payload, meta, { jobId }).catch(async (err: unknown) => {
      // Not enqueued: the rows stored for it would be orphans.
      if (payload !== request) await this.inputs.remove(jobId);
      throw err;
    });
  }

  async find(id: string): Promise<{ job: Job; type: PublicJobType } | undefined> {
    const type = typeOfJobId(id);
    if (!type) return undefined;
    const job = await this.producer.queueOf(type).getJob(id);
    return job ? { job, type } : undefined;
  }

  async view(id: string): Promise<JobView> {
    const type = typeOfJobId(id);
    const view = type ? await readJobView(this.producer.queueOf(type), id, type, this.redis.client) : undefined;
    if (view) return view;
    const tombstone = await readTombstone(this.redis.client, this.redis.prefix, id);
    if (tombstone) return tombstone;
    if (!this.ids.issuedHere(id)) throw new NotFoundError('id', `no job "${id}"`);
    throw new GoneError('id', `job ${id} was issued here and is no longer kept: ${await this.goneBecause()}`);
  }

  /** Why an issued job is gone: Redis lost its data (when the epoch marker says so), else the history bounds. */
  private async goneBecause(): Promise<string> {
    const [lost] = await this.epoch.recordedLosses();
    if (lost) return `Redis lost its data at ${lost} (it restarted empty: it keeps nothing on disk)`;
    const c = loadConfig();
    return (
      `finished jobs are removed after ${c.JOB_HISTORY_AGE_SECONDS} s (JOB_HISTORY_AGE_SECONDS), ` +
      `past ${c.JOB_HISTORY_COUNT} per queue (JOB_HISTORY_COUNT) or ${c.JOB_HISTORY_MAX_BYTES} bytes (JOB_HISTORY_MAX_BYTES)`
    );
  }

  /** Waiting jobs are removed (a tombstone keeps answering GET); active ones stop at their next batch. */
  async cancel(id: string): Promise<JobView> {
    try {
      const view = await this.cancelOnce(id);
      this.unanswered.answered(`cancel:${id}`);
      return view;
    } catch (err) {
      // A cancel step sent to a Redis that did not answer may still run: it is undone, not applied late.
      const type = typeOfJobId(id);
      if (type && isCommandTimeout(err)) this.unanswered.cancelTimedOut(id, type);
      throw err;
    }
  }

  private async cancelOnce(id: string): Promise<JobView> {
    const view = await this.view(id);
    if (view.state === 'completed' || view.state === 'failed' || view.state === 'cancelled') {
      throw new ConflictError('id', `job already ${view.state}`);
    }
    const { client, prefix } = this.redis;
    await requestCancel(client, prefix, id, loadConfig().JOB_HISTORY_AGE_SECONDS);
    const found = view.state === 'waiting' ? await this.find(id) : undefined;
    if (!found) return this.view(id);
    const cancelled: JobView = {
      ...view,
      state: 'cancelled',
      error: CANCELLED_REASON,
      finishedAt: new Date().toISOString(),
    };
    // The tombstone first: a read between the two steps still finds the job, and a failed write
    // leaves it queued (and the cancel request stops it when a worker takes it) instead of lost.
    await writeTombstone(client, prefix, cancelled, loadConfig().JOB_HISTORY_AGE_SECONDS);
    try {
      await found.job.remove();
    } catch (err) {
      const state = await found.job.getState();
      // Gone: a concurrent cancel removed it, and its tombstone (like ours) stands.
      if (state === 'unknown') return this.view(id);
      await undoTombstone(client, prefix, cancelled);
      // BullMQ refuses to remove a locked job: a worker took it meanwhile (and stops at its next
      // batch, or has already ended). Anything else left the job queued: a real error.
      if (state !== 'active' && state !== 'completed' && state !== 'failed') throw err;
      return this.view(id);
    }
    // A removed waiting job sends no "failed" event, the source of the other cancelled counts.
    this.metrics.waitingJobCancelled(found.type);
    // Nor does it reach a worker that would release its queued slot (a missed one is pruned later).
    const tenant = (found.job.data as { meta?: { tenant?: unknown } }).meta?.tenant;
    if (typeof tenant === 'string')
      await this.quotas.releaseJob(tenant, QUEUE_OF_JOB[found.type], id).catch(() => undefined);
    // Nor does it reach a worker's clean-up: its stored inline rows (infer) go here.
    await this.inputs.remove(id);
    return cancelled;
  }

  async list(query: JobListQuery): Promise<JobList> {
    const types = query.type ? [query.type] : [...PUBLIC_JOB_TYPES];
    const states = query.state ? [query.state] : [...JOB_STATES];
    const bullStates = [...new Set(states.flatMap((s) => STATES_OF[s]))];
    const wanted = query.page * query.pageSize;
    const views: JobView[] = [];
    for (const type of types) {
      // Cancelled jobs left BullMQ for a tombstone; the newest `wanted` of them fill any page as well.
      if (states.includes('cancelled'))
        views.push(...(await listTombstones(this.redis.client, this.redis.prefix, type, wanted)));
      for (const bullState of bullStates) {
        // Enough from each queue and state to fill the requested page after merging by creation time.
        // getJobs reads the state's list before the hashes: the order toJobView needs.
        const queue = this.producer.queueOf(type);
        const jobs = await queue.getJobs([bullState], 0, wanted - 1, false);
        // Active jobs: whether their workers still hold the locks, one pipeline for the page.
        const held =
          bullState === 'active'
            ? await readLocksHeld(
                this.redis.client,
                queue,
                jobs.map((j) => j.id ?? ''),
              )
            : [];
        jobs.forEach((job, i) => views.push(toJobView(job, type, bullState, held[i])));
      }
    }
    // A job is briefly in both places while it is retired (or a cancel is undone): listed once, as BullMQ has it.
    const byId = new Map(views.filter((v) => states.includes(v.state)).map((v) => [v.id, v]));
    const items = [...byId.values()]
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
      .slice((query.page - 1) * query.pageSize, wanted);
    return { items, page: query.page, pageSize: query.pageSize };
  }

  private async storeInlineRows(jobId: string, request: InferRequest): Promise<InferJobData> {
    if (!('instances' in request.input)) return { ...request, input: request.input };
    return { ...request, input: { stored: await this.inputs.save(jobId, request.input.instances) } };
  }
}
