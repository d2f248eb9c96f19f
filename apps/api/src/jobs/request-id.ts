import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import type { Request } from 'express';

/**
 * The optional X-Request-Id header. A custom decorator rather than @Headers(), which swagger
 * documents as required; a value that is not a plain token is replaced by the service, not refused.
 */
export const RequestId = createParamDecorator((_: unknown, ctx: ExecutionContext): string | undefined => {
  const value = ctx.switchToHttp().getRequest<Request>().headers['x-request-id'];
  return typeof value === 'string' ? value : undefined;
});

export const AcceptsRequestId = () =>
  ApiHeader({
    name: 'X-Request-Id',
    required: false,
    schema: { type: 'string' },
    description:
      'Optional. Carried in the job and its logs; a value that is not 1-128 of A-Z a-z 0-9 . _ : - is replaced by a new UUID.',
  });
