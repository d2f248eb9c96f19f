import { OnWorkerEvent, WorkerHost } from '@nestjs/bullmq';
import { Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import {
  COUNTED_JOBS,
  JOB_REGISTRY,
  TqError,
  describeIssues,
  envelopeSchemaOf,
  progressSchemaOf,
  resultSchemaOf,
  type JobDataOf,
  type JobEnvelope,
  type JobHooks,
  type JobMeta,
  type JobName,
  type JobProgressOf,
  type JobResultOf,
} from '@tq/contracts';
import { loadConfig } from '@tq/config';
import type { CancelWatcher } from './cancel-watcher';
import { isFinalFailure } from './final-failure';
import { JobLockLostError } from './job-lock-lost.error';
import { ActiveJobs, QueuedJobs, TenantLimits, jobMember } from './quotas';
import { RedisJobFence } from './redis-job-fence';
import { WorkerErrorGuard } from './worker-error-guard';

/**
 * Base of every processor, and where the error policy is stated once:
 * - the job name and the envelope (meta + request) are checked; a bad payload is unrecoverable;
 * - the body gets `(data, hooks)`: hooks carry the job id, meta, an AbortSignal fed by cross-process
 *   cancel requests and BullMQ's own, a progress reporter that validates against the registry, and
 *   this attempt's fence (its lock token), which guards every commit the body makes;
 * - a TqError (bad input, not found, cancelled) fails the job at once;
 *   everything else is rethrown so BullMQ retries it; the result is validated before it is stored.
 */
export abstract class TypedWorkerHost<N extends JobName> extends WorkerHost implements OnApplicationBootstrap {
  protected abstract readonly jobName: N;
  protected abstract readonly cancels: CancelWatcher;
  private readonly logger = new Logger(this.constructor.name);

  /**
   * The worker exists once every module is initialised (@nestjs/bullmq registers it then): its error
   * guard and lock-loss watch go on before any job, so a worker whose very first fetch fails (Redis
   * away, a cluster misconfigured) backs off too.
   */
  onApplicationBootstrap(): void {
    this.abortOnLockLoss();
  }

  async process(job: Job, token?: string, signal?: AbortSignal): Promise<JobResultOf<N>> {
    if (job.name !== this.jobName)
      throw new UnrecoverableError(`this queue's processor handles "${this.jobName}", not "${job.name}"`);
    const parsed = envelopeSchemaOf(this.jobName).safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid payload: ${describeIssues(parsed.error)}`);
    this.abortOnLockLoss();
    this.checkRunsLeft(job);
    const slot = await this.takeActiveSlot(job, parsed.data.meta.tenant, token);
    let handedOn = false;
    try {
      return await this.run(job, parsed.data, token, signal);
    } catch (err) {
      handedOn = err instanceof JobLockLostError;
      throw err;
    } finally {
      // A job handed on to another attempt keeps its slot: that attempt holds it under the same member.
      await slot?.release(!handedOn);
    }
  }

  private async run(
    job: Job,
    envelope: JobEnvelope<JobDataOf<N>>,
    token?: string,
    signal?: AbortSignal,
  ): Promise<JobResultOf<N>> {
    const jobId = job.id ?? '';
    const watched = this.cancels.watch(jobId, signal);
    const progressSchema = progressSchemaOf(this.jobName);
    // BullMQ always passes the token; a caller without one (none today) gets unguarded commits.
    const fence = token ? this.fenceOf(job, token) : undefined;
    if (fence) this.fences.set(jobId, fence);
    const hooks: JobHooks<JobProgressOf<N>> = {
      jobId,
      meta: envelope.meta,
      signal: watched.signal,
      onProgress: (progress) => job.updateProgress(progressSchema.parse(progress)),
      log: (line) => {
        this.logger.log(`${jobId}: ${line}`);
        void job.log(line).catch(() => undefined); // the dashboard's copy; the process log has it anyway
      },
      ...(fence ? { fence } : {}),
    };
    try {
      return resultSchemaOf(this.jobName).parse(await this.handle(envelope.request, hooks));
    } catch (err) {
      // A body that stopped on its aborted signal may throw whatever its await threw: a cancel is a
      // cancel, and a lost lock a lost lock (the training loop stops on either with a CancelledError).
      const lockLost = err instanceof JobLockLostError || watched.signal.reason instanceof JobLockLostError;
      if (lockLost) {
        this.logger.warn(`${jobId}: this attempt lost its job to another one; its commits were refused`);
        throw err instanceof JobLockLostError ? err : watched.signal.reason;
      }
      const reason: unknown = watched.signal.aborted && !(err instanceof TqError) ? watched.signal.reason : err;
      if (reason instanceof TqError) throw new UnrecoverableError(reason.message);
      throw err;
    } finally {
      if (this.fences.get(jobId) === fence) this.fences.delete(jobId);
      watched.release();
    }
  }

  private quotaState?: { limits: TenantLimits; active: ActiveJobs; queued: QueuedJobs };

  private get quotas(): { limits: TenantLimits; active: ActiveJobs; queued: QueuedJobs } {
    const { client, prefix } = this.cancels.redis;
    this.quotaState ??= {
      limits: new TenantLimits(client, prefix),
      active: new ActiveJobs(client, prefix),
      queued: new QueuedJobs(client, prefix),
    };
    return this.quotaState;
  }

  /**
   * A submitted job (COUNTED_JOBS) runs only while its tenant is under TENANT_MAX_ACTIVE_JOBS: it
   * takes a leased slot, renewed while it runs and released after. At the limit it goes back to
   * the queue for TENANT_ACTIVE_RETRY_MS (moveToDelayed skips the attempt count, and a
   * DelayedError is not a failure), keeping its fair-share priority. A killed worker's slot frees
   * when its lease (LOCK_DURATION_MS) ends; the job's next attempt takes it back by its member.
   */
  private async takeActiveSlot(
    job: Job,
    tenant: string,
    token: string | undefined,
  ): Promise<{ release(free: boolean): Promise<void> } | undefined> {
    if (!COUNTED_JOBS.includes(this.jobName) || !token) return undefined;
    const config = loadConfig();
    const { limits, active } = this.quotas;
    const member = jobMember(job.queueName, job.id ?? '');
    const leaseMs = this.worker.opts.lockDuration ?? config.LOCK_DURATION_MS;
    const limit = (await limits.of(tenant)).maxActiveJobs;
    const refused = await active.take(tenant, member, limit, leaseMs);
    if (refused !== undefined) {
      // Jittered, so the put-back jobs of a busy tenant do not all come back at one instant.
      const delay = Math.round(config.TENANT_ACTIVE_RETRY_MS * (0.5 + Math.random()));
      await job.moveToDelayed(Date.now() + delay, token);
      throw new DelayedError(`tenant ${tenant} runs ${refused} jobs, its limit (maxActiveJobs ${limit})`);
    }
    const renew = setInterval(() => {
      active.renew(tenant, member, leaseMs).catch((err: unknown) => {
        this.logger.warn(
          `${job.id}: active-slot lease not renewed: ${err instanceof Error ? err.message : String(err)}`,
        );
      });
    }, leaseMs / 3);
    return {
      release: async (free) => {
        clearInterval(renew);
        // Not released (Redis away): the lease ends on its own.
        if (free) await active.release(tenant, member).catch(() => undefined);
      },
    };
  }

  /** A submitted job that finished for good no longer counts as queued for its tenant. */
  private async releaseQueued(job: Job): Promise<void> {
    if (!COUNTED_JOBS.includes(this.jobName)) return;
    const tenant = (job.data as { meta?: { tenant?: unknown } } | undefined)?.meta?.tenant;
    if (typeof tenant !== 'string') return;
    // Not released (Redis away): the next admission at the limit prunes it (its job is finished).
    await this.quotas.queued.release(tenant, jobMember(job.queueName, job.id ?? '')).catch(() => undefined);
  }

  @OnWorkerEvent('completed')
  async onCompleted(job: Job | undefined): Promise<void> {
    if (job) await this.releaseQueued(job);
  }

  /** The fences of the attempts this process runs, by job id (lock renewal failures consult them). */
  private readonly fences = new Map<string, RedisJobFence>();

  private fenceOf(job: Job, token: string): RedisJobFence {
    return new RedisJobFence(this.cancels.redis.client, job, token, {
      lockDurationMs: this.worker.opts.lockDuration ?? loadConfig().LOCK_DURATION_MS,
      recordTtlSeconds: loadConfig().JOB_HISTORY_AGE_SECONDS,
    });
  }

  private lockWatch = false;

  /**
   * Runs of this job so far are the ones that threw (attemptsMade) plus the ones whose worker died
   * (stalledCounter): BullMQ bounds each count on its own (attempts, maxStalledCount = attempts - 1),
   * so a job that threw and then lost its worker could run more often than `attempts`. Counted
   * together, a crash and a throw each use up one of them.
   */
  private checkRunsLeft(job: Job): void {
    const attempts = job.opts.attempts ?? JOB_REGISTRY[this.jobName].options.attempts ?? 1;
    const failed = job.attemptsMade;
    const crashed = job.stalledCounter;
    // Only a job that lost a worker is checked here: a failed job retried on purpose (the dashboard,
    // a run re-attaching its child jobs) keeps attemptsMade, and BullMQ runs it again as asked.
    if (crashed > 0 && failed + crashed >= attempts)
      throw new UnrecoverableError(
        `gave up after ${failed + crashed} of ${attempts} attempts (${failed} failed, ${crashed} lost their worker)`,
      );
  }

  /**
   * A job whose lock this worker could not renew has been handed on: its body here stops. Unless
   * the lock merely lapsed while this process could not renew it (a batch that blocked the event
   * loop past lockDuration) and no other attempt took the job since: the fence takes it back then
   * (RedisJobFence.holds) and the body goes on, instead of every attempt of such a job stalling.
   */
  private abortOnLockLoss(): void {
    if (this.lockWatch) return;
    this.lockWatch = true;
    // The worker's own errors (its fetch loop, lock renewals): logged once per interval, and the
    // fetch loop is held back with a growing delay while they repeat (BullMQ retries at once).
    new WorkerErrorGuard(this.worker, this.logger).attach();
    this.worker.on('lockRenewalFailed', (ids: string[]) => {
      for (const id of ids) void this.stopUnlessHeld(id);
    });
  }

  private async stopUnlessHeld(id: string): Promise<void> {
    const held = await (this.fences.get(id)?.holds() ?? Promise.resolve(false)).catch(() => false);
    if (held) this.logger.warn(`${id}: took back a lapsed lock (the event loop was blocked past lockDuration)`);
    else this.cancels.abort(id, new JobLockLostError(id));
  }

  /**
   * After a job's last attempt failed (or it was cancelled): the body's clean-up of what it leaves
   * behind (afterFinalFailure), then cancelled jobs leave the failed list (CancelWatcher.retireCancelled).
   */
  @OnWorkerEvent('failed')
  async onFailed(job: Job | undefined, err: Error): Promise<void> {
    if (!job) return;
    if (isFinalFailure(job, err)) {
      await this.releaseQueued(job);
      const parsed = envelopeSchemaOf(this.jobName).safeParse(job.data);
      if (parsed.success) {
        await this.afterFinalFailure(parsed.data.request, job.id ?? '', parsed.data.meta).catch((e: unknown) => {
          this.logger.warn(`clean-up after job ${job.id} failed: ${e instanceof Error ? e.message : String(e)}`);
        });
      }
    }
    await this.cancels.retireCancelled(job, this.jobName).catch((e: unknown) => {
      this.logger.warn(
        `cancelled job ${job.id} stays in the failed list: ${e instanceof Error ? e.message : String(e)}`,
      );
    });
  }

  /**
   * What a job leaves behind when it fails for good (stored inputs, ...); nothing by default.
   * `meta`: the job's envelope meta (its tenant says where its objects are).
   */
  protected afterFinalFailure(_data: JobDataOf<N>, _jobId: string, _meta: JobMeta): Promise<void> {
    return Promise.resolve();
  }

  protected abstract handle(data: JobDataOf<N>, hooks: JobHooks<JobProgressOf<N>>): Promise<JobResultOf<N>>;
}
