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
import type { TenantScope } from '../auth/tenant-scope';
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
}

/**
 * Which jobs a request may see: those of `tenant`, or (`admin`) every job. Internal callers that
 * act for the system (a dataset's profiling job) pass none.
 */
export type JobScope = Pick<TenantScope, 'tenant' | 'admin'> | undefined;

/** Listings: one tenant's jobs, or every tenant's (an admin without X-Tenant). */
export type ListScope = Pick<TenantScope, 'tenant' | 'all'>;

/** BullMQ jobs (or tombstones) read per round while a tenant's listing fills its page. */
const LIST_BATCH = 200;

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
    tenant: string,
    opts: SubmitOptions = {},
  ): Promise<JobSubmitted> {
    const jobId = this.ids.issue(type, opts.idempotencyKey, tenant);
    const started = Date.now();
    try {
      const submitted = await this.enqueue(jobId, type, request, tenant, opts);
      this.unanswered.answered(`submit:${jobId}`);
      return submitted;
    } catch (err) {
      // Sent to a Redis that did not answer: it may still run, after the client got its 503.
      if (isCommandTimeout(err))
        this.unanswered.submissionTimedOut(jobId, type, tenant, started, opts.idempotencyKey !== undefined);
      throw err;
    }
  }

  private async enqueue(
    jobId: string,
    type: PublicJobType,
    request: TrainRequest | CompressRequest | InferRequest,
    tenant: string,
    opts: SubmitOptions,
  ): Promise<JobSubmitted> {
    // A repeated key with the same body: the same job, and its stored input is not written again.
    // The id is the tenant's own (derived from tenant and key), so the earlier job is this tenant's.
    if (opts.idempotencyKey && !(await claimIdempotencyKey(this.redis.client, this.redis.prefix, jobId, request))) {
      const earlier = await this.view(jobId, { tenant, admin: false }).catch(() => undefined);
      if (earlier) return { id: jobId, type, state: earlier.state };
    }
    const meta = jobMetaFor(opts.requestId, tenant);
    // Counted before it is added (one script: no two submissions share the last slot), released if not added.
    await this.quotas.admitJob(meta.tenant, QUEUE_OF_JOB[type], jobId);
    const job = await this.storeAndAdd(jobId, type, request, meta).catch(async (err: unknown) => {
      await this.quotas.releaseJob(meta.tenant, QUEUE_OF_JOB[type], jobId).catch(() => undefined);
      throw err;
    });
    // A new job is waiting; only a repeated Idempotency-Key can return an older job in another state.
    const state = opts.idempotencyKey ? (await this.view(jobId, undefined)).state : 'waiting';
    return { id: job.id ?? jobId, type, state };
  }

  private async storeAndAdd(
    jobId: string,
    type: PublicJobType,
    request: TrainRequest | CompressRequest | InferRequest,
    meta: ReturnType<typeof jobMetaFor>,
  ): Promise<Job> {
    const inputs = this.inputs.forTenant(meta.tenant);
    const payload =
      type === JobName.Infer ? await this.storeInlineRows(jobId, request as InferRequest, inputs) : request;
    return this.producer.add(type, payload, meta, { jobId }).catch(async (err: unknown) => {
      // Not enqueued: the rows stored for it would be orphans.
      if (payload !== request) await inputs.remove(jobId);
      throw err;
    });
  }

  async find(id: string): Promise<{ job: Job; type: PublicJobType } | undefined> {
    const type = typeOfJobId(id);
    if (!type) return undefined;
    const job = await this.producer.queueOf(type).getJob(id);
    return job ? { job, type } : undefined;
  }

  /**
   * The job as `scope` may see it: another tenant's job is a 404 with the body of one that never
   * existed (the id says nothing about whose it is).
   */
  async view(id: string, scope: JobScope): Promise<JobView> {
    const type = typeOfJobId(id);
    const found =
      (type ? await readJobView(this.producer.queueOf(type), id, type, this.redis.client) : undefined) ??
      (await readTombstone(this.redis.client, this.redis.prefix, id));
    if (found && visibleTo(found, scope)) return found;
    if (found || !this.ids.issuedHere(id)) throw new NotFoundError('id', `no job "${id}"`);
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
  async cancel(id: string, scope: JobScope): Promise<JobView> {
    try {
      const view = await this.cancelOnce(id, scope);
      this.unanswered.answered(`cancel:${id}`);
      return view;
    } catch (err) {
      // A cancel step sent to a Redis that did not answer may still run: it is undone, not applied late.
      const type = typeOfJobId(id);
      if (type && isCommandTimeout(err)) this.unanswered.cancelTimedOut(id, type);
      throw err;
    }
  }

  private async cancelOnce(id: string, scope: JobScope): Promise<JobView> {
    const view = await this.view(id, scope);
    if (view.state === 'completed' || view.state === 'failed' || view.state === 'cancelled') {
      throw new ConflictError('id', `job already ${view.state}`);
    }
    const { client, prefix } = this.redis;
    await requestCancel(client, prefix, id, loadConfig().JOB_HISTORY_AGE_SECONDS);
    const found = view.state === 'waiting' ? await this.find(id) : undefined;
    if (!found) return this.view(id, scope);
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
      if (state === 'unknown') return this.view(id, scope);
      await undoTombstone(client, prefix, cancelled);
      // BullMQ refuses to remove a locked job: a worker took it meanwhile (and stops at its next
      // batch, or has already ended). Anything else left the job queued: a real error.
      if (state !== 'active' && state !== 'completed' && state !== 'failed') throw err;
      return this.view(id, scope);
    }
    // A removed waiting job sends no "failed" event, the source of the other cancelled counts.
    this.metrics.waitingJobCancelled(found.type);
    // Nor does it reach a worker that would release its queued slot (a missed one is pruned later).
    const tenant = (found.job.data as { meta?: { tenant?: unknown } }).meta?.tenant;
    if (typeof tenant === 'string')
      await this.quotas.releaseJob(tenant, QUEUE_OF_JOB[found.type], id).catch(() => undefined);
    // Nor does it reach a worker's clean-up: its stored inline rows (infer) go here.
    await this.inputs.forTenant(view.tenant).remove(id);
    return cancelled;
  }

  /**
   * One page of `scope`'s jobs, newest first. A tenant's page is filled by reading each queue and
   * state in batches until it has enough of the tenant's jobs (or the list ends): BullMQ keeps no
   * index per tenant, so a tenant with few jobs among many pays for reading past the others (at
   * most JOB_HISTORY_COUNT finished jobs per queue).
   */
  async list(query: JobListQuery, scope: ListScope): Promise<JobList> {
    const types = query.type ? [query.type] : [...PUBLIC_JOB_TYPES];
    const states = query.state ? [query.state] : [...JOB_STATES];
    const bullStates = [...new Set(states.flatMap((s) => STATES_OF[s]))];
    const wanted = query.page * query.pageSize;
    const mine = (v: JobView) => scope.all || v.tenant === scope.tenant;
    const views: JobView[] = [];
    const retired: JobView[] = [];
    for (const type of types) {
      for (const bullState of bullStates) {
        // Enough from each queue and state to fill the requested page after merging by creation time.
        const queue = this.producer.queueOf(type);
        views.push(
          ...(await collect(wanted, scope.all, mine, async (start, count) => {
            // getJobs reads the state's list before the hashes: the order toJobView needs.
            const jobs = await queue.getJobs([bullState], start, start + count - 1, false);
            // Active jobs: whether their workers still hold the locks, one pipeline for the batch.
            const held =
              bullState === 'active'
                ? await readLocksHeld(
                    this.redis.client,
                    queue,
                    jobs.map((j) => j.id ?? ''),
                  )
                : [];
            return jobs.map((job, i) => toJobView(job, type, bullState, held[i]));
          })),
        );
      }
      // Cancelled jobs left BullMQ for a tombstone; the newest `wanted` of them fill any page as well.
      // Read after BullMQ: a job is retired by writing its tombstone, then removing it from BullMQ,
      // so one retired while this lists is in one or the other (read before, a job retired between
      // the two reads was in neither, and a page missed it: CI, on a Redis Cluster).
      if (states.includes('cancelled'))
        retired.push(
          ...(await collect(wanted, scope.all, mine, (start, count) =>
            listTombstones(this.redis.client, this.redis.prefix, type, count, start),
          )),
        );
    }
    // A job is briefly in both places while it is retired (or a cancel is undone): listed once, as BullMQ has it.
    const byId = new Map<string, JobView>();
    for (const v of [...views, ...retired]) if (states.includes(v.state) && !byId.has(v.id)) byId.set(v.id, v);
    const items = [...byId.values()]
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
      .slice((query.page - 1) * query.pageSize, wanted);
    return { items, page: query.page, pageSize: query.pageSize };
  }

  private async storeInlineRows(jobId: string, request: InferRequest, inputs: JobInputStore): Promise<InferJobData> {
    if (!('instances' in request.input)) return { ...request, input: request.input };
    return { ...request, input: { stored: await inputs.save(jobId, request.input.instances) } };
  }
}

/** Whether a job is `scope`'s to see: its tenant's, or any for an admin (or the system). */
function visibleTo(view: JobView, scope: JobScope): boolean {
  return scope === undefined || scope.admin || view.tenant === scope.tenant;
}

/**
 * The first `wanted` views of a list that `keep` accepts, read `read(start, count)` a batch at a
 * time. Unfiltered (`all`), one read of `wanted` is enough, as before tenants.
 */
async function collect(
  wanted: number,
  all: boolean,
  keep: (v: JobView) => boolean,
  read: (start: number, count: number) => Promise<JobView[]>,
): Promise<JobView[]> {
  if (all) return read(0, wanted);
  const count = Math.max(wanted, LIST_BATCH);
  const kept: JobView[] = [];
  for (let start = 0; kept.length < wanted; start += count) {
    const batch = await read(start, count);
    kept.push(...batch.filter(keep));
    if (batch.length < count) break;
  }
  return kept.slice(0, wanted);
}
