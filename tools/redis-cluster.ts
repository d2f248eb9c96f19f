import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { startRedisServer, type RedisServer } from './ensure-redis';
import { freePort } from './free-port';

export interface RedisCluster {
  /** "127.0.0.1:p1,127.0.0.1:p2,...": the value of REDIS_CLUSTER_NODES. */
  nodes: string;
  servers: RedisServer[];
  /** Starts the node on `port` again from its files (after a test stopped or killed it). */
  restart(port: number): Promise<void>;
  /** Stops every node and removes their files. */
  stop(): Promise<void>;
}

/**
 * A Redis Cluster of `masters` masters (no replicas) on free loopback ports, its files in a temp
 * folder: redis-server --cluster-enabled yes for each, then redis-cli --cluster create. Resolves
 * once every node says cluster_state:ok. For tests and benches; needs redis-server and redis-cli
 * (Debian/Ubuntu: redis-server and redis-tools) on PATH.
 */
export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'tq-cluster-'));
  const servers: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const ports: number[] = [];
    while (ports.length < masters) {
      const port = await clusterPort();
      if (!ports.includes(port)) ports.push(port);
    }
    const start = (port: number) =>
      startRedisServer({
        dir: join(dir, String(port)),
        port,
        persist: true,
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000'],
      });
    servers.push(...(await Promise.all(ports.map(start))));
    const restart = async (port: number) => {
      const i = servers.findIndex((s) => s.port === port);
      await servers[i]?.stop();
      servers[i] = await start(port);
      await waitForClusterOk(ports);
    };
    const nodes = ports.map((p) => `127.0.0.1:${p}`);
    await promisify(execFile)('redis-cli', [
      '--cluster',
      'create',
      ...nodes,
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    await waitForClusterOk(ports);
    return { nodes: nodes.join(','), servers, restart, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A free port whose cluster bus port (port + 10000) is free as well. */
async function clusterPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port + 10000 <= 65535 && (await isFree(port + 10000))) return port;
  }
}

async function isFree(port: number): Promise<boolean> {
  const { createServer } = await import('node:net');
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

/** Every node says the slots are all served (the create command returns before they all do). */
async function waitForClusterOk(ports: number[], timeoutMs = 30_000): Promise<void> {
  const clients = ports.map((port) => new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 }));
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const infos = await Promise.all(clients.map((c) => c.cluster('INFO').catch(() => '')));
      if (infos.every((info) => /^cluster_state:ok/m.test(String(info)))) return;
      if (Date.now() > deadline)
        throw new Error(`the cluster on ports ${ports.join(', ')} is not ok after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    for (const c of clients) c.disconnect();
  }
}
