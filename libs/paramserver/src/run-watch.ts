import { setTimeout as sleep } from 'node:timers/promises';
import type { Job } from 'bullmq';
import { aggregateResultSchema, CANCELLED_REASON, CancelledError } from '@tq/contracts';
import type { AggregateResult, DistributedProgress, JobHooks, TrainProgress } from '@tq/contracts';
import { SupersededError, type Claim, type RunChannel } from './channel';
import { aggregatorJobId, shardJobId } from './child-jobs';
import type { CoordinatorDeps } from './deps';
import { RedisRetry } from './redis-retry';

export class DistributedRunCancelledError extends CancelledError {
  constructor(runId: string) {
    super(`${CANCELLED_REASON}: distributed run ${runId}`);
  }
}

/** What went wrong, for the coordinator's clean-up: a stop request, or the aggregator failing for good. */
export interface Watch {
  cancelled: boolean;
  aggregatorFailed: boolean;
}

/** How often the shard jobs' states are looked at (each look costs a few round trips per shard). */
const SHARD_CHECK_MS = 2000;
/** BullMQ states of a job that no worker has taken: it waits for a free slot of its queue. */
const NOT_STARTED = new Set(['waiting', 'prioritized', 'waiting-children']);
export const LOADING: TrainProgress = { stage: 'loading', percent: 0 };

/**
 * Polls the aggregator job until it finishes; forwards its progress; tells it about shards that
 * failed for good; says when child jobs wait for a free slot. Ends early when `hooks.signal` aborts
 * or a newer attempt of the train job has claimed the run.
 */
export async function waitForAggregator(
  deps: CoordinatorDeps,
  channel: RunChannel,
  claim: Claim,
  shards: number,
  watch: Watch,
  hooks: JobHooks<TrainProgress>,
): Promise<AggregateResult> {
  const { runId } = channel.opts;
  const gone = new Set<number>();
  const slots = new SlotWatch(runId, shards, hooks.log);
  let lastShardCheck = 0;
  // Redis away for a moment (a failover, a restart): the watch backs off and goes on, rather than
  // failing the train job (and using up one of its attempts) at the first dropped connection.
  const retry = new RedisRetry(hooks.log, deps.redisRetryMaxMs);
  const look = <T>(fn: () => Promise<T>): Promise<T> => retry.run(`run ${runId}: watching its jobs`, fn, hooks.signal);
  // The coordinator has reported this before enqueueing.
  let sent = JSON.stringify(LOADING);
  for (;;) {
    stopOnSignal(hooks.signal, runId, watch);
    // A newer attempt of this train job coordinates now: leave the run to it, untouched.
    if (await look(() => channel.isSuperseded(claim))) throw new SupersededError(runId, claim.role);
    const agg = await look(() => deps.aggregateQueue.getJob(aggregatorJobId(runId)));
    if (!agg) throw new Error(`aggregator job of run ${runId} disappeared`);
    const state = await look(() => agg.getState());
    if (state === 'completed') {
      // Fetched again: the job read above may predate its completion (no return value yet).
      const done = await deps.aggregateQueue.getJob(aggregatorJobId(runId));
      return aggregateResultSchema.parse(done?.returnvalue);
    }
    if (state === 'failed') {
      watch.aggregatorFailed = true;
      throw new Error(`aggregator of run ${runId} failed: ${agg.failedReason}`);
    }
    if (Date.now() - lastShardCheck > SHARD_CHECK_MS) {
      lastShardCheck = Date.now();
      const waiting: number[] = [];
      for (let i = 0; i < shards; i++) {
        if (gone.has(i)) continue;
        const [shard, shardState] = await look(async () => {
          const job = await deps.shardQueue.getJob(shardJobId(runId, i));
          return [job, job ? await job.getState() : 'unknown'] as const;
        });
        if (NOT_STARTED.has(shardState)) waiting.push(i);
        if (shard && shardState === 'failed') {
          gone.add(i);
          hooks.log(`shard ${i} failed for good: ${shard.failedReason}`);
          await channel.markGone(i);
        }
      }
      if (slots.update(waiting, NOT_STARTED.has(state))) await channel.setUnstaffed(slots.stuck);
    }
    const progress = { ...toTrainProgress(agg), ...(slots.waiting > 0 ? { waitingForWorkers: slots.waiting } : {}) };
    // Sent only when it changed: BullMQ stores every update.
    const text = JSON.stringify(progress);
    if (text !== sent) await hooks.onProgress(progress);
    sent = text;
    // Aborted early by the signal: the loop's first line ends the wait.
    await sleep(deps.pollMs ?? 500, undefined, { signal: hooks.signal }).catch(() => undefined);
  }
}

