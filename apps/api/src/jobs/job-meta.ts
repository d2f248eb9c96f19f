import { randomUUID } from 'node:crypto';
import { DEFAULT_TENANT, type JobMeta } from '@tq/contracts';

/** A request id a client may choose: a plain token, safe in logs and keys. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The envelope meta of a job submitted now: the client's X-Request-Id when it is a plain token,
 * else a new UUID, and the caller's tenant (workers count its quotas and fair share by it).
 */
export function jobMetaFor(requestId: string | undefined, tenant: string = DEFAULT_TENANT): JobMeta {
  const id = requestId !== undefined && SAFE_REQUEST_ID.test(requestId) ? requestId : randomUUID();
  return { requestId: id, tenant, submittedAt: new Date().toISOString() };
}
