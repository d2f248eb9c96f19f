import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RedisNode } from '@tq/config';
import { createRedisClient, redisMasters } from '@tq/queue';
import { freePort } from '../../tools/free-port';
import { API_MAIN, SERVE_MAIN, WORKER_MAIN, startApp, stopProcess, waitForHttp } from '../../tools/processes';

export interface SystemOptions {
  workers?: number;
  workerEnv?: Record<string, string>;
  env?: Record<string, string>;
  /**
   * Run as `npm start` does: ARTIFACT_DIR unset, so every process keeps artifacts in ./.data of
   * its working directory (a private temp folder here). A dot segment in the artifact path is what
   * broke express's sendFile; this keeps that default covered.
   */
  defaultArtifactDir?: boolean;
}

/**
 * A real system for one test file: the API and N worker processes on real Redis, with a unique
 * queue prefix and a private artifact folder, both removed by stop().
 */
export class TestSystem {
  readonly workers: ChildProcess[] = [];
  /** Serve replicas (addServeReplica), stopped with the system. */
  readonly replicas: ChildProcess[] = [];
  private api?: ChildProcess;
  private readonly extraApis: ChildProcess[] = [];
  private constructor(
    readonly url: string,
    readonly prefix: string,
    readonly artifactDir: string,
    private readonly tempDir: string,
    private readonly env: Record<string, string | undefined>,
    private readonly workerEnv: Record<string, string>,
  ) {}

  static async start(opts: SystemOptions = {}): Promise<TestSystem> {
    const port = await freePort();
    // A cluster needs the prefix's keys in one slot: a hash tag.
    const id = randomUUID().slice(0, 8);
    const prefix = opts.env?.REDIS_CLUSTER_NODES ? `{tqc-${id}}` : `tqtest-${id}`;
    const tempDir = await mkdtemp(join(tmpdir(), 'tq-e2e-'));
    const artifactDir = opts.defaultArtifactDir ? join(tempDir, '.data') : tempDir;
    const env = {
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      QUEUE_PREFIX: prefix,
      ARTIFACT_DIR: opts.defaultArtifactDir ? undefined : artifactDir,
      PORT: String(port),
      LOG_LEVEL: 'warn',
      WORKER_METRICS_PORT: '0',
      API_METRICS_PORT: '0',
      // The test's client is an admin by configuration (tests of keys and roles make their own).
      TQ_ADMIN_KEY: randomBytes(32).toString('base64url'),
      ...opts.env,
    };
    const system = new TestSystem(`http://127.0.0.1:${port}`, prefix, artifactDir, tempDir, env, opts.workerEnv ?? {});
    system.api = startApp(API_MAIN, 'api', env, !process.env.TQ_TEST_VERBOSE, tempDir);
    for (let i = 0; i < (opts.workers ?? 1); i++) system.addWorker();
    try {
      await waitForHttp(`${system.url}/health`);
    } catch (err) {
      await system.stop();
      throw err;
    }
    return system;
  }

  /** The API process (tests that measure its memory read /proc/<pid>). */
  get apiPid(): number | undefined {
    return this.api?.pid;
  }

  get redisUrl(): string {
    return this.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  }

  /** REDIS_CLUSTER_NODES of the system, when it runs on a cluster. */
  get clusterNodes(): string | undefined {
    return this.env.REDIS_CLUSTER_NODES;
  }

  addWorker(extraEnv: Record<string, string> = {}): ChildProcess {
    const worker = startApp(
      WORKER_MAIN,
      `worker-${this.workers.length + 1}`,
      { ...this.env, ...this.workerEnv, ...extraEnv },
      !process.env.TQ_TEST_VERBOSE,
      this.tempDir,
    );
    this.workers.push(worker);
    return worker;
  }

