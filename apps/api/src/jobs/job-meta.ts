import { randomUUID } from 'node:crypto';
import { DEFAULT_TENANT, type JobMeta } from '@tq/contracts';

/** A request id a client may choose: a plain token, safe in logs and keys. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The client's X-Request-Id when it is a plain token, else a new UUID. */
export function requestIdFrom(requestId: string | undefined): string {
  return requestId !== undefined && SAFE_REQUEST_ID.test(requestId) ? requestId : randomUUID();
}

/** The envelope meta of a job submitted now: the client's X-Request-Id when it is a plain token, else a new UUID. */
export function jobMetaFor(requestId: string | undefined): JobMeta {
  return { requestId: requestIdFrom(requestId), tenant: DEFAULT_TENANT, submittedAt: new Date().toISOString() };
}
