import type { RedisClient } from '@tq/queue';

/**
 * Where serve replicas announce themselves: one sorted set per deployment (QUEUE_PREFIX), member
 * the replica's URL, score the time its registration expires. One key, not a key per replica with
 * a TTL: the API lists the live ones with one ZRANGEBYSCORE (no SCAN, which a Redis Cluster would
 * have to run on every node), and under a hash-tagged prefix it stays in the queues' slot.
 */
export const replicasKey = (prefix: string): string => `${prefix}:serve:replicas`;

/** Live replicas' URLs: those whose registration has not expired. */
export async function listReplicas(redis: RedisClient, prefix: string, now = Date.now()): Promise<string[]> {
  return redis.zrangebyscore(replicasKey(prefix), now, '+inf');
}

export interface ReplicaRegistration {
  /** Removes the registration (a replica stopping on SIGTERM): the API stops sending at once. */
  stop(): Promise<void>;
}

/**
 * Registers `url` now and every ttlMs / 3 (a heartbeat); a replica that dies stops refreshing and
 * drops out of listReplicas within ttlMs. Expired members are pruned at each heartbeat, so the set
 * holds no more than the replicas alive in the last ttlMs.
 */
export async function registerReplica(
  redis: RedisClient,
  prefix: string,
  url: string,
  ttlMs: number,
  onError: (err: unknown) => void = () => undefined,
): Promise<ReplicaRegistration> {
  const key = replicasKey(prefix);
  const beat = async (): Promise<void> => {
    const now = Date.now();
    await redis
      .multi()
      .zadd(key, now + ttlMs, url)
      .zremrangebyscore(key, '-inf', now)
      .exec();
  };
  await beat();
  const timer = setInterval(() => void beat().catch(onError), Math.max(100, Math.floor(ttlMs / 3)));
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await redis.zrem(key, url);
    },
  };
}
