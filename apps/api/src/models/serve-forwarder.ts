import { Agent, request, type IncomingMessage } from 'node:http';
import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import {
  DeadlineError,
  FieldError,
  OverloadedError,
  UnavailableError,
  type ExplainRequest,
  type ExplainResponse,
  type FieldIssue,
  type PredictResponse,
  TENSOR_CONTENT_TYPE,
} from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { RedisClientHolder } from '@tq/queue';
import { listReplicas } from '@tq/serving';
import { ArtifactStore, createOnceSecret } from '@tq/storage';
import { PredictBodyBytes } from '../common/json-body';
import type { PredictPayload } from './predict-body.pipe';

/** The headers a replica reads (apps/serve serve-http.ts): the caller's tenant, and the key that makes it trusted. */
const TENANT_HEADER = 'x-tq-tenant';
const SERVE_KEY_HEADER = 'x-tq-serve-key';
/** How long a replica list read from Redis is reused: a new replica gets traffic within this. */
const LIST_TTL_MS = 1000;

/** A replica's 4xx relayed as it was (its status and issues). */
class ReplicaClientError extends FieldError {
  constructor(
    override readonly status: number,
    issues: readonly FieldIssue[],
  ) {
    super(issues);
  }
}

/** A request body as sent to a replica. */
interface Payload {
  type: string;
  bytes: Buffer;
}

/** The attempt never got an answer from this replica (refused, reset, killed): another may give one. */
class ReplicaDownError extends Error {}

/**
 * Online predicts off the API's event loop: forwarded to a serve replica registered in Redis (the
 * one with the fewest requests outstanding from this API, over keep-alive sockets). A replica that
 * fails before answering (connection refused or reset, killed mid-request, shutting down: 503) is
 * left out and the request sent to the next (predict is idempotent); with none left a 503 with
 * Retry-After. Every attempt is bounded by SERVE_TIMEOUT_MS (and a second for the transfer), so
 * a predict never hangs.
 */
