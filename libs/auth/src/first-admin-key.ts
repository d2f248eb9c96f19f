import { DEFAULT_TENANT } from '@tq/contracts';
import type { RedisClient } from '@tq/queue';
import type { ApiKeyStore } from './api-key-store';

/**
 * On a first start (no usable admin key stored, none configured): creates one and returns the
 * key, the only time it exists in clear; its caller prints it once. A short lock keeps two
 * processes starting together (npm start and its API, several replicas) from making two.
 */
export async function ensureFirstAdminKey(
  store: ApiKeyStore,
  redis: RedisClient,
  prefix: string,
): Promise<string | undefined> {
  if (await store.hasActiveAdmin()) return undefined;
  const lock = await redis.set(`${prefix}:auth:first-admin-lock`, String(process.pid), 'EX', 60, 'NX');
  if (lock !== 'OK' || (await store.hasActiveAdmin())) return undefined;
  const { key } = await store.create({
    name: 'first admin (created at first start)',
    tenant: DEFAULT_TENANT,
    role: 'admin',
  });
  return key;
}
