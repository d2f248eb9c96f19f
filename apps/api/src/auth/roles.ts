import { SetMetadata, createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { UnauthorizedError, type Principal, type Role } from '@tq/contracts';
import type { AuthedRequest } from './auth.service';

export const MIN_ROLE = 'tq:min-role';
export const PUBLIC_ROUTE = 'tq:public';

/**
 * The least role a route needs. Without it: `viewer` for GET and HEAD, `member` for anything
 * that changes state; admin-only routes say `@MinRole('admin')`.
 */
export const MinRole = (role: Role) => SetMetadata(MIN_ROLE, role);

/** Reachable without a key (only /health). */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);

/** The authenticated caller of this request. */
export const Caller = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const principal = ctx.switchToHttp().getRequest<AuthedRequest>().principal;
  if (!principal) throw new UnauthorizedError('Authorization', 'missing');
  return principal;
});
