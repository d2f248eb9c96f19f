import { z } from 'zod';
import { tenantSchema } from './auth.schema';
import { JobName } from './queues';

/**
 * What a tenant may hold or do at once. Each has a default in the configuration (the variable in
 * QUOTA_VARIABLES) that an admin overrides per tenant (PUT /v1/tenants/:tenant/quotas).
 */
export const QUOTA_NAMES = [
  'maxQueuedJobs',
  'maxActiveJobs',
  'maxStoredBytes',
  'maxRequestsPerSecond',
  'requestBurst',
] as const;
export type QuotaName = (typeof QUOTA_NAMES)[number];

/** The configuration variable that holds each quota's default. */
export const QUOTA_VARIABLES: Readonly<Record<QuotaName, string>> = {
  maxQueuedJobs: 'TENANT_MAX_QUEUED_JOBS',
  maxActiveJobs: 'TENANT_MAX_ACTIVE_JOBS',
  maxStoredBytes: 'TENANT_MAX_STORED_BYTES',
  maxRequestsPerSecond: 'TENANT_MAX_REQUESTS_PER_SECOND',
  requestBurst: 'TENANT_REQUEST_BURST',
};

/**
 * Jobs a tenant submits over /v1/jobs: counted as queued at submission and as active while a
 * worker runs them. Child jobs (shards, aggregators) run inside their parent's slot; dataset
 * profiling is bounded by the stored-bytes quota instead.
 */
export const COUNTED_JOBS: readonly JobName[] = [JobName.Train, JobName.Compress, JobName.Infer];

const count = z.number().int().min(0).max(1_000_000_000);
/** Every quota of a tenant, as it applies now. */
export const tenantQuotasSchema = z
  .object({
    /** Jobs submitted and not yet finished (waiting, delayed or running). */
    maxQueuedJobs: count,
    /** Jobs running on workers at once (a job over it waits, without using up an attempt). */
    maxActiveJobs: count,
    /** Bytes under the tenant's prefix in the store (datasets, models, outputs). */
    maxStoredBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    /** Sustained requests per second over all API replicas (each replica's token bucket holds its share). */
    maxRequestsPerSecond: z.number().min(0.01).max(1_000_000),
    /** Requests a tenant may send at once before the rate applies (the bucket's size). */
    requestBurst: z.number().int().min(1).max(1_000_000),
  })
  .strict();
export type TenantQuotas = z.infer<typeof tenantQuotasSchema>;

/**
 * PUT /v1/tenants/:tenant/quotas: the tenant's overrides, replacing earlier ones. A quota left out
 * (or null) follows the configured default again.
 */
export const tenantQuotasUpdateSchema = z
  .object(
    Object.fromEntries(QUOTA_NAMES.map((n) => [n, tenantQuotasSchema.shape[n].nullable().optional()])) as {
      [K in QuotaName]: z.ZodOptional<z.ZodNullable<(typeof tenantQuotasSchema.shape)[K]>>;
    },
  )
  .strict();
export type TenantQuotasUpdate = z.infer<typeof tenantQuotasUpdateSchema>;

export const tenantQuotasViewSchema = z.object({
  tenant: tenantSchema,
  quotas: tenantQuotasSchema,
  /** The quotas an admin set for this tenant; the others are the configured defaults. */
  overridden: z.array(z.enum(QUOTA_NAMES)),
});
export type TenantQuotasView = z.infer<typeof tenantQuotasViewSchema>;

/** GET /v1/tenants/:tenant/usage: what the tenant holds now against its quotas. */
export const tenantUsageSchema = tenantQuotasViewSchema.extend({
  usage: z.object({
    queuedJobs: z.number().int().min(0),
    activeJobs: z.number().int().min(0),
    storedBytes: z.number().int().min(0),
    /** Live API replicas: each allows 1/apiReplicas of the tenant's request rate and burst. */
    apiReplicas: z.number().int().min(1),
  }),
});
export type TenantUsage = z.infer<typeof tenantUsageSchema>;
