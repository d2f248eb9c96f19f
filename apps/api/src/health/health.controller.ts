import { Controller, Get, HttpStatus, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { healthSchema, type Health } from '@tq/contracts';
import type { BackendInfo } from '@tq/ml';
import { RedisClientHolder } from '@tq/queue';
import { InjectBackend } from '@tq/runtime';
import { JsonResponse } from '../common/openapi';

@ApiTags('ops')
@Controller('health')
export class HealthController {
  constructor(
    private readonly redis: RedisClientHolder,
    @InjectBackend() private readonly backend: BackendInfo,
  ) {}

  /** 200 when Redis answers; 503 otherwise. Also names the compute backend this process chose. */
  @Get()
  @JsonResponse(200, healthSchema, 'Redis answers')
  @JsonResponse(503, healthSchema, 'Redis does not answer ("degraded")')
  async health(@Res({ passthrough: true }) res: Response): Promise<Health> {
    const started = Date.now();
    const redis = await this.redis.client.ping().then(
      () => ({ ok: true, latencyMs: Date.now() - started }),
      (err: Error) => ({ ok: false, error: err.message }),
    );
    if (!redis.ok) res.status(HttpStatus.SERVICE_UNAVAILABLE);
    return { status: redis.ok ? 'ok' : 'degraded', redis, backend: this.backend };
  }
}
