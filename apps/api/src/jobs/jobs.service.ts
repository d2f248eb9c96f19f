import { ConflictException, Injectable } from '@nestjs/common';
import type { Job } from 'bullmq';
import { randomUUID } from 'node:crypto';
import {
  CANCELLED_REASON, DEFAULT_TENANT, JOB_STATES, JobName, PUBLIC_JOB_TYPES, type CompressRequest, type InferJobData, type InferRequest,
  type JobListQuery, type JobMeta, type JobView, type PublicJobType, type TrainRequest,
} from '@tq/contracts';
import { JobInputStore } from '@tq/storage';
import { JobProducer, RedisClientHolder, STATES_OF, readTombstone, requestCancel, toJobView, writeTombstone } from '@tq/queue';
import { loadConfig } from '@tq/config';
import { notFound } from '../common/http-issues';
import { newJobId, typeOfJobId } from './job-id';


/** A client's X-Request-Id is kept when it is a plain token; otherwise the API makes one. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface SubmitOptions { idempotencyKey?: string; requestId?: string }

/** Job lifecycle over BullMQ: submit, look up, list, cancel. */
@Injectable()
export class JobsService {
  constructor(private readonly producer: JobProducer, private readonly redis: RedisClientHolder, private readonly inputs: JobInputStore) {}

  /**
   * Wraps the validated request in the job envelope and enqueues it. Inline infer rows are stored
   * as the job's input artifact first, so the queue holds a reference, not megabytes of JSON.
   */
  async submit(type: PublicJobType, request: TrainRequest | CompressRequest | InferRequest, opts: SubmitOptions = {}): Promise<Pick<JobView, 'id' | 'type' | 'state'>> {
    const jobId = newJobId(type, opts.idempotencyKey);
    const requestId = opts.requestId && SAFE_REQUEST_ID.test(opts.requestId) ? opts.requestId : randomUUID();
    const meta: JobMeta = { requestId, tenant: DEFAULT_TENANT, submittedAt: new Date().toISOString() };
    const payload = type === JobName.Infer ? await this.storeInlineRows(jobId, request as InferRequest) : request;
    const job = await this.producer.add(type, payload, meta, { jobId });
    // A new job is waiting; only a repeated Idempotency-Key can return an older job in another state.
    const state = opts.idempotencyKey ? (await toJobView(job, type)).state : 'waiting';
    return { id: job.id ?? '', type, state };
  }

  private async storeInlineRows(jobId: string, request: InferRequest): Promise<InferJobData> {
    if (!('instances' in request.input)) return { ...request, input: request.input };
    return { ...request, input: { stored: await this.inputs.save(jobId, request.input.instances) } };
  }

  async find(id: string): Promise<{ job: Job; type: PublicJobType } | undefined> {
    const type = typeOfJobId(id);
    if (!type) return undefined;
    const job = await this.producer.queueOf(type).getJob(id);
    return job ? { job, type } : undefined;
  }

  async view(id: string): Promise<JobView> {
    const found = await this.find(id);
    if (found) return toJobView(found.job, found.type);
    const tombstone = await readTombstone(this.redis.client, this.redis.prefix, id);
    if (tombstone) return tombstone;
    throw notFound('id', `no job "${id}"`);
  }

  /** Waiting jobs are removed (a tombstone keeps answering GET); active ones stop at their next batch. */
  async cancel(id: string): Promise<JobView> {
    const view = await this.view(id);
    if (view.state === 'completed' || view.state === 'failed' || view.state === 'cancelled') {
      throw new ConflictException({ statusCode: 409, message: `id: job already ${view.state}`, issues: [{ field: 'id', reason: `job already ${view.state}` }] });
    }
    await requestCancel(this.redis.client, this.redis.prefix, id);
    const found = await this.find(id);
    if (view.state === 'waiting' && found) {
      const removed = await found.job.remove().then(() => true, () => false); // fails when a worker took it meanwhile
      if (removed) {
        const cancelled: JobView = { ...view, state: 'cancelled', error: CANCELLED_REASON, finishedAt: new Date().toISOString() };
        await writeTombstone(this.redis.client, this.redis.prefix, cancelled, loadConfig().JOB_HISTORY_AGE_SECONDS);
        return cancelled;
      }
    }
    return this.view(id);
  }

  async list(query: JobListQuery): Promise<{ items: JobView[]; page: number; pageSize: number }> {
    const types = query.type ? [query.type] : [...PUBLIC_JOB_TYPES];
    const states = query.state ? [query.state] : [...JOB_STATES];
    const bullStates = [...new Set(states.flatMap((s) => STATES_OF[s]))];
    const wanted = query.page * query.pageSize;
    const views: JobView[] = [];
    for (const type of types) {
      for (const bullState of bullStates) {
        // Enough from each queue and state to fill the requested page after merging by creation time.
        const jobs = await this.producer.queueOf(type).getJobs([bullState], 0, wanted - 1, false);
        for (const job of jobs) views.push(await toJobView(job, type, bullState));
      }
    }
    const items = views
      .filter((v) => states.includes(v.state))
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
      .slice((query.page - 1) * query.pageSize, wanted);
    return { items, page: query.page, pageSize: query.pageSize };
  }
}
