import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import type { Request } from 'express';
import { FieldError } from '@tq/contracts';
import { loadConfig } from '@tq/config';

const MAX_LENGTH = 255;

/**
 * The optional Idempotency-Key header. A custom decorator rather than @Headers(): swagger would
 * document @Headers() parameters as required.
 */
export const IdempotencyKey = createParamDecorator((_: unknown, ctx: ExecutionContext): string | undefined => {
  const value = ctx.switchToHttp().getRequest<Request>().headers['idempotency-key'];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_LENGTH) {
    throw new FieldError('Idempotency-Key', `must be one header of 1-${MAX_LENGTH} characters`);
  }
  return value;
});

export const AcceptsIdempotencyKey = () =>
  ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    schema: { type: 'string', minLength: 1, maxLength: MAX_LENGTH },
    description: `Optional. A retried POST with the same key and the same body returns the first job instead of a second one; the same key with another body answers 409. Keys are kept as long as finished jobs: ${loadConfig().JOB_HISTORY_AGE_SECONDS} s (JOB_HISTORY_AGE_SECONDS).`,
  });
