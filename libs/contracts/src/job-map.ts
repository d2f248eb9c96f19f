import type { AggregateJobData, AggregateResult, DistributedProgress, TrainShardJobData, TrainShardResult } from './distributed.schema';
import type { CompressJobData, CompressProgress, CompressResult } from './compress.schema';
import type { InferJobData, InferProgress, InferResult } from './infer.schema';
import { JobName } from './queues';
import type { TrainJobData, TrainProgress, TrainResult } from './train.schema';
import { aggregateJobDataSchema, trainShardJobDataSchema } from './distributed.schema';
import { compressRequestSchema } from './compress.schema';
import { inferRequestSchema } from './infer.schema';
import { trainRequestSchema } from './train.schema';
import type { z } from 'zod';

/** One type map from job name to its payload, result and progress: the single source of job types. */
export interface JobMap {
  [JobName.Train]: { data: TrainJobData; result: TrainResult; progress: TrainProgress };
  [JobName.Compress]: { data: CompressJobData; result: CompressResult; progress: CompressProgress };
  [JobName.Infer]: { data: InferJobData; result: InferResult; progress: InferProgress };
  [JobName.Aggregate]: { data: AggregateJobData; result: AggregateResult; progress: DistributedProgress };
  [JobName.TrainShard]: { data: TrainShardJobData; result: TrainShardResult; progress: DistributedProgress };
}
export type JobDataOf<N extends JobName> = JobMap[N]['data'];
export type JobResultOf<N extends JobName> = JobMap[N]['result'];
export type JobProgressOf<N extends JobName> = JobMap[N]['progress'];

/** The schema that validates each job's payload, at the API edge and again in the worker. */
export const JOB_DATA_SCHEMAS: { [N in JobName]: z.ZodType<JobDataOf<N>, unknown> } = {
  [JobName.Train]: trainRequestSchema,
  [JobName.Compress]: compressRequestSchema,
  [JobName.Infer]: inferRequestSchema,
  [JobName.Aggregate]: aggregateJobDataSchema,
  [JobName.TrainShard]: trainShardJobDataSchema,
};
