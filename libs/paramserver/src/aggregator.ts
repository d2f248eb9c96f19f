import type { AggregateJobData, AggregateResult, DistributedProgress, JobHooks, Metrics } from '@tq/contracts';
import { createOptimizer, EarlyStopping, epochMetrics, initBackend, SparsityHold } from '@tq/ml';
import type { ArtifactStore, BlobRef, BlobStore } from '@tq/storage';
import {
  closeEpoch,
  publishWeights,
  reportProgress,
  saveCheckpoint,
  stoppedEarly,
  type AggregatorContext,
} from './aggregator-context';
import { freshState, loadAggregatorCheckpoint, type AggregatorState } from './aggregator-state';
import { runAsync } from './async-loop';
import { runBarrier } from './barrier-loop';
import { openRunChannel } from './channel';
import type { AggregatorDeps } from './deps';
import { slowestWorker } from './progress';
import { loadRunData, requireDistributed, runStartingModel, splitRunData } from './run-setup';
import { RedisRetry } from './redis-retry';
import { WeightLayout } from './weight-layout';

/** Where a run's aggregator checkpoints: one prefix per run in the blob store. */
export function runCheckpointPaths(
  store: ArtifactStore,
  runId: string,
): { prefix: RunCheckpointPrefix; running: BlobRef; final: BlobRef } {
  const key = `ps-${runId}`;
  return {
    prefix: { blobs: store.blobs, prefix: store.checkpointPrefix(key) },
    running: { blobs: store.blobs, key: store.checkpointKey(key, 'aggregator.ckpt') },
    final: { blobs: store.blobs, key: store.checkpointKey(key, 'final.ckpt') },
  };
}

/** Every checkpoint object of one run, removed together when the run ends. */
export interface RunCheckpointPrefix {
  blobs: BlobStore;
  prefix: string;
}

/**
 * The Aggregate processor body: the parameter server of one run. It owns the weights and the
 * optimizer state, publishes versioned weights, applies what the shards send, checkpoints every
 * `checkpointEvery` steps, and ends by writing the final weights (final.ckpt) for the coordinator.
 * A retried job (its process died) resumes from the last checkpoint; a retry after the final write
 * only re-announces the end. Throws when the run cannot go on (no quorum for long): BullMQ retries.
 * The coordinator stops a run through the channel's abort flag; `hooks.signal` (this job cancelled,
 * its lock lost, its worker shutting down) ends this attempt with the signal's reason (the last
 * checkpoint stays for a retry).
 */
