import { Injectable } from '@nestjs/common';
import {
  QUOTA_VARIABLES,
  QuotaExceededError,
  type QuotaName,
  type TenantQuotasUpdate,
  type TenantQuotasView,
  type TenantUsage,
} from '@tq/contracts';
import { ActiveJobs, QueuedJobs, RedisClientHolder, TenantLimits, jobMember } from '@tq/queue';
import { StoredBytes } from '@tq/storage';
import { ApiReplicas } from './api-replicas.service';

/** A full tenant waits for jobs to finish: a few seconds is a fair first guess. */
const QUEUED_RETRY_AFTER_SECONDS = 5;
/** Stored bytes go down only when something is deleted or retention removes it. */
const STORED_RETRY_AFTER_SECONDS = 60;

/**
 * The API's side of the tenant quotas: admission of submitted jobs (queued), the stored-bytes check
 * before uploads and model-writing jobs, the overrides admins set, and each tenant's usage.
 * Active jobs are the workers' (TypedWorkerHost); requests per second the RequestRateGuard's.
 */
@Injectable()
export class TenantQuotas {
  readonly limits: TenantLimits;
  private readonly queued: QueuedJobs;
  private readonly active: ActiveJobs;

  constructor(
    redis: RedisClientHolder,
    private readonly stored: StoredBytes,
    private readonly replicas: ApiReplicas,
  ) {
    this.limits = new TenantLimits(redis.client, redis.prefix);
    this.queued = new QueuedJobs(redis.client, redis.prefix);
    this.active = new ActiveJobs(redis.client, redis.prefix);
  }

  /** Counts a job about to be enqueued, or refuses it (429) when the tenant is at maxQueuedJobs. */
  async admitJob(tenant: string, queue: string, jobId: string): Promise<void> {
    const limit = (await this.limits.of(tenant)).maxQueuedJobs;
    const used = await this.queued.admit(tenant, jobMember(queue, jobId), limit);
    if (used !== undefined)
      throw exceeded('maxQueuedJobs', tenant, used, limit, QUEUED_RETRY_AFTER_SECONDS, 'jobs queued or running');
  }

  /** The job was not enqueued after all, or was cancelled while it waited. */
  async releaseJob(tenant: string, queue: string, jobId: string): Promise<void> {
    await this.queued.release(tenant, jobMember(queue, jobId));
  }

  /** Before an upload or a job that writes a model: 429 when the tenant already stores its maxStoredBytes. */
  async checkStoredBytes(tenant: string): Promise<void> {
    const [limit, used] = await Promise.all([
      this.limits.of(tenant).then((q) => q.maxStoredBytes),
      this.stored.storedBytes(tenant),
    ]);
    if (used >= limit)
      throw exceeded('maxStoredBytes', tenant, used, limit, STORED_RETRY_AFTER_SECONDS, 'bytes stored');
  }

  setOverrides(tenant: string, update: TenantQuotasUpdate): Promise<TenantQuotasView> {
    return this.limits.set(tenant, update);
  }

  async usage(tenant: string): Promise<TenantUsage> {
    const [view, queuedJobs, activeJobs, storedBytes] = await Promise.all([
      this.limits.view(tenant),
      this.queued.count(tenant),
      this.active.count(tenant),
      this.stored.storedBytes(tenant),
    ]);
    return { ...view, usage: { queuedJobs, activeJobs, storedBytes, apiReplicas: this.replicas.live } };
  }
}

/** The 429: the quota, the tenant's figure and its limit, and where the limit comes from. */
export function exceeded(
  quota: QuotaName,
  tenant: string,
  used: number,
  limit: number,
  retryAfterSeconds: number,
  what: string,
): QuotaExceededError {
  const reason =
    `tenant "${tenant}" has ${used} ${what}, its limit is ${limit} ` +
    `(${QUOTA_VARIABLES[quota]}, or the tenant's override); retry after ${retryAfterSeconds} s`;
  return new QuotaExceededError(quota, used, limit, retryAfterSeconds, reason);
}
