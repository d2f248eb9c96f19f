import { STATUS_CODES } from 'node:http';
import type { NextFunction, Response } from 'express';
import { TqError, roleAtLeast, type Role } from '@tq/contracts';
import type { AuthService, AuthedRequest } from './auth.service';

/**
 * A browser asked for credentials shows a login prompt: any user name, the key as the password.
 * Two header lines, not one comma-joined value: Chromium reads one challenge per line, and on a
 * joined line saw only Bearer, which it cannot answer (no prompt, no credentials sent).
 */
export const WWW_AUTHENTICATE = ['Bearer realm="TensorQueue"', 'Basic realm="TensorQueue (password: API key)"'];

/**
 * For express routes that Nest's guards do not reach (bull-board, the OpenAPI UI): the caller
 * must hold at least `role`. Failures answer the API's error body; 401 asks a browser to log in.
 */
export function authMiddleware(auth: AuthService, role: Role) {
  return (req: AuthedRequest, res: Response, next: NextFunction): void => {
    auth.authenticate(req.headers.authorization).then(
      (principal) => {
        req.principal = principal;
        if (roleAtLeast(principal.role, role)) return next();
        reply(res, 403, 'Authorization', `this page needs the ${role} role; the key is a ${principal.role}`);
      },
      (err: unknown) => {
        if (!(err instanceof TqError)) {
          // A key not in the cache is read from Redis: away, it cannot be checked (never "let in").
          res.setHeader('Retry-After', '1');
          return reply(res, 503, 'Authorization', 'the key could not be checked now (Redis unavailable); retry');
        }
        if (err.status === 401) res.setHeader('WWW-Authenticate', WWW_AUTHENTICATE);
        reply(res, err.status, 'Authorization', err.message.replace(/^Authorization: /, ''));
      },
    );
  };
}

function reply(res: Response, status: number, field: string, reason: string): void {
  res.status(status).json({
    statusCode: status,
    error: STATUS_CODES[status],
    message: `${field}: ${reason}`,
    issues: [{ field, reason }],
  });
}