export async function runAggregator(
  data: AggregateJobData,
  deps: AggregatorDeps,
  hooks: JobHooks<DistributedProgress>,
): Promise<AggregateResult> {
  // Parsed by the caller (the worker host validates the envelope): the entry points trust their input.
  const { runId, request, parentJobId } = data;
  const spec = requireDistributed(request);
  const log = (line: string): void => hooks.log(line);
  const channel = openRunChannel(deps, runId, spec.workers);
  // First of all (the later an attempt claims, the likelier an older one claims after it): an
  // older attempt still running, its lock lapsed, stops at its next look.
  hooks.signal.throwIfAborted();
  const claim = await channel.claim('aggregator');
  const backend = await initBackend();
  const paths = runCheckpointPaths(deps.store, runId);
  const dataset = await loadRunData(request, deps);
  const { model } = await runStartingModel(request, deps, parentJobId, dataset);
  const optimizer = createOptimizer(request.fit);
  const early = request.fit.earlyStopping ? new EarlyStopping(request.fit.earlyStopping) : undefined;
  let sparsity: SparsityHold | undefined;
  try {
    const run = splitRunData(request, dataset, model);
    const layout = WeightLayout.of(model);
    const fingerprint = JSON.stringify({ runId, request, rows: dataset.rows, layout: layout.signature() });
    const ctx: AggregatorContext = {
      hooks,
      channel,
      claim,
      model,
      layout,
      optimizer,
      spec,
      run,
      state: freshState(spec.workers),
      checkpointPath: paths.running,
      fingerprint,
      progressEveryMs: deps.progressEveryMs ?? 500,
      log,
      weights: new Float32Array(layout.totalFloats),
      lastProgressAt: 0,
      lastAbortCheckAt: 0,
      unstaffed: new Set(),
      lagging: new Set(),
      retry: new RedisRetry(log, deps.redisRetryMaxMs),
      ...(early ? { early } : {}),
    };

    const ended = await loadAggregatorCheckpoint(paths.final, fingerprint);
    if (ended) {
      // The run finished in an earlier attempt that died before completing the job.
      await ended.restore(model, optimizer);
      ctx.state = ended.state;
      await publishWeights(ctx, 'done');
      return resultOf(ended.state, 'done', metricsOf(ended.state), backend.name);
    }

    const ckpt = await loadAggregatorCheckpoint(paths.running, fingerprint);
    if (ckpt) {
      ctx.state = ckpt.state;
      await ckpt.restore(model, optimizer);
      // Early stopping resumes with its patience count and best weights (checkpointed together).
      if (early && ckpt.state.earlyStopping) early.loadBest(ckpt.state.earlyStopping, ckpt.best);
    }
    // fit.prune: masks from the weights the run goes on with (the checkpoint's, or the start's).
    if (request.fit.prune) sparsity = ctx.sparsity = new SparsityHold(model, request.fit.prune);
    const previous = await channel.readState();
    if (ckpt || previous) {
      ctx.state.restarts += 1;
      ctx.state.resumedFromStep = ctx.state.step;
      log(`resuming run ${runId} at step ${ctx.state.step} (${ckpt ? 'checkpoint' : 'no checkpoint: from the start'})`);
    }
    // Shards that failed for good, as the coordinator recorded them (their messages may have gone
    // to an earlier attempt).
    for (const i of await channel.goneShards()) if (!ctx.state.gone.includes(i)) ctx.state.gone.push(i);
    // Versions only grow, across restarts too: shards spot new weights by a larger version, and
    // anything computed on the lost attempt's weights is recognisably stale.
    ctx.state.version = Math.max(ctx.state.version, (previous?.version ?? -1) + 1);

    const outcome = spec.mode === 'async' ? await runAsync(ctx) : await runBarrier(ctx);
    if (outcome === 'aborted') {
      // Tell the shards to stop, unless the coordinator has already cleaned the run up (then they
      // see it gone, and publishing would only bring keys back).
      if (!(await channel.isEnded())) {
        await channel.publish({
          version: ctx.state.version,
          step: ctx.state.step,
          status: 'aborted',
          floats: layout.totalFloats,
        });
      }
      return resultOf(ctx.state, 'aborted', undefined, backend.name);
    }
    if (ctx.state.epoch.samples > 0 && ctx.state.history.length < run.plan.epochs && !stoppedEarly(ctx))
      await closeEpoch(ctx, ctx.state.epoch.index + 1);
    // As trainModel does: the run ends with (and registers, publishes) its best epoch's weights.
    early?.restore(model);
    const metrics = metricsOf(ctx.state);
    await saveCheckpoint(ctx, paths.final);
    await publishWeights(ctx, 'done');
    await reportProgress(ctx, true);
    return resultOf(ctx.state, 'done', metrics, backend.name);
  } finally {
    await channel.close();
    optimizer.dispose();
    early?.dispose();
    sparsity?.dispose();
    model.dispose();
  }
}

/** The last epoch's figures (early stopping: the best epoch's), as trainModel reports them. */
function metricsOf(state: AggregatorState): Metrics {
  const best = state.earlyStopping?.bestEpoch ?? 0;
  return epochMetrics((best > 0 ? state.history[best - 1] : state.history.at(-1)) ?? {});
}

function resultOf(
  state: AggregatorState,
  status: 'done' | 'aborted',
  metrics: Metrics | undefined,
  backend: string,
): AggregateResult {
  const slowest = slowestWorker(state);
  return {
    steps: state.step,
    droppedStale: state.droppedStale,
    weightsVersion: state.version,
    status,
    ...(metrics ? { metrics } : {}),
    history: state.history,
    samples: state.samples,
    samplesPerSec: state.trainMs > 0 ? state.samples / (state.trainMs / 1000) : 0,
    restarts: state.restarts,
    timedOutSteps: state.timedOutSteps ?? 0,
    ...(state.resumedFromStep !== undefined ? { resumedFromStep: state.resumedFromStep } : {}),
    workers: state.workers,
    ...(slowest ? { slowestWorker: slowest } : {}),
    ...(state.earlyStopping ? { bestEpoch: state.earlyStopping.bestEpoch, stoppedEpoch: state.history.length } : {}),
    backend,
  };
}
