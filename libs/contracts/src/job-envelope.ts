import { z } from 'zod';
import { tenantSchema } from './auth.schema';

/**
 * Who asked for a job and when, carried unchanged from the API to every worker and child job
 * (an aggregator and its shards carry their train job's meta). Tenancy fills `tenant`.
 */
export const jobMetaSchema = z
  .object({
    /** The HTTP request that submitted the job (X-Request-Id, or one the API made). */
    requestId: z.string().min(1).max(128),
    tenant: tenantSchema,
    submittedAt: z.iso.datetime(),
    /** Set on child jobs: the job that spawned them. */
    parentJobId: z.string().min(1).optional(),
  })
  .strict();
export type JobMeta = z.infer<typeof jobMetaSchema>;

/** The tenant of every job until API keys and tenants exist. */
export const DEFAULT_TENANT = 'default';

/** What a queue stores for every job: the meta and the validated request. */
export function jobEnvelopeSchema<S extends z.ZodType>(request: S) {
  return z.object({ meta: jobMetaSchema, request }).strict();
}
export interface JobEnvelope<R> {
  meta: JobMeta;
  request: R;
}

/** Meta for a job submitted outside the API (tests, bench, tools). */
export function localJobMeta(requestId: string = `local-${process.pid}-${Date.now()}`): JobMeta {
  return { requestId, tenant: DEFAULT_TENANT, submittedAt: new Date().toISOString() };
}
