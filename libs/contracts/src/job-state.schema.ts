import { z } from 'zod';
import { tenantSchema } from './auth.schema';
import { DEFAULT_TENANT } from './job-envelope';
import { PUBLIC_JOB_TYPES, type PublicJobType } from './job-registry';

export const JOB_STATES = ['waiting', 'active', 'completed', 'failed', 'cancelled'] as const;
export const jobStateSchema = z.enum(JOB_STATES);
export type JobState = z.infer<typeof jobStateSchema>;

export const jobTypeSchema = z.enum(PUBLIC_JOB_TYPES as [PublicJobType, ...PublicJobType[]]);

/** GET /v1/jobs/:id */
export const jobViewSchema = z.object({
  id: z.string(),
  /** The tenant the job belongs to (its envelope's); a tombstone written before tenants: the default one. */
  tenant: tenantSchema.default(DEFAULT_TENANT),
  type: jobTypeSchema,
  state: jobStateSchema,
  progress: z.unknown(),
  result: z.unknown().nullable(),
  error: z.string().nullable(),
  /** Runs of the job that ended: failed, completed, or lost with their worker (killed, frozen). */
  attempts: z.number().int(),
  /** host:pid of the worker that processes (or processed) the job. */
  worker: z.string().nullable(),
  /**
   * Active jobs only: whether that worker still holds the job's lock (renews it every
   * LOCK_DURATION_MS/2). false: the process stopped (died, froze) and the job waits to be taken
   * over, within STALLED_INTERVAL_MS; `note` says what comes next.
   */
  workerAlive: z.boolean().optional(),
  note: z.string().optional(),
  createdAt: z.string(),
  /**
   * When a worker last started the job (BullMQ's processedOn): set while it runs and once it
   * ended; null while it waits (also between attempts). Absent in views kept from before it existed.
   */
  startedAt: z.string().nullable().optional(),
  finishedAt: z.string().nullable(),
});
export type JobView = z.infer<typeof jobViewSchema>;

export const jobListQuerySchema = z
  .object({
    type: jobTypeSchema.optional(),
    state: jobStateSchema.optional(),
    page: z.coerce.number().int().min(1).default(1),
    pageSize: z.coerce.number().int().min(1).max(200).default(20),
  })
  .strict();
export type JobListQuery = z.infer<typeof jobListQuerySchema>;