/**
 * Ends the wait when the job's signal aborted. A CancelledError reason cancels the run (the
 * coordinator stops and cleans it up); any other (the job's lock lost)
 * ends this attempt only, leaving the run to the job's next attempt.
 */
export function stopOnSignal(signal: AbortSignal, runId: string, watch: Watch): void {
  if (!signal.aborted) return;
  if (signal.reason instanceof CancelledError) {
    watch.cancelled = true;
    throw new DistributedRunCancelledError(runId);
  }
  signal.throwIfAborted();
}

/**
 * Child jobs no worker has taken. Seen on two looks in a row (a fresh job waits a moment for a
 * worker that is free), a wait is logged once, naming the missing slots: without them sync steps
 * close without those shards' rows (at most after the step timeout, at least `quorum` answers).
 */
class SlotWatch {
  /** Shards seen waiting on the last two looks. */
  stuck: number[] = [];
  private before: number[] = [];
  private written: string | undefined;
  private aggBefore = false;
  private logged = '|false';

  constructor(
    private readonly runId: string,
    private readonly shards: number,
    private readonly log: (line: string) => void,
  ) {}

  get waiting(): number {
    return this.stuck.length;
  }

  /** Takes a look's findings; true when the stuck shards changed (the first look counts as a change). */
  update(shardsWaiting: number[], aggWaiting: boolean): boolean {
    const stuck = shardsWaiting.filter((i) => this.before.includes(i));
    const aggStuck = aggWaiting && this.aggBefore;
    this.before = shardsWaiting;
    this.aggBefore = aggWaiting;
    this.stuck = stuck;
    this.report(stuck, aggStuck);
    const changed = stuck.join(',') !== this.written;
    this.written = stuck.join(',');
    return changed;
  }

  private report(stuck: number[], aggStuck: boolean): void {
    const key = `${stuck.join(',')}|${aggStuck}`;
    if (key === this.logged) return;
    this.logged = key;
    if (stuck.length > 0) {
      const many = stuck.length > 1;
      this.log(
        `run ${this.runId}: shard${many ? 's' : ''} ${stuck.join(', ')} of ${this.shards} wait${many ? '' : 's'} for a free train-shard slot; ` +
          `a run of ${this.shards} workers needs ${this.shards} train-shard slots (WORKER_QUEUES=train-shard processes at concurrency 1); ` +
          'until then steps go on without them',
      );
    }
    if (aggStuck)
      this.log(
        `run ${this.runId}: the aggregator waits for a free aggregate slot (a worker serving the aggregate queue)`,
      );
  }
}

function toTrainProgress(agg: Job): TrainProgress {
  const p = agg.progress as DistributedProgress | number;
  if (typeof p !== 'object' || p === null || !('step' in p)) return LOADING;
  return {
    stage: 'training',
    percent: Math.max(0, Math.min(100, p.percent)),
    step: p.step,
    ...(p.epoch !== undefined ? { epoch: p.epoch } : {}),
    ...(p.epochs !== undefined ? { epochs: p.epochs } : {}),
    ...(p.loss !== undefined ? { loss: p.loss } : {}),
    ...(p.samplesPerSec !== undefined ? { samplesPerSec: p.samplesPerSec } : {}),
    ...(p.workers ? { workers: p.workers } : {}),
    ...(p.slowestWorker ? { slowestWorker: p.slowestWorker } : {}),
  };
}
