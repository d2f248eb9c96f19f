import { trainCheckpointKey } from '@tq/jobs';
import { runIdOf } from '@tq/paramserver';
import { jobIdOfSegment, type CheckpointNaming } from '@tq/storage';

const TRAIN = trainCheckpointKey('');
/** paramserver's runCheckpointPaths: checkpointPrefix(`ps-${runId}`) (a test holds the two together). */
const RUN = 'ps-';

/**
 * A train job's checkpoints: its own (single process) and its distributed run's aggregator's, whose
 * run id is the job id made key-safe (runIdOf: the same for the ids the API issues).
 */
export const CHECKPOINT_NAMING: CheckpointNaming = {
  keysOf: (jobId) => [trainCheckpointKey(jobId), `${RUN}${runIdOf(jobId)}`],
  jobOf: (key) => {
    if (key.startsWith(TRAIN)) return jobIdOfSegment(key.slice(TRAIN.length));
    if (key.startsWith(RUN)) return jobIdOfSegment(key.slice(RUN.length));
    return undefined;
  },
};
