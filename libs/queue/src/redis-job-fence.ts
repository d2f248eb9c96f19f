import type Redis from 'ioredis';
import type { JobFence } from '@tq/contracts';
import { JobLockLostError } from './job-lock-lost.error';

/** What the fence needs of a BullMQ job: its id and where its keys live. */
export interface FencedJob {
  readonly id?: string | undefined;
  /** `${prefix}:${queueName}`: BullMQ keeps the job's keys (and its lock) under it. */
  readonly queueQualifiedName: string;
  /** The queue prefix: per-model counters are shared by every queue that registers versions. */
  readonly prefix: string;
}

/** BullMQ's lock key of a job (bullmq 6: `queue.toKey(jobId) + ':lock'`, holding the worker's token). */
export const jobLockKey = (job: FencedJob): string => `${job.queueQualifiedName}:${job.id ?? ''}:lock`;
/** This job's committed effects (the version it registers per model name), next to the job's own keys. */
export const jobEffectsKey = (job: FencedJob): string => `${job.queueQualifiedName}:${job.id ?? ''}:tq-effects`;
/** The last version number handed out for model `name` (a floor from the disk makes it safe to lose). */
export const modelVersionKey = (prefix: string, name: string): string => `${prefix}:tq-model-version:${name}`;

/**
 * KEYS: lock, effects, counter. ARGV: token, model name, latest on disk, record TTL (s).
 * -1 when the token no longer holds the lock; else this job's version of the model: the one it
 * recorded, or a fresh one from the counter (raised to the disk's latest first, so a counter lost
 * with Redis never hands out a number the disk holds). One script: the check and the allocation
 * are atomic, so no other attempt can take the job between them.
 */
const VERSION_FOR = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local field = 'version:' .. ARGV[2]
local recorded = redis.call('HGET', KEYS[2], field)
if recorded then return tonumber(recorded) end
local latest = tonumber(ARGV[3])
if tonumber(redis.call('GET', KEYS[3]) or '0') < latest then redis.call('SET', KEYS[3], latest) end
local version = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[2], field, version)
redis.call('EXPIRE', KEYS[2], ARGV[4])
return version
`;

/**
 * The JobFence of one attempt: the BullMQ job and the lock token its processor received. Every
 * key a script touches is built from the job's queue prefix, so a `{hash-tagged}` prefix keeps
 * them in one Redis Cluster slot (as BullMQ itself requires of its own keys).
 */
export class RedisJobFence implements JobFence {
  constructor(
    private readonly redis: Redis,
    private readonly job: FencedJob,
    private readonly token: string,
    /** How long the job's effects record is kept: as long as the job itself (JOB_HISTORY_AGE_SECONDS). */
    private readonly recordTtlSeconds: number,
  ) {}

  async assertHeld(): Promise<void> {
    if ((await this.redis.get(jobLockKey(this.job))) !== this.token) throw this.lost();
  }

  async versionFor(name: string, latest: number): Promise<number> {
    const keys = [jobLockKey(this.job), jobEffectsKey(this.job), modelVersionKey(this.job.prefix, name)];
    const args = [this.token, name, String(latest), String(this.recordTtlSeconds)];
    const version = Number(await this.redis.eval(VERSION_FOR, keys.length, ...keys, ...args));
    if (version < 0) throw this.lost();
    if (!Number.isSafeInteger(version) || version === 0) throw new Error(`bad version ${version} for "${name}"`);
    return version;
  }

  private lost(): JobLockLostError {
    return new JobLockLostError(this.job.id ?? '');
  }
}
