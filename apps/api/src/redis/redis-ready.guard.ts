import { Injectable, type CanActivate } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { RedisClientHolder } from '@tq/queue';
import { requestIdOf } from '../common/http-hardening';

/**
 * Routes that need Redis answer 503 at once while the API's connection is not ready, instead of
 * reaching a command (which fails fast too) or, before the first connection, BullMQ's queues, which
 * wait for their first connection without bound.
 */
@Injectable()
export class RedisReady implements CanActivate {
  constructor(private readonly redis: RedisClientHolder) {}

  canActivate(): boolean {
    if (!this.redis.ready) throw this.redis.unavailable();
    return true;
  }
}

/**
 * The same for the dashboard (bull-board is express middleware, out of reach of Nest's guards):
 * mounted in front of it, a 503 with Retry-After while Redis is away, where it used to hang.
 */
export function dashboardGuard(redis: RedisClientHolder) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (redis.ready) return next();
    const err = redis.unavailable();
    res
      .status(503)
      .setHeader('Retry-After', String(err.retryAfterSeconds))
      .json({ statusCode: 503, error: 'Service Unavailable', message: err.message, requestId: requestIdOf(req) });
  };
}
