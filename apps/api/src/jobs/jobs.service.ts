import { Injectable } from '@nestjs/common';
import type { Job } from 'bullmq';
import { ConflictError, JOB_STATES, PUBLIC_JOB_TYPES, type JobList, type JobListQuery, type JobSubmitted, type JobView, type PublicJobType } from '@tq/contracts';
import { CANCELLED_REASON, JobProducer, RedisClientHolder, requestCancel } from '@tq/queue';
import { notFound } from '../common/http-issues';
import { claimIdempotencyKey } from './idempotency';
import { newJobId, typeOfJobId } from './job-id';
import { STATES_OF, readJobView, toJobView } from './job-view';

const TOMBSTONE_TTL_SECONDS = 7 * 24 * 3600;

/** Job lifecycle over BullMQ: submit, look up, list, cancel. */
@Injectable()
export class JobsService {
  constructor(private readonly producer: JobProducer, private readonly redis: RedisClientHolder) {}

  async submit(type: PublicJobType, payload: unknown, idempotencyKey?: string): Promise<JobSubmitted> {
    const jobId = newJobId(type, idempotencyKey);
    if (idempotencyKey) await claimIdempotencyKey(this.redis.client, this.redis.prefix, jobId, payload);
    const job = await this.producer.add(type, payload, { jobId });
    // A new job is waiting; only a repeated Idempotency-Key can return an older job in another state.
    const state = idempotencyKey ? (await this.view(jobId)).state : 'waiting';
    return { id: job.id ?? jobId, type, state };
  }

  async find(id: string): Promise<{ job: Job; type: PublicJobType } | undefined> {
    const type = typeOfJobId(id);
    if (!type) return undefined;
    const job = await this.producer.queueOf(type).getJob(id);
    return job ? { job, type } : undefined;
  }

  async view(id: string): Promise<JobView> {
    const type = typeOfJobId(id);
    const view = type ? await readJobView(this.producer.queueOf(type), id, type) : undefined;
    if (view) return view;
    const tombstone = await this.redis.client.get(this.tombstoneKey(id));
    if (tombstone) return JSON.parse(tombstone) as JobView;
    throw notFound('id', `no job "${id}"`);
  }

  /** Waiting jobs are removed (a tombstone keeps answering GET); active ones stop at their next batch. */
  async cancel(id: string): Promise<JobView> {
    const view = await this.view(id);
    if (view.state === 'completed' || view.state === 'failed' || view.state === 'cancelled') {
      throw new ConflictError('id', `job already ${view.state}`);
    }
    await requestCancel(this.redis.client, this.redis.prefix, id);
    const found = await this.find(id);
    if (view.state === 'waiting' && found) {
      const removed = await found.job.remove().then(() => true, () => false); // fails when a worker took it meanwhile
      if (removed) {
        const cancelled: JobView = { ...view, state: 'cancelled', error: CANCELLED_REASON, finishedAt: new Date().toISOString() };
        await this.redis.client.set(this.tombstoneKey(id), JSON.stringify(cancelled), 'EX', TOMBSTONE_TTL_SECONDS);
        return cancelled;
      }
    }
    return this.view(id);
  }

  async list(query: JobListQuery): Promise<JobList> {
    const types = query.type ? [query.type] : [...PUBLIC_JOB_TYPES];
    const states = query.state ? [query.state] : [...JOB_STATES];
    const bullStates = [...new Set(states.flatMap((s) => STATES_OF[s]))];
    const wanted = query.page * query.pageSize;
    const views: JobView[] = [];
    for (const type of types) {
      for (const bullState of bullStates) {
        // Enough from each queue and state to fill the requested page after merging by creation time.
        // getJobs reads the state's list before the hashes: the order toJobView needs.
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

  private tombstoneKey(id: string): string {
    return `${this.redis.prefix}:tq-cancelled:${id}`;
  }
}
