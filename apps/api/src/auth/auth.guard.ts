import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ForbiddenError, roleAtLeast, type Role } from '@tq/contracts';
import { AuthService, type AuthedRequest } from './auth.service';
import { MIN_ROLE, PUBLIC_ROUTE } from './roles';

/**
 * Global guard: every controller route but a `@Public()` one needs a valid key (401 otherwise),
 * whose role is at least the route's (403). Express routes outside Nest (the dashboard, /docs)
 * get the same check from `authMiddleware`.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly auth: AuthService,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    const principal = await this.auth.authenticate(req.headers.authorization);
    req.principal = principal;
    const needed: Role =
      this.reflector.getAllAndOverride<Role>(MIN_ROLE, targets) ??
      (req.method === 'GET' || req.method === 'HEAD' ? 'viewer' : 'member');
    if (!roleAtLeast(principal.role, needed))
      throw new ForbiddenError('Authorization', `this route needs the ${needed} role; the key is a ${principal.role}`);
    return true;
  }
}
