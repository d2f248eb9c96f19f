import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Redis from 'ioredis';
import { freePort } from './free-port';

export interface RedisHandle {
  url: string;
  source: 'REDIS_URL' | 'local' | 'private';
  stop(): Promise<void>;
}

/**
 * REDIS_URL if set; else 127.0.0.1:6379 if it answers; else a private redis-server (from PATH) on a
 * free loopback port, stopped with the caller. Fails with how to get one when none of these works.
 * The private one persists (appendonly yes, in <dataDir>/redis): a restart keeps the jobs.
 */
export async function ensureRedis(dataDir = '.data', local = 'redis://127.0.0.1:6379'): Promise<RedisHandle> {
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv) {
    if (!(await answers(fromEnv))) throw new Error(`REDIS_URL=${fromEnv} does not answer PING`);
    return { url: fromEnv, source: 'REDIS_URL', stop: async () => {} };
  }
  if (await answers(local)) return { url: local, source: 'local', stop: async () => {} };
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    throw new Error(
      `No Redis answers at ${local} and redis-server is not on PATH. Install one (Debian/Ubuntu: sudo apt-get install -y redis-server; macOS: brew install redis) or set REDIS_URL.`,
    );
  }
  const server = await startRedisServer({ dir: resolve(dataDir, 'redis'), port: await freePort(), persist: true });
  return { url: server.url, source: 'private', stop: () => server.stop() };
}

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  child: ChildProcess;
  /** SIGTERM, resolved when the process has exited. */
  stop(): Promise<void>;
  /** SIGKILL (a crash: nothing is flushed), resolved when the process has exited. */
  kill(): Promise<void>;
}

/**
 * A redis-server of our own on 127.0.0.1:`port`, its files in `dir`. `persist`: appendonly yes
 * (a restart from the same dir keeps the data); otherwise it keeps nothing on disk (save "",
 * appendonly no), like a default cache. Resolves once it answers PING.
 */
export async function startRedisServer(opts: {
  dir: string;
  port: number;
  persist: boolean;
  /** More redis-server options, e.g. ['--cluster-enabled', 'yes']. */
  args?: string[];
}): Promise<RedisServer> {
  mkdirSync(opts.dir, { recursive: true });
  const args = ['--bind', '127.0.0.1', '--port', String(opts.port), '--dir', opts.dir, '--save', ''];
  args.push('--appendonly', opts.persist ? 'yes' : 'no', '--logfile', join(opts.dir, 'redis.log'));
  args.push(...(opts.args ?? []));
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const end = (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  const url = `redis://127.0.0.1:${opts.port}`;
  for (let i = 0; i < 100 && !(await answers(url)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await answers(url))) {
    await end('SIGKILL');
    throw new Error(`a private redis-server did not start on port ${opts.port}; see ${join(opts.dir, 'redis.log')}`);
  }
  return { url, port: opts.port, dir: opts.dir, child, stop: () => end('SIGTERM'), kill: () => end('SIGKILL') };
}

/**
 * Whether the Redis at `url` keeps its data on disk; undefined when it cannot tell (CONFIG
 * disabled, no answer). `npm start` warns when the Redis it reuses keeps nothing.
 */
export async function redisPersists(url: string): Promise<boolean | undefined> {
  const client = quickClient(url);
  try {
    await client.connect();
    if (/^aof_enabled:1\s*$/m.test(await client.info('persistence'))) return true;
    const save = (await client.config('GET', 'save')) as unknown;
    return Array.isArray(save) && typeof save[1] === 'string' ? save[1].trim() !== '' : undefined;
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}

/** Whether the Redis at `url` answers PING now (one quick try). */
export async function answers(url: string): Promise<boolean> {
  const client = quickClient(url);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

function quickClient(url: string): Redis {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
  });
  client.on('error', () => {});
  return client;
}
