import { loadConfig } from '@tq/config';
import { redisAddress } from '@tq/queue';
import { answers } from './ensure-redis';
import { takePrefix } from './store-claim';

const LOCAL_REDIS = 'redis://127.0.0.1:6379';

/**
 * `npm run take-prefix`: gives QUEUE_PREFIX (on REDIS_URL or REDIS_CLUSTER_NODES, else
 * 127.0.0.1:6379) to the artifact store this configuration names (ARTIFACT_DIR, default ./.data,
 * or the bucket), whoever held it: for the store that held it gone for good, or a system moved to
 * another folder or bucket. Nothing is deleted or moved: jobs, versions and aliases Redis kept
 * name files in the other store. Processes of the other store still running stop within seconds.
 */
async function main(): Promise<void> {
  const cluster = process.env.REDIS_CLUSTER_NODES;
  const url = process.env.REDIS_URL ?? LOCAL_REDIS;
  if (!cluster && !(await answers(url))) throw new Error(`No Redis answers at ${url} (set REDIS_URL to the system's).`);
  const config = loadConfig({ ...process.env, ...(cluster ? {} : { REDIS_URL: url }) });
  const { identity, previous } = await takePrefix(config);
  console.log(
    [
      `QUEUE_PREFIX "${config.QUEUE_PREFIX}" on Redis ${redisAddress(config)} now belongs to ${identity.location} (id ${identity.id}).`,
      previous === undefined ? 'Nobody held it before.' : `It was held by: ${previous}`,
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
