import type { RedisClient } from './redis-connection';

/**
 * Which processes of one role are alive in a deployment (QUEUE_PREFIX): one sorted set per role,
 * member a process's name, score the time its announcement expires. One key, not a key per
 * process with a TTL: the live ones are one ZRANGEBYSCORE or ZCOUNT (no SCAN, which a Redis
 * Cluster would run on every node), and under a hash-tagged prefix it stays in the queues' slot.
 * Serve replicas announce their URL (the API forwards predicts to them); API replicas announce
 * themselves (each takes its share of a tenant's request rate).
 */
export const presenceKey = (prefix: string, role: string): string => `${prefix}:${role}:replicas`;

/** Members of `role` whose announcement has not expired. */
export async function listPresent(
  redis: RedisClient,
  prefix: string,
  role: string,
  now = Date.now(),
): Promise<string[]> {
  return redis.zrangebyscore(presenceKey(prefix, role), now, '+inf');
}

export interface Presence {
  /** One heartbeat now (the first one: a caller that must be announced before going on awaits it). */
  beat(): Promise<void>;
  /** Live members of the role at the last heartbeat that got an answer (this one included); 1 before any. */
  readonly live: number;
  /** Withdraws the announcement (a process stopping on SIGTERM): the others stop counting it at once. */
  stop(): Promise<void>;
}

/**
 * Announces `member` of `role` every ttlMs / 3 (a heartbeat; the caller sends the first with
 * beat()); a process that dies stops refreshing and drops out within ttlMs. Expired members are pruned at each heartbeat, so the set
 * holds no more than the processes alive in the last ttlMs. A heartbeat that fails (Redis away) is
 * reported to onError and the next one tries again; `live` keeps its last answer meanwhile.
 */
export function announcePresence(
  redis: RedisClient,
  prefix: string,
  role: string,
  member: string,
  ttlMs: number,
  onError: (err: unknown) => void = () => undefined,
): Presence {
  const key = presenceKey(prefix, role);
  let live = 1;
  let stopped = false;
  const beat = async (): Promise<void> => {
    const now = Date.now();
    const replies = await redis
      .multi()
      .zadd(key, now + ttlMs, member)
      .zremrangebyscore(key, '-inf', now)
      .zcard(key)
      .exec();
    const counted = Number(replies?.[2]?.[1]);
    if (!stopped && Number.isInteger(counted) && counted > 0) live = counted;
  };
  const timer = setInterval(() => void beat().catch(onError), Math.max(100, Math.floor(ttlMs / 3)));
  timer.unref();
  return {
    beat,
    get live() {
      return live;
    },
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await redis.zrem(key, member);
    },
  };
}