  /**
   * Another API process of this system (the same environment, another port), as a second replica
   * behind a load balancer; stopped by stop(). Resolves with its base URL and process once /health answers.
   */
  async addApi(extraEnv: Record<string, string> = {}): Promise<{ url: string; process: ChildProcess }> {
    const port = await freePort();
    const api = startApp(
      API_MAIN,
      `api-${this.extraApis.length + 2}`,
      { ...this.env, PORT: String(port), ...extraEnv },
      !process.env.TQ_TEST_VERBOSE,
      this.tempDir,
    );
    this.extraApis.push(api);
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/health`);
    return { url, process: api };
  }

  /**
   * Starts a serve replica (apps/serve) on a free port and waits until it answers /health and is
   * registered in Redis (the API then forwards predicts to it within a second).
   */
  async addServeReplica(extraEnv: Record<string, string> = {}): Promise<{ process: ChildProcess; url: string }> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const replica = startApp(
      SERVE_MAIN,
      `serve-${this.replicas.length + 1}`,
      { ...this.env, SERVE_PORT: String(port), ...extraEnv },
      !process.env.TQ_TEST_VERBOSE,
      this.tempDir,
    );
    this.replicas.push(replica);
    await waitForHttp(`${url}/health`);
    return { process: replica, url };
  }

  /** `fetch` of a path on the API, as the system's client (its credentials added to `init`). */
  fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    for (const [name, value] of Object.entries(this.clientHeaders())) if (!headers.has(name)) headers.set(name, value);
    return fetch(this.url + path, { ...init, headers });
  }

  /**
   * The folder of a tenant's objects in the local artifact folder (tenants/<tenant>/): by default
   * the config admin's tenant, where every request of this system's client lands.
   */
  tenantDir(tenant = 'default'): string {
    return join(this.artifactDir, 'tenants', tenant);
  }

  /** The headers every request of this system's client carries. */
  clientHeaders(): Record<string, string> {
    return this.adminKey ? { authorization: `Bearer ${this.adminKey}` } : {};
  }

  /** TQ_ADMIN_KEY of the system (unset with AUTH=off). */
  get adminKey(): string | undefined {
    return this.env.AUTH === 'off' ? undefined : this.env.TQ_ADMIN_KEY;
  }

  /**
   * A request sent as written, as the system's client (its credentials added): no URL
   * normalisation, so `..`, `\`, `%2e` and the like reach the server as they are (fetch resolves
   * them first). `path` may hold only printable Latin-1: percent-encode the rest. An event stream's
   * body is not read (it lasts as long as its job).
   */
  raw(
    method: string,
    path: string,
    opts: { headers?: Record<string, string>; body?: string | Buffer } = {},
  ): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
    const { hostname, port } = new URL(this.url);
    const headers: Record<string, string> = { ...this.clientHeaders(), ...opts.headers };
    // Node sends a DELETE's or a GET's body unframed unless told its length.
    if (opts.body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length'))
      headers['content-length'] = String(Buffer.byteLength(opts.body));
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: hostname, port, method, path, headers }, (res) => {
        // An event stream lasts as long as its job: its status and headers are the answer.
        if (res.headers['content-type']?.startsWith('text/event-stream')) {
          res.destroy();
          return resolve({ status: res.statusCode ?? 0, headers: res.headers, text: '' });
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() }),
        );
      });
      req.on('error', reject);
      req.end(opts.body);
    });
  }

  /** Calls `listener` with each line the API process writes (stdout and stderr): tests of its log lines. */
  onApiLine(listener: (line: string) => void): void {
    for (const stream of [this.api?.stdout, this.api?.stderr]) {
      let buffered = '';
      stream?.on('data', (chunk: Buffer) => {
        const lines = (buffered + chunk.toString()).split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) listener(line);
      });
    }
  }

  async request(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await this.fetch(path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.status, body: parsed };
  }

  /** Polls the job until it reaches one of `states` (default: any terminal state). */
  async waitForJob(id: string, states = ['completed', 'failed', 'cancelled'], timeoutMs = 300_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { body } = await this.request('GET', `/v1/jobs/${id}`);
      if (states.includes(body.state)) return body;
      if (Date.now() > deadline)
        throw new Error(`job ${id} still ${body.state} after ${timeoutMs} ms: ${JSON.stringify(body)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async stop(): Promise<void> {
    await Promise.all(
      [...this.workers, ...this.replicas, ...this.extraApis, ...(this.api ? [this.api] : [])].map((c) =>
        stopProcess(c, 'SIGTERM', 5000),
      ),
    );
    await deleteKeys(this.env.REDIS_URL ?? '', `${this.prefix}:*`, this.env.REDIS_CLUSTER_NODES);
    await rm(this.tempDir, { recursive: true, force: true });
  }
}

/** Deletes the keys matching `pattern`: on the Redis at `url`, or on every master of the cluster `clusterNodes`. */
export async function deleteKeys(url: string, pattern: string, clusterNodes?: string): Promise<void> {
  const target = { REDIS_URL: url, ...(clusterNodes ? { REDIS_CLUSTER_NODES: nodesOf(clusterNodes) } : {}) };
  // ioredis's default: a Redis that is gone fails the clean-up after 20 tries instead of hanging it.
  const redis = createRedisClient(target, 'worker', { maxRetriesPerRequest: 20 });
  try {
    if (clusterNodes) await redis.ping(); // a Cluster client knows its masters once connected
    for (const node of redisMasters(redis)) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        // One UNLINK per key: on a cluster, keys of several slots may not share a command.
        if (keys.length) await keys.reduce((p, k) => p.unlink(k), node.pipeline()).exec();
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
}

/** "host:port,..." as REDIS_CLUSTER_NODES parses it. */
export function nodesOf(list: string): RedisNode[] {
  return list.split(',').map((item) => {
    const [host, port] = item.trim().split(':');
    return { host: host!, port: Number(port) };
  });
}
