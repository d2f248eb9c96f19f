import { z } from 'zod';
import { PUBLIC_JOB_TYPES, type PublicJobType } from './job-registry';

export const JOB_STATES = ['waiting', 'active', 'completed', 'failed', 'cancelled'] as const;
export const jobStateSchema = z.enum(JOB_STATES);
export type JobState = z.infer<typeof jobStateSchema>;

export const jobTypeSchema = z.enum(PUBLIC_JOB_TYPES as [PublicJobType, ...PublicJobType[]]);

/** GET /v1/jobs/:id */
export const jobViewSchema = z.object({
  id: z.string(),
  type: jobTypeSchema,
  state: jobStateSchema,
  progress: z.unknown(),
  result: z.unknown().nullable(),
  error: z.string().nullable(),
  attempts: z.number().int(),
  /** host:pid of the worker that processes (or processed) the job. */
  worker: z.string().nullable(),
  createdAt: z.string(),
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
