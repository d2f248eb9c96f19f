import type { AppConfig } from '@tq/config';
import { ApiKeyStore, ensureFirstAdminKey } from '@tq/auth';
import { DEFAULT_TENANT } from '@tq/contracts';
import { createRedisClient, type RedisClient } from '@tq/queue';

/** How long the key `npm start` mints for its demo lives. */
export const DEMO_KEY_SECONDS = 3600;

/** The API keys of `npm start`: what its banner says about them, and the key its demo sends. */
export interface StartKeys {
  /** Where the admin key comes from. */
  admin: 'first start' | 'earlier start' | 'TQ_ADMIN_KEY' | 'AUTH=off';
  /** The admin key when it was just created: the only time it is shown. */
  created?: string;
  /** The key the demo sends (undefined with AUTH=off). */
  demo?: string;
}

/**
 * Runs `fn` on the API keys of the system `config` names (its Redis, its QUEUE_PREFIX), as an
 * operator who can reach Redis may: that reach is what lets them make keys without one.
 */
export async function withKeyStore<T>(
  config: AppConfig,
  fn: (store: ApiKeyStore, redis: RedisClient) => Promise<T>,
): Promise<T> {
  const redis = createRedisClient(config, 'worker', { maxRetriesPerRequest: 3 });
  try {
    return await fn(new ApiKeyStore(redis, config.QUEUE_PREFIX), redis);
  } finally {
    redis.disconnect();
  }
}

/**
 * Before `npm start` starts the API: on a first start (no usable admin key stored, TQ_ADMIN_KEY
 * unset) the admin key is made here, so the banner can print it once and the demo can use it. On
 * later starts the admin key is not known (only its hash is stored): the demo gets a member key of
 * its own that expires in an hour.
 */
export async function prepareStartKeys(config: AppConfig, demo: boolean): Promise<StartKeys> {
  if (config.AUTH === 'off') return { admin: 'AUTH=off' };
  return withKeyStore(config, async (store, redis) => {
    const created = config.TQ_ADMIN_KEY ? undefined : await ensureFirstAdminKey(store, redis, config.QUEUE_PREFIX);
    if (created) return { admin: 'first start', created, demo: created };
    const admin = config.TQ_ADMIN_KEY ? 'TQ_ADMIN_KEY' : 'earlier start';
    return demo ? { admin, demo: await demoKey(store) } : { admin };
  });
}

/** A member key of the default tenant for a demo run, expiring in DEMO_KEY_SECONDS (listed, like every key). */
export async function demoKey(store: ApiKeyStore): Promise<string> {
  const { key } = await store.create({
    name: 'npm start demo',
    tenant: DEFAULT_TENANT,
    role: 'member',
    expiresAt: new Date(Date.now() + DEMO_KEY_SECONDS * 1000),
  });
  return key;
}

/** The banner's lines about keys. */
export function describeStartKeys(keys: StartKeys): string[] {
  const newKey = '`npm run admin-key` makes a new admin key (run where Redis is reachable)';
  const demo =
    keys.demo && keys.demo !== keys.created
      ? [
          `             The demo runs with a member key of its own, valid ${DEMO_KEY_SECONDS / 3600} hour ("npm start demo").`,
        ]
      : [];
  switch (keys.admin) {
    case 'AUTH=off':
      return ['  API keys   none: AUTH=off, every caller is an admin (allowed on loopback only)'];
    case 'first start':
      return [
        `  Admin key  ${keys.created}`,
        '             created at this first start and shown only now: it is stored only hashed, so keep it.',
        '             Send "Authorization: Bearer <key>"; the dashboard asks for it as the password (any user name).',
        `             Lost it? ${newKey}.`,
      ];
    case 'TQ_ADMIN_KEY':
      return [
        '  Admin key  TQ_ADMIN_KEY (from your environment); send "Authorization: Bearer $TQ_ADMIN_KEY"',
        `             ${newKey}.`,
        ...demo,
      ];
    case 'earlier start':
      return [
        '  Admin key  the one printed at the first start (stored only hashed: it cannot be shown again)',
        `             Lost it? ${newKey}.`,
        ...demo,
      ];
  }
}
