import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { FieldError, ForbiddenError, UnauthorizedError, tenantSchema, type Principal } from '@tq/contracts';
import type { AuthedRequest } from './auth.service';

/** An admin's choice of tenant: `X-Tenant: <tenant>` on any request. */
export const TENANT_HEADER = 'X-Tenant';

/** Where a request acts and what it may see. */
export interface TenantScope {
  /** The tenant the request acts in: the key's, or for an admin the X-Tenant header's. */
  tenant: string;
  /** An admin: sees every tenant's jobs by id. */
  admin: boolean;
  /** An admin without X-Tenant: listings cover every tenant. */
  all: boolean;
}

/**
 * The scope of a caller. A member or viewer acts in its key's tenant only (an X-Tenant naming
 * another one is a 403; naming its own is allowed, so a client may always send it). An admin acts
 * in its key's tenant, or in the tenant X-Tenant names (a header, not a query parameter, so it
 * applies alike to every route, downloads and POSTs included, without widening any query schema).
 */
export function scopeOf(principal: Principal, header: string | string[] | undefined): TenantScope {
  const admin = principal.role === 'admin';
  if (header === undefined) return { tenant: principal.tenant, admin, all: admin };
  const raw = Array.isArray(header) ? header[0] : header;
  const parsed = tenantSchema.safeParse(raw);
  if (!parsed.success) throw new FieldError(TENANT_HEADER, parsed.error.issues[0]?.message ?? 'is not a tenant');
  if (!admin && parsed.data !== principal.tenant)
    throw new ForbiddenError(
      TENANT_HEADER,
      `only an admin may act in another tenant; this key is of "${principal.tenant}"`,
    );
  return { tenant: parsed.data, admin, all: false };
}

/** The request's TenantScope (after the auth guard set its principal). */
export const Scope = createParamDecorator((_: unknown, ctx: ExecutionContext): TenantScope => {
  const req = ctx.switchToHttp().getRequest<AuthedRequest>();
  if (!req.principal) throw new UnauthorizedError('Authorization', 'missing');
  return scopeOf(req.principal, req.headers['x-tenant']);
});
