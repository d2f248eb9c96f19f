import { Logger } from '@nestjs/common';
import { CancelledError, type JobHooks, type JobName, type JobProgressOf } from '@tq/contracts';
import { jobHooks, type RedisClientHolder, type TypedJob } from '@tq/queue';

const logger = new Logger('jobs');

/**
 * Stop-gap until libs/queue hands job bodies the contracts' JobHooks: the queue's cancel probe,
 * polled every `everyMs`, aborts the signal (reason: CancelledError). Call `dispose` when the job ends.
 */
export function signalHooks<N extends JobName>(job: TypedJob<N>, redis: RedisClientHolder, everyMs = 500): JobHooks<JobProgressOf<N>> & { dispose(): void } {
  const { jobId, onProgress, shouldStop } = jobHooks(job, redis);
  const controller = new AbortController();
  const timer = setInterval(() => {
    shouldStop().catch((err: unknown) => { if (err instanceof CancelledError) controller.abort(err); });
  }, everyMs);
  timer.unref();
  return {
    jobId, onProgress, signal: controller.signal,
    log: (line) => { logger.log(`${job.name} ${jobId}: ${line}`); void job.log(line).catch(() => undefined); },
    dispose: () => clearInterval(timer),
  };
}
