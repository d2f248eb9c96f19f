import { SetMetadata } from '@nestjs/common';
import type { JobName } from '@tq/contracts';

export const HANDLES_JOB = 'tq:handles-job';
/** Marks a processor as the handler of one job name; the worker checks at start-up that each is handled exactly once. */
export const HandlesJob = (name: JobName) => SetMetadata(HANDLES_JOB, name);
