import { announcePresence, listPresent, presenceKey, type RedisClient } from '@tq/queue';

/** Serve replicas announce their URL under this role (see @tq/queue presence). */
const SERVE_ROLE = 'serve';

/** The sorted set of serve replicas: member the replica's URL, score its announcement's expiry. */
export const replicasKey = (prefix: string): string => presenceKey(prefix, SERVE_ROLE);

/** Live replicas' URLs: those whose registration has not expired. */
export async function listReplicas(redis: RedisClient, prefix: string, now = Date.now()): Promise<string[]> {
  return listPresent(redis, prefix, SERVE_ROLE, now);
}

export interface ReplicaRegistration {
  /** Removes the registration (a replica stopping on SIGTERM): the API stops sending at once. */
  stop(): Promise<void>;
}

/**
 * Registers `url` now (failing if Redis does not answer) and every ttlMs / 3; a replica that dies
 * stops refreshing and drops out of listReplicas within ttlMs.
 */
export async function registerReplica(
  redis: RedisClient,
  prefix: string,
  url: string,
  ttlMs: number,
  onError: (err: unknown) => void = () => undefined,
): Promise<ReplicaRegistration> {
  const presence = announcePresence(redis, prefix, SERVE_ROLE, url, ttlMs, onError);
  try {
    await presence.beat();
  } catch (err) {
    await presence.stop().catch(() => undefined);
    throw err;
  }
  return presence;
}
