import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { RequestRate } from '@tq/auth';
import { defaultQuotas } from '@tq/queue';
import type { AuthedRequest } from '../auth/auth.service';
import { ApiReplicas } from './api-replicas.service';
import { TenantQuotas } from './tenant-quotas.service';

/**
 * Requests per second per tenant (maxRequestsPerSecond, requestBurst), after the AuthGuard has
 * named the caller: a token bucket in this replica's memory, so the check costs no Redis round
 * trip (the tenant's overrides are cached, TenantLimits). With N API replicas alive (ApiReplicas)
 * each bucket holds 1/N of the rate and the burst: over all replicas a tenant gets its quota when
 * the load balancer spreads its requests evenly (a tenant pinned to one replica gets 1/N: the
 * error is towards refusing, never towards N times the rate). Routes without a caller (/health)
 * are not counted. Over the rate: 429 with Retry-After.
 */
@Injectable()
export class RequestRateGuard implements CanActivate {
  private readonly rate = new RequestRate();

  constructor(
    private readonly quotas: TenantQuotas,
    private readonly replicas: ApiReplicas,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const principal = ctx.switchToHttp().getRequest<AuthedRequest>().principal;
    if (!principal) return true;
    // Redis away: the defaults apply (the route itself answers 503 if it needs Redis).
    const quotas = await this.quotas.limits.of(principal.tenant).catch(() => defaultQuotas());
    this.rate.takeShare(principal.tenant, quotas, { count: this.replicas.live, kind: 'API replica' });
    return true;
  }
}