@Injectable()
export class ServeForwarder implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('serve');
  private readonly config = loadConfig();
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 512 });
  private readonly outstanding = new Map<string, number>();
  /** Replicas that failed an attempt, until this time: skipped while their registration ages out. */
  private readonly down = new Map<string, number>();
  private key: string | undefined;
  private replicas: string[] = [];
  private listedAt = 0;

  constructor(
    private readonly store: ArtifactStore,
    private readonly redis: RedisClientHolder,
  ) {}

  async onModuleInit(): Promise<void> {
    if (this.config.SERVE_MODE === 'inline') return;
    this.key = (await createOnceSecret(this.store, 'serve-key')).toString('base64');
  }

  onApplicationShutdown(): void {
    this.agent.destroy();
  }

  /**
   * The replica's answer, or undefined when this API runs the predict itself (SERVE_MODE inline,
   * or auto with no replica registered).
   */
  predict(tenant: string, name: string, version: number, body: PredictPayload): Promise<PredictResponse | undefined> {
    return this.forward(tenant, `/v1/models/${encodeURIComponent(name)}/versions/${version}/predict`, body);
  }

  /** As predict: integrated gradients run on a replica (tfjs, CPU-heavy), not on the API's event loop. */
  explain(tenant: string, name: string, version: number, body: ExplainRequest): Promise<ExplainResponse | undefined> {
    return this.forward(tenant, `/v1/models/${encodeURIComponent(name)}/versions/${version}/explain`, body);
  }

  /** A predict's bytes go on as they came (the replica checks them), anything else as JSON. */
  private async forward<T>(tenant: string, path: string, body: object): Promise<T | undefined> {
    if (this.config.SERVE_MODE === 'inline' || !this.key) return undefined;
    const replicas = await this.live();
    if (replicas.length === 0 && this.config.SERVE_MODE === 'auto') return undefined;
    const payload: Payload =
      body instanceof PredictBodyBytes
        ? { type: body.kind === 'tensor' ? TENSOR_CONTENT_TYPE : 'application/json', bytes: body.bytes }
        : { type: 'application/json', bytes: Buffer.from(JSON.stringify(body)) };
    const deadline = Date.now() + this.config.SERVE_TIMEOUT_MS + 1000;
    const tried = new Set<string>();
    for (;;) {
      const url = this.pick(replicas, tried);
      if (!url) {
        throw new UnavailableError(
          replicas.length === 0
            ? 'no serve replica is registered (SERVE_MODE=replicas): start one (apps/serve)'
            : `no serve replica answered (${tried.size} tried): try again shortly`,
          this.config.SERVE_RETRY_AFTER_SECONDS,
        );
      }
      tried.add(url);
      try {
        return (await this.send(url, path, tenant, payload, deadline)) as T;
      } catch (err) {
        if (!(err instanceof ReplicaDownError)) throw err;
        this.down.set(url, Date.now() + this.config.SERVE_REGISTRATION_TTL_MS);
        this.logger.warn(`serve replica ${url} failed (${err.message}); trying another`);
      }
    }
  }

  /** Registered replicas, read from Redis at most once a second; Redis away: the last list read (none yet: none, in auto). */
  private async live(): Promise<string[]> {
    const now = Date.now();
    if (now - this.listedAt > LIST_TTL_MS) {
      try {
        this.replicas = await listReplicas(this.redis.client, this.redis.prefix, now);
        this.listedAt = now;
      } catch (err) {
        // Never listed and Redis away: auto runs the predict here, as it did before replicas existed.
        if (this.listedAt === 0 && this.config.SERVE_MODE !== 'auto') throw err;
      }
    }
    return this.replicas.filter((url) => (this.down.get(url) ?? 0) <= now);
  }

  /** The untried replica with the fewest requests outstanding from here (ties: the first listed after a random start). */
  private pick(replicas: string[], tried: Set<string>): string | undefined {
    let best: string | undefined;
    let bestLoad = Infinity;
    const start = Math.floor(Math.random() * Math.max(replicas.length, 1));
    for (let i = 0; i < replicas.length; i++) {
      const url = replicas[(start + i) % replicas.length]!;
      if (tried.has(url)) continue;
      const load = this.outstanding.get(url) ?? 0;
      if (load < bestLoad) [best, bestLoad] = [url, load];
    }
    return best;
  }

  private async send(base: string, path: string, tenant: string, payload: Payload, deadline: number): Promise<unknown> {
    this.outstanding.set(base, (this.outstanding.get(base) ?? 0) + 1);
    try {
      const res = await new Promise<{ status: number; headers: IncomingMessage['headers']; text: string }>(
        (resolve, reject) => {
          const req = request(
            new URL(path, base),
            {
              method: 'POST',
              agent: this.agent,
              headers: {
                'content-type': payload.type,
                'content-length': payload.bytes.length,
                [TENANT_HEADER]: tenant,
                [SERVE_KEY_HEADER]: this.key,
              },
              timeout: Math.max(1, deadline - Date.now()),
            },
            (response) => {
              const chunks: Buffer[] = [];
              response.on('data', (c: Buffer) => chunks.push(c));
              response.on('end', () =>
                resolve({
                  status: response.statusCode ?? 0,
                  headers: response.headers,
                  text: Buffer.concat(chunks).toString('utf8'),
                }),
              );
              response.on('error', (err) => reject(new ReplicaDownError(err.message)));
              response.on('aborted', () => reject(new ReplicaDownError('the answer was cut off')));
            },
          );
          req.on('timeout', () => {
            req.destroy();
            reject(
              new DeadlineError(
                `no answer from a serve replica within ${this.config.SERVE_TIMEOUT_MS} ms (SERVE_TIMEOUT_MS)`,
              ),
            );
          });
          req.on('error', (err) => reject(new ReplicaDownError(err.message)));
          req.end(payload.bytes);
        },
      );
      return this.answerOf(res.status, res.headers, res.text);
    } finally {
      this.outstanding.set(base, (this.outstanding.get(base) ?? 1) - 1);
    }
  }

  /** 200: the answer; the replica's 4xx, 429 and 504 as the same errors here; its 503 (stopping) another try. */
  private answerOf(status: number, headers: IncomingMessage['headers'], text: string): unknown {
    let body: { message?: unknown; issues?: FieldIssue[] } & Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      if (status === 200) throw new Error(`a serve replica answered 200 with a body that is not JSON`);
    }
    if (status === 200) return body;
    const message = typeof body.message === 'string' ? body.message : `serve replica answered ${status}`;
    const issues = body.issues ?? [{ field: '(body)', reason: message }];
    if (status === 429) {
      const retry = Number(headers['retry-after']) || this.config.SERVE_RETRY_AFTER_SECONDS;
      throw new OverloadedError(issues[0]?.field ?? '(queue)', issues[0]?.reason ?? message, retry);
    }
    if (status === 504) throw new DeadlineError(message);
    if (status === 503) throw new ReplicaDownError(message);
    // 401: this API's serve key is not the replica's (another artifact store): ours to fix, a 500.
    if (status >= 400 && status < 500 && status !== 401) throw new ReplicaClientError(status, issues);
    throw new Error(`a serve replica answered ${status}: ${message}`);
  }
}
