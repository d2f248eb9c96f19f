import { Body, Controller, Get, Param, Put, UseGuards } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import {
  NotFoundError,
  tenantQuotasUpdateSchema,
  tenantQuotasViewSchema,
  tenantSchema,
  tenantUsageSchema,
  type Principal,
  type TenantQuotasUpdate,
  type TenantQuotasView,
  type TenantUsage,
} from '@tq/contracts';
import { ErrorResponses, JsonBody, JsonResponse } from '../common/openapi';
import { ZodPipe } from '../common/zod-body.pipe';
import { RedisReady } from '../redis/redis-ready.guard';
import { Caller, MinRole } from '../auth/roles';
import { TenantQuotas } from './tenant-quotas.service';

/** A tenant's quotas (admins set them) and usage (admins, and the tenant's own keys). */
@ApiTags('tenants')
@Controller('v1/tenants')
@UseGuards(RedisReady)
export class TenantsController {
  constructor(private readonly quotas: TenantQuotas) {}

  @Put(':tenant/quotas')
  @MinRole('admin')
  @JsonBody(tenantQuotasUpdateSchema, { maxQueuedJobs: 100, maxActiveJobs: 4, maxRequestsPerSecond: 20 })
  @JsonResponse(200, tenantQuotasViewSchema, "the tenant's quotas now (quotas left out follow the defaults)")
  @ErrorResponses(400, 401, 403)
  setQuotas(
    @Param('tenant', new ZodPipe(tenantSchema, 'tenant')) tenant: string,
    @Body(new ZodPipe(tenantQuotasUpdateSchema)) body: TenantQuotasUpdate,
  ): Promise<TenantQuotasView> {
    return this.quotas.setOverrides(tenant, body);
  }

  @Get(':tenant/usage')
  @JsonResponse(200, tenantUsageSchema, "the tenant's quotas and what it holds now")
  @ErrorResponses(400, 401, 404)
  usage(
    @Param('tenant', new ZodPipe(tenantSchema, 'tenant')) tenant: string,
    @Caller() caller: Principal,
  ): Promise<TenantUsage> {
    // Another tenant's figures are not there for a member: 404, as for its jobs.
    if (caller.role !== 'admin' && caller.tenant !== tenant) throw new NotFoundError('tenant', `no tenant "${tenant}"`);
    return this.quotas.usage(tenant);
  }
}
