import { Public } from '../auth/roles';
import { Controller, Get, HttpStatus, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { healthSchema, type Health, type RedisPersistence } from '@tq/contracts';
import type { BackendInfo } from '@tq/ml';
import { RedisClientHolder, type RedisClient } from '@tq/queue';
import { Cluster } from 'ioredis';
import { InjectBackend } from '@tq/runtime';
import { JsonResponse } from '../common/openapi';
import { bounded } from '../redis/bounded';
import { RedisEpoch } from '../redis/redis-epoch.service';
import { NO_PERSISTENCE_WARNING, readPersistence } from '../redis/redis-persistence';

/** Each Redis read of /health waits this long at most: the whole answer comes within ~0.5 s. */
const PROBE_MS = 500;
/** Persistence settings rarely change: read at most every 5 s. */
const PERSISTENCE_TTL_MS = 5000;

@ApiTags('ops')
@Public()
@Controller('health')
export class HealthController {
  private persistence: { value: RedisPersistence; at: number } = { value: 'unknown', at: 0 };

  constructor(
    private readonly redis: RedisClientHolder,
    private readonly epoch: RedisEpoch,
    @InjectBackend() private readonly backend: BackendInfo,
  ) {
    // A reconnect may be to another Redis, or to the same one restarted with other settings.
    this.redis.client.on('ready', () => (this.persistence.at = 0));
  }

  /**
   * 200 when Redis answers, 503 otherwise; "degraded" as well once Redis lost its data since this
   * API started. Says whether Redis persists, and names the compute backend this process chose.
   */
  @Get()
  @JsonResponse(200, healthSchema, 'Redis answers ("degraded" with a warning when it lost its data)')
  @JsonResponse(503, healthSchema, 'Redis does not answer ("degraded")')
  async health(@Res({ passthrough: true }) res: Response): Promise<Health> {
    const [ping, persistence] = await Promise.all([this.ping(), this.readPersistence(), this.checkEpoch()]);
    const warnings: string[] = [];
    if (!ping.ok) warnings.push(ping.error ?? 'Redis does not answer');
    const dataLost = this.epoch.losses;
    if (dataLost.length)
      warnings.push(`Redis lost its data (restarted empty at ${dataLost.join(', ')}): the jobs it held then are gone`);
    if (persistence === 'none') warnings.push(NO_PERSISTENCE_WARNING);
    if (!ping.ok) res.status(HttpStatus.SERVICE_UNAVAILABLE);
    return {
      status: ping.ok && dataLost.length === 0 ? 'ok' : 'degraded',
      redis: { ...ping, persistence, ...(dataLost.length ? { dataLost: [...dataLost] } : {}) },
      warnings,
      backend: this.backend,
    };
  }

  /** Unreachable from the connection's state at once; else a PING bounded by PROBE_MS. */
  private async ping(): Promise<{ ok: boolean; latencyMs?: number; error?: string }> {
    if (!this.redis.ready) return { ok: false, error: this.redis.unavailable().message };
    const started = Date.now();
    return bounded(pingAndClusterState(this.redis.client), PROBE_MS, 'PING').then(
      () => ({ ok: true, latencyMs: Date.now() - started }),
      (err: unknown) => ({ ok: false, error: this.redis.unavailable(err).message }),
    );
  }

  private async readPersistence(): Promise<RedisPersistence> {
    if (!this.redis.ready || Date.now() - this.persistence.at < PERSISTENCE_TTL_MS) return this.persistence.value;
    const value = await bounded(readPersistence(this.redis.client), PROBE_MS, 'persistence').catch(
      () => this.persistence.value,
    );
    this.persistence = { value, at: Date.now() };
    return value;
  }

  private checkEpoch(): Promise<void> {
    return bounded(this.epoch.check(), PROBE_MS, 'epoch').catch(() => undefined);
  }
}

/** PING; on a cluster also CLUSTER INFO, which must say cluster_state:ok (else slots are unserved). */
async function pingAndClusterState(client: RedisClient): Promise<void> {
  await client.ping();
  if (!(client instanceof Cluster)) return;
  const info = String(await client.cluster('INFO'));
  const state = /^cluster_state:(\w+)/m.exec(info)?.[1];
  if (state !== 'ok') throw new Error(`Redis Cluster state is ${state ?? 'unknown'}, not ok`);
}
