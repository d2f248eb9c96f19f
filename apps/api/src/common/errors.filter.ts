import { STATUS_CODES } from 'node:http';
import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import {
  DeadlineError,
  OverloadedError,
  QuotaExceededError,
  RedisUnavailableError,
  UnavailableError,
} from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { RedisClientHolder, isRedisUnavailable } from '@tq/queue';
import { BlobIntegrityError, BlobStoreUnavailableError } from '@tq/storage';
import { isClientError } from './client-errors';
import { requestIdOf } from './http-hardening';
import type { JsonLimit } from './json-body';

/**
 * Library errors that describe a client mistake become 4xx naming the field; Redis away (down,
 * unreachable, hung) or the blob store unreachable a 503 with Retry-After naming which and the cause; a stored object that fails
 * its integrity check (encryption at rest) a 500 naming the object; anything else a logged 500
 * whose body says nothing of the cause (no stack, no path, no internal message). Every body
 * carries the request's id (`requestId`, as in the X-Request-Id header and the log line).
 */
@Catch()
export class ErrorsFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  constructor(private readonly redis: RedisClientHolder) {}

  catch(err: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const res = http.getResponse<Response>();
    const req = http.getRequest<Request>();
    if (res.headersSent) return;
    const requestId = requestIdOf(req);
    const send = (status: number, body: object): void => void res.status(status).json({ ...body, requestId });
    if (isBodyTooLarge(err)) {
      const limit = (res.locals as { jsonLimit?: JsonLimit }).jsonLimit ?? {
        bytes: loadConfig().MAX_JSON_BODY_BYTES,
        setting: 'MAX_JSON_BODY_BYTES',
      };
      const reason = `larger than the body limit of ${limit.bytes} bytes (${limit.setting})`;
      return send(413, tooLarge('(body)', reason));
    }
    // Before Redis: an S3 endpoint's ECONNREFUSED has the socket code a Redis outage has.
    if (err instanceof BlobStoreUnavailableError) {
      res.setHeader('Retry-After', String(err.retryAfterSeconds));
      return send(503, { statusCode: 503, error: 'Service Unavailable', message: err.message });
    }
    const unavailable = this.redisUnavailable(err);
    if (unavailable) {
      res.setHeader('Retry-After', String(unavailable.retryAfterSeconds));
      return send(503, { statusCode: 503, error: 'Service Unavailable', message: unavailable.message });
    }
    // Online serving (serve replicas): no capacity answers (503) or none in time (504); not faults of ours to log.
    if (err instanceof UnavailableError || err instanceof DeadlineError) {
      if (err instanceof UnavailableError) res.setHeader('Retry-After', String(err.retryAfterSeconds));
      return send(err.status, { statusCode: err.status, error: STATUS_CODES[err.status], message: err.message });
    }
    if (err instanceof OverloadedError) res.setHeader('Retry-After', String(err.retryAfterSeconds));
    if (err instanceof HttpException && err.getStatus() < 500) {
      return send(err.getStatus(), normalize(err.getResponse(), err.getStatus()));
    }
    if (err instanceof BlobIntegrityError) {
      // Ours, not the client's: a 500 naming the object; what failed (which chunk, which check) only in the log.
      this.logger.error(`${req.method} ${req.originalUrl} [${requestId}]: ${err.message}: ${err.detail}`);
      return send(500, { statusCode: 500, error: 'Internal Server Error', message: err.message });
    }
    const client = isClientError(err);
    if (client && client.status < 500) {
      if (client.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="TensorQueue"');
      const message = client.issues.map((i) => `${i.field}: ${i.reason}`).join('; ');
      // A tenant over a quota: when to come back, and the quota's figures for a client to act on.
      const quota =
        err instanceof QuotaExceededError ? { quota: { name: err.quota, used: err.used, limit: err.limit } } : {};
      if (err instanceof QuotaExceededError) res.setHeader('Retry-After', String(err.retryAfterSeconds));
      return send(client.status, {
        statusCode: client.status,
        error: STATUS_CODES[client.status],
        message,
        issues: client.issues,
        ...quota,
      });
    }
    this.logger.error(
      `${req.method} ${req.originalUrl} [${requestId}]: ${err instanceof Error ? err.stack : String(err)}`,
    );
    send(500, { statusCode: 500, error: 'Internal Server Error', message: 'internal error' });
  }

  /** The message names Redis's address and the connection's cause, never a stack. */
  private redisUnavailable(err: unknown): RedisUnavailableError | undefined {
    if (err instanceof RedisUnavailableError) return err;
    return isRedisUnavailable(err) ? this.redis.unavailable(err) : undefined;
  }
}

function tooLarge(field: string, reason: string): object {
  return { statusCode: 413, error: 'Payload Too Large', message: `${field}: ${reason}`, issues: [{ field, reason }] };
}

/**
 * A JSON body over body-parser's `limit`: Nest's express adapter wraps body-parser's error (an
 * http-errors one, marked with the documented type "entity.too.large") in an HttpException.
 */
function isBodyTooLarge(err: unknown): boolean {
  const cause: unknown = err instanceof HttpException ? err.cause : undefined;
  return typeof cause === 'object' && cause !== null && (cause as { type?: unknown }).type === 'entity.too.large';
}

/** Nest's own 4xx bodies ({statusCode, message, error}): only those fields, never a cause or a stack. */
function normalize(body: string | object, status: number): object {
  if (typeof body === 'string') return { statusCode: status, error: STATUS_CODES[status], message: body };
  const { message, error, issues } = body as { message?: unknown; error?: unknown; issues?: unknown };
  return {
    statusCode: status,
    error: typeof error === 'string' ? error : STATUS_CODES[status],
    message: typeof message === 'string' || Array.isArray(message) ? message : STATUS_CODES[status],
    ...(issues === undefined ? {} : { issues }),
  };
}
