import {
  type AggregateResult,
  type JobHooks,
  type TrainJobData,
  type TrainProgress,
  type TrainResult,
} from '@tq/contracts';
import type { BlobRef } from '@tq/storage';
import { initBackend, trainedVersionOf, type DataShape, type TabularData } from '@tq/ml';
import { runCheckpointPaths } from './aggregator';
import { RunChannel, SupersededError } from './channel';
import { enqueueRun, finishRun, runIdOf, settleAggregator } from './child-jobs';
import type { CoordinatorDeps } from './deps';
import { checkRun, earlierRunResult, registerRun, runResultOf } from './register-run';
import { requireDistributed } from './run-setup';
import { DistributedRunCancelledError, LOADING, stopOnSignal, waitForAggregator, type Watch } from './run-watch';

/**
 * The Train processor body when `request.distributed` is set. Enqueues the aggregator job and one
 * job per shard (ids derived from `hooks.jobId`), forwards the aggregator's progress, waits for it,
 * registers ONE model version from the final weights, removes the run's Redis keys and checkpoint.
 * `hooks.signal` aborted with a CancelledError cancels the run: the aggregator and the shards are
 * told to stop, nothing is kept; with any other reason (its job lock was lost) only this attempt ends.
 *
 * Deployment rule: this function only waits (a poll every `pollMs`, no compute), but it occupies a
 * slot of the train queue's worker for the whole run. The shards and the aggregator run on workers
 * serving the train-shard and aggregate queues; in the worker app each queue has its own BullMQ
 * Worker, so one process with concurrency 1 can hold a coordinator, the aggregator and one shard at
 * once. A run of N workers needs N train-shard slots (N processes at concurrency 1: two shards in one
 * process share one JS thread) and one aggregate slot somewhere. With fewer, the progress says
 * `waitingForWorkers` and the log names the missing slots; sync steps close without the shards that
 * never started (given the quorum); below the quorum the run stalls and the aggregator fails.
 */
export async function coordinateDistributedTraining(
  data: TrainJobData,
  deps: CoordinatorDeps,
  hooks: JobHooks<TrainProgress>,
  /** The run's rows when the caller loaded them already (read once, dropped after the checks). */
  loaded?: TabularData,
): Promise<TrainResult> {
  const spec = requireDistributed(data);
  const backend = deps.backend ?? (await initBackend());
  const existing = await trainedVersionOf(deps.registry, data.model.name, hooks.jobId);
  if (existing) return earlierRunResult(deps, runIdOf(hooks.jobId), existing, backend.name, spec);
  return runDataParallel(
    data,
    deps,
    hooks,
    async ({ outcome, finalPath, shape }) => {
      const registered = await registerRun(
        deps,
        data,
        shape,
        hooks.jobId,
        outcome,
        finalPath,
        backend.name,
        hooks.log,
        hooks.fence,
      );
      return runResultOf(registered.meta, backend.name, outcome, spec, registered.figures);
    },
    loaded,
  );
}

/** What a finished run leaves its caller: the aggregator's result and final weights, the data's shape. */
export interface FinishedRun {
  outcome: AggregateResult;
  /** final.ckpt: loadCheckpointWeights reads it into a model built as the run's starting one. */
  finalPath: BlobRef;
  shape: DataShape;
}

/**
 * One data-parallel run of `request` for the job of `hooks` (its run id is the job's): checks it,
 * enqueues the aggregator and the shards (or re-attaches to them), forwards progress, and hands the
 * finished run to `commit` before its keys and checkpoint are removed. A compress job fine-tunes
 * this way (its commit loads the weights), the train job registers a version.
 */
export async function runDataParallel<T>(
  request: TrainJobData,
  deps: CoordinatorDeps,
  hooks: JobHooks<TrainProgress>,
  commit: (run: FinishedRun) => Promise<T>,
  loaded?: TabularData,
): Promise<T> {
  const spec = requireDistributed(request);
  const parentJobId = hooks.jobId;
  const runId = runIdOf(parentJobId);

  const channel = new RunChannel(deps.redis, {
    runId,
    shards: spec.workers,
    prefix: deps.keyPrefix ?? deps.aggregateQueue.opts.prefix ?? 'bull',
  });
  // Before anything slow: an older attempt still running (its lock lapsed while it stalled) stops
  // at its next look instead of registering a second version.
  const claim = await channel.claim('coordinator');
  let shape: DataShape;
  try {
    // Bad input (a model that does not fit the data, ...) fails here, before any child job exists.
    shape = await checkRun(request, deps, parentJobId, loaded);
    loaded = undefined; // the rows are not needed past the checks; the run may last hours
  } catch (err) {
    await channel.release(claim);
    throw err;
  }
  const paths = runCheckpointPaths(deps.store, runId);
  const watch: Watch = { cancelled: false, aggregatorFailed: false };
  try {
    await hooks.onProgress(LOADING);
    stopOnSignal(hooks.signal, runId, watch);
    await enqueueRun(deps, channel, runId, parentJobId, request, hooks.meta);
    const outcome = await waitForAggregator(deps, channel, claim, spec.workers, watch, hooks);
    if (outcome.status === 'aborted') {
      watch.cancelled = true;
      throw new DistributedRunCancelledError(runId);
    }
    if (await channel.isSuperseded(claim)) throw new SupersededError(runId, claim.role);
    await hooks.onProgress({
      stage: 'saving',
      percent: 100,
      epochs: request.fit.epochs,
      epoch: outcome.stoppedEpoch ?? request.fit.epochs,
      step: outcome.steps,
    });
    const committed = await commit({ outcome, finalPath: paths.final, shape });
    await finishRun(deps, channel, runId, spec.workers, paths.prefix, hooks.log);
    return committed;
  } catch (err) {
    if (watch.cancelled) {
      await channel.abort();
      // Let the aggregator see the flag and stop (within a second) before its keys are removed.
      await settleAggregator(deps, runId, 15_000);
      await finishRun(deps, channel, runId, spec.workers, paths.prefix, hooks.log);
    } else if (watch.aggregatorFailed) {
      // Nothing runs any more; the checkpoint stays, so a retry of this job resumes from it.
      await channel.abort();
      await finishRun(deps, channel, runId, spec.workers, undefined, hooks.log);
    }
    // Any other error (Redis hiccup, this process's own trouble): the run goes on untouched and
    // a retry of this job re-attaches to it.
    throw err;
  } finally {
    await channel.close();
  }
}
