import { randomUUID } from 'node:crypto';
import type { JobMeta } from '@tq/contracts';

/** A request id a client may choose: a plain token, safe in logs and keys. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The client's X-Request-Id when it is a plain token, else a new UUID. */
export function requestIdFrom(requestId: string | undefined): string {
  return requestId !== undefined && SAFE_REQUEST_ID.test(requestId) ? requestId : randomUUID();
}

/**
 * The envelope meta of a job submitted now in `tenant` (the caller's, see TenantScope): the
 * client's X-Request-Id when it is a plain token, else a new UUID. Workers read the tenant from here.
 */
export function jobMetaFor(requestId: string | undefined, tenant: string): JobMeta {
  return { requestId: requestIdFrom(requestId), tenant, submittedAt: new Date().toISOString() };
}
