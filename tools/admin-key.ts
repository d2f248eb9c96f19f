import { loadConfig } from '@tq/config';
import { DEFAULT_TENANT } from '@tq/contracts';
import { withKeyStore } from './api-keys';
import { answers } from './ensure-redis';

const LOCAL_REDIS = 'redis://127.0.0.1:6379';

/**
 * `npm run admin-key [name]`: makes a new admin API key and prints it once (it is stored only
 * hashed). For an operator who can reach the system's Redis (REDIS_URL or REDIS_CLUSTER_NODES, and
 * QUEUE_PREFIX, as the API has them; else 127.0.0.1:6379): that reach already is full control of
 * the system, so no key is needed to make one. It never starts a Redis of its own: the private one
 * `npm start` may run keeps its files in .data/redis, and a second server there would share them.
 */
async function main(): Promise<void> {
  const cluster = process.env.REDIS_CLUSTER_NODES;
  const url = process.env.REDIS_URL ?? LOCAL_REDIS;
  if (!cluster && !(await answers(url)))
    throw new Error(
      `No Redis answers at ${url}. Run this where the system's Redis is reachable, with its REDIS_URL ` +
        '(npm start prints it on its first line, "TensorQueue is up (Redis: ...)") and QUEUE_PREFIX.',
    );
  const config = loadConfig({ ...process.env, ...(cluster ? {} : { REDIS_URL: url }) });
  const name = process.argv[2] ?? `admin (npm run admin-key, ${new Date().toISOString()})`;
  const { record, key } = await withKeyStore(config, (store) =>
    store.create({ name, tenant: DEFAULT_TENANT, role: 'admin' }),
  );
  console.log(
    [
      `A new admin API key: id ${record.id}, "${record.name}" (Redis ${cluster ?? url}, QUEUE_PREFIX ${config.QUEUE_PREFIX})`,
      '',
      `  ${key}`,
      '',
      'Shown this once: it is stored only hashed. Send "Authorization: Bearer <key>"; the dashboard asks for',
      'it as the password. List keys with GET /v1/keys, revoke one with DELETE /v1/keys/<id>.',
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
