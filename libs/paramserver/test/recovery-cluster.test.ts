import { startRedisCluster } from '../../../tools/redis-cluster';
import { describeRecovery } from './fixtures/recovery-suite';

/**
 * The same recovery run on a 3-master Redis Cluster of its own: the harness and its worker
 * processes read REDIS_CLUSTER_NODES, and the test's prefix gets a hash tag.
 */
describeRecovery('on a 3-master Redis Cluster, a run survives SIGKILLed worker processes', async () => {
  const cluster = await startRedisCluster(3);
  process.env.REDIS_CLUSTER_NODES = cluster.nodes;
  return async () => {
    delete process.env.REDIS_CLUSTER_NODES;
    await cluster.stop();
  };
});
