import {
  aggregateResultSchema,
  buildEnvelope,
  jobOptionsOf,
  JobName,
  type AggregateJobData,
  type JobMeta,
  type TrainJobData,
} from '@tq/contracts';
import type { RunCheckpointPrefix } from './aggregator';
import type { RunChannel } from './channel';
import type { CoordinatorDeps } from './deps';
import { requireDistributed } from './run-setup';

/** Child job ids are derived from the parent's, so a retried coordinator re-attaches instead of duplicating. */
export function runIdOf(parentJobId: string): string {
  return parentJobId.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 120);
}
export const aggregatorJobId = (runId: string): string => `ps-agg-${runId}`;
export const shardJobId = (runId: string, shard: number): string => `ps-shard-${runId}-${shard}`;

/**
 * Enqueues the aggregator and the shards of a run, or re-attaches to them: ids are derived from the
 * train job's, and add() with an existing id returns the existing job.
 */
export async function enqueueRun(
  deps: CoordinatorDeps,
  channel: RunChannel,
  runId: string,
  parentJobId: string,
  request: TrainJobData,
  parentMeta: JobMeta,
): Promise<void> {
  const spec = requireDistributed(request);
  const aggId = aggregatorJobId(runId);
  // Its state before its hash: one that completed in between would have no return value yet.
  const completed = (await deps.aggregateQueue.getJobState(aggId)) === 'completed';
  const previous = await deps.aggregateQueue.getJob(aggId);
  if (previous && completed && aggregateResultSchema.safeParse(previous.returnvalue).data?.status === 'done') return;
  // (Re)starting: lift an abort or end left by an earlier attempt, forget an aborted aggregator.
  await channel.reopen();
  if (previous && completed) await previous.remove();
  const data: AggregateJobData = { runId, parentJobId, request };
  // Children carry their train job's meta (tenant, request id), marked with the parent's id.
  const meta: JobMeta = { ...parentMeta, parentJobId };
  const aggData = buildEnvelope(JobName.Aggregate, data, meta);
  const agg = await deps.aggregateQueue.add(JobName.Aggregate, aggData, {
    ...jobOptionsOf(JobName.Aggregate, deps.retention),
    jobId: aggId,
  });
  if ((await agg.getState()) === 'failed')
    await agg.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
  for (let i = 0; i < spec.workers; i++) {
    const id = shardJobId(runId, i);
    const old = await deps.shardQueue.getJob(id);
    if (old && (await old.getState()) === 'completed') await old.remove(); // finished with an aborted attempt
    const shardData = buildEnvelope(JobName.TrainShard, { runId, shardIndex: i, shards: spec.workers, request }, meta);
    const shard = await deps.shardQueue.add(JobName.TrainShard, shardData, {
      ...jobOptionsOf(JobName.TrainShard, deps.retention),
      jobId: id,
    });
    if ((await shard.getState()) === 'failed')
      await shard.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
  }
}

/** Waiting or delayed child jobs (never started, or between retries) have nothing left to do. */
export async function removeWaitingChildren(deps: CoordinatorDeps, runId: string, shards: number): Promise<void> {
  const jobs = [await deps.aggregateQueue.getJob(aggregatorJobId(runId))];
  for (let i = 0; i < shards; i++) jobs.push(await deps.shardQueue.getJob(shardJobId(runId, i)));
  for (const job of jobs) {
    const state = job ? await job.getState() : 'unknown';
    if (job && (state === 'waiting' || state === 'delayed' || state === 'prioritized')) await job.remove();
  }
}

/** Waits (at most `timeoutMs`) until the aggregator job is no longer running. */
export async function settleAggregator(deps: CoordinatorDeps, runId: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const job = await deps.aggregateQueue.getJob(aggregatorJobId(runId));
    if (!job || (await job.getState()) !== 'active') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Removes the run's keys (leaving the ended marker), leftover waiting child jobs and, if given, the run's checkpoints. */
export async function finishRun(
  deps: CoordinatorDeps,
  channel: RunChannel,
  runId: string,
  shards: number,
  checkpoint: RunCheckpointPrefix | undefined,
  log: (l: string) => void,
): Promise<void> {
  await removeWaitingChildren(deps, runId, shards).catch((e: unknown) => log(`leftover child jobs: ${String(e)}`));
  await channel.cleanup();
  if (checkpoint) await checkpoint.blobs.deletePrefix(checkpoint.prefix);
}
