import type * as tf from '@tensorflow/tfjs';
import {
  FieldError,
  trainRequestSchema,
  type DistributedSpec,
  type JobHooks,
  type ModelVersionMeta,
  type PruneSpec,
  type TrainProgress,
} from '@tq/contracts';
import { kernelSparsity, type PruneOutcome } from '@tq/ml';
import { loadCheckpointWeights, runDataParallel, type CoordinatorDeps } from '@tq/paramserver';
import { sourceRowsRequest, type SourceData } from './compress-data';

/**
 * A prune step's data-parallel fine-tune (`prune.distributed`): a train run of the source
 * (`model.from`) on its own rows and split, `fit.prune` holding the masks on the parameter server
 * after every update, its final weights loaded into `model` (the source as loaded, same layers).
 * The run is the compress job's (run id from its job id): a retried job re-attaches to it.
 */
export async function pruneDataParallel(
  model: tf.LayersModel,
  spec: PruneSpec & { distributed: DistributedSpec },
  ctx: {
    source: ModelVersionMeta;
    split: Pick<SourceData['split'], 'validationSplit' | 'seed'>;
    deps: CoordinatorDeps | undefined;
    hooks: JobHooks<TrainProgress>;
    field: string;
  },
): Promise<PruneOutcome> {
  const rows = sourceRowsRequest(ctx.source);
  if (!ctx.deps)
    throw new FieldError(ctx.field, 'this process runs no data-parallel fine-tunes (no queues to run them on)');
  if (!rows) throw new FieldError('source', `${ctx.source.name} v${ctx.source.version} records no training data`);
  const request = trainRequestSchema.parse({
    ...rows,
    fit: {
      epochs: spec.fineTuneEpochs,
      batchSize: spec.batchSize,
      learningRate: spec.learningRate,
      optimizer: 'adam',
      validationSplit: ctx.split.validationSplit,
      seed: ctx.split.seed,
      prune: { sparsity: spec.sparsity, scope: spec.scope, schedule: spec.schedule },
    },
    distributed: spec.distributed,
  });
  const outcome = await runDataParallel(request, ctx.deps, ctx.hooks, async ({ outcome, finalPath }) => {
    await loadCheckpointWeights(finalPath, model);
    return outcome;
  });
  return {
    model,
    sparsity: kernelSparsity(model),
    fineTune: {
      epochs: outcome.history.length,
      metrics: outcome.metrics ?? { loss: Number.NaN },
      samplesPerSec: outcome.samplesPerSec,
    },
  };
}
