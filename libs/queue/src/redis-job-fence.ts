import type { RedisClient } from './redis-connection';
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
/** The last version number handed out for model `name` (a floor from the store makes it safe to lose). */
export const modelVersionKey = (prefix: string, name: string): string => `${prefix}:tq-model-version:${name}`;

/** BullMQ's list of the queue's active jobs (the job stays in it while some attempt runs it). */
export const activeListKey = (job: FencedJob): string => `${job.queueQualifiedName}:active`;

/**
 * Lua, KEYS[1] lock, KEYS[2] active list; ARGV[1] token, ARGV[2] job id, ARGV[3] lock ms. True when
 * the token holds the lock; also when the lock merely lapsed (its key expired: this attempt's event
 * loop was blocked past lockDuration) and nobody took the job since (it is still in the active
 * list: the stalled checker has not moved it): the lock is taken back then. Another attempt sets
 * its own token on moveToActive, so a lock held by another token, or a job no longer active
 * (moved to wait, finished), is never taken back.
 */
const HOLDS = `
local function holds()
  local current = redis.call('GET', KEYS[1])
  if current == ARGV[1] then return true end
  if current then return false end
  if not redis.call('LPOS', KEYS[2], ARGV[2]) then return false end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return true
end
`;

const ASSERT_HELD = `${HOLDS}
if holds() then return 1 end
return 0
`;

/**
 * KEYS: lock, active, effects, counter. ARGV: token, job id, lock ms, model name, latest in the store,
 * record TTL (s). -1 when the attempt does not hold the job; else this job's version of the model:
 * the one it recorded, or a fresh one from the counter (raised to the store's latest first, so a
 * counter lost with Redis never hands out a number the store holds). One script: the check and the
 * allocation are atomic, so no other attempt can take the job between them.
 */
const VERSION_FOR = `${HOLDS}
if not holds() then return -1 end
local field = 'version:' .. ARGV[4]
local recorded = redis.call('HGET', KEYS[3], field)
if recorded then return tonumber(recorded) end
local latest = tonumber(ARGV[5])
if tonumber(redis.call('GET', KEYS[4]) or '0') < latest then redis.call('SET', KEYS[4], latest) end
local version = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[3], field, version)
redis.call('EXPIRE', KEYS[3], ARGV[6])
return version
`;

/**
 * The JobFence of one attempt: the BullMQ job and the lock token its processor received. Every
 * key a script touches is built from the job's queue prefix, so a `{hash-tagged}` prefix keeps
 * them in one Redis Cluster slot (as BullMQ itself requires of its own keys).
 */
export class RedisJobFence implements JobFence {
  constructor(
    private readonly redis: RedisClient,
    private readonly job: FencedJob,
    private readonly token: string,
    private readonly opts: {
      /** The worker's lockDuration: a lapsed lock taken back is held this long (then renewed as usual). */
      lockDurationMs: number;
      /** How long the job's effects record is kept: as long as the job itself (JOB_HISTORY_AGE_SECONDS). */
      recordTtlSeconds: number;
    },
  ) {}

  async assertHeld(): Promise<void> {
    if (!(await this.holds())) throw this.lost();
  }

  /** Whether this attempt still holds its job, taking back a lapsed lock nobody else took (see HOLDS). */
  async holds(): Promise<boolean> {
    const keys = [jobLockKey(this.job), activeListKey(this.job)];
    return Number(await this.redis.eval(ASSERT_HELD, keys.length, ...keys, ...this.lockArgs())) === 1;
  }

  async versionFor(name: string, latest: number): Promise<number> {
    const keys = [
      jobLockKey(this.job),
      activeListKey(this.job),
      jobEffectsKey(this.job),
      modelVersionKey(this.job.prefix, name),
    ];
    const args = [...this.lockArgs(), name, String(latest), String(this.opts.recordTtlSeconds)];
    const version = Number(await this.redis.eval(VERSION_FOR, keys.length, ...keys, ...args));
    if (version < 0) throw this.lost();
    if (!Number.isSafeInteger(version) || version === 0) throw new Error(`bad version ${version} for "${name}"`);
    return version;
  }

  private lockArgs(): string[] {
    return [this.token, this.job.id ?? '', String(this.opts.lockDurationMs)];
  }

  private lost(): JobLockLostError {
    return new JobLockLostError(this.job.id ?? '');
  }
}
