import { STATUS_CODES } from 'node:http';
import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { QuotaExceededError, RedisUnavailableError } from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { RedisClientHolder, isRedisUnavailable } from '@tq/queue';
import { isClientError } from './client-errors';

/**
 * Library errors that describe a client mistake become 4xx naming the field; Redis away (down,
 * unreachable, hung) a 503 with Retry-After naming it and the cause; anything else a logged 500.
 */
@Catch()
export class ErrorsFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  constructor(private readonly redis: RedisClientHolder) {}

  catch(err: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    if (res.headersSent) return;
    if (isBodyTooLarge(err)) {
      const reason = `larger than the JSON body limit of ${loadConfig().MAX_JSON_BODY_BYTES} bytes (MAX_JSON_BODY_BYTES)`;
      return tooLarge(res, '(body)', reason);
    }
    const unavailable = this.redisUnavailable(err);
    if (unavailable) {
      res
        .status(503)
        .setHeader('Retry-After', String(unavailable.retryAfterSeconds))
        .json({ statusCode: 503, error: 'Service Unavailable', message: unavailable.message });
      return;
    }
    if (err instanceof HttpException) {
      res.status(err.getStatus()).json(normalize(err.getResponse(), err.getStatus()));
      return;
    }
    const client = isClientError(err);
    if (client) {
      if (client.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="TensorQueue"');
      const message = client.issues.map((i) => `${i.field}: ${i.reason}`).join('; ');
      // A tenant over a quota: when to come back, and the quota's figures for a client to act on.
      const quota =
        err instanceof QuotaExceededError ? { quota: { name: err.quota, used: err.used, limit: err.limit } } : {};
      if (err instanceof QuotaExceededError) res.setHeader('Retry-After', String(err.retryAfterSeconds));
      res.status(client.status).json({
        statusCode: client.status,
        error: STATUS_CODES[client.status],
        message,
        issues: client.issues,
        ...quota,
      });
      return;
    }
    this.logger.error(err instanceof Error ? err.stack : String(err));
    res.status(500).json({ statusCode: 500, error: 'Internal Server Error', message: 'internal error' });
  }

  /** The message names Redis's address and the connection's cause, never a stack. */
  private redisUnavailable(err: unknown): RedisUnavailableError | undefined {
    if (err instanceof RedisUnavailableError) return err;
    return isRedisUnavailable(err) ? this.redis.unavailable(err) : undefined;
  }
}

function tooLarge(res: Response, field: string, reason: string): void {
  res
    .status(413)
    .json({ statusCode: 413, error: 'Payload Too Large', message: `${field}: ${reason}`, issues: [{ field, reason }] });
}

/**
 * A JSON body over body-parser's `limit`: Nest's express adapter wraps body-parser's error (an
 * http-errors one, marked with the documented type "entity.too.large") in an HttpException.
 */
function isBodyTooLarge(err: unknown): boolean {
  const cause: unknown = err instanceof HttpException ? err.cause : undefined;
  return typeof cause === 'object' && cause !== null && (cause as { type?: unknown }).type === 'entity.too.large';
}

function normalize(body: string | object, status: number): object {
  return typeof body === 'string' ? { statusCode: status, message: body } : body;
}
