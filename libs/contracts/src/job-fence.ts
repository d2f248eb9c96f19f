/**
 * What lets a job's attempt commit its effects at most once, and only while it holds the job.
 * BullMQ hands a job to another attempt when its lock lapses (the worker stalled past
 * lockDuration, or died); the stale attempt may still be running. Every commit (a version, an
 * output, a checkpoint) is guarded by a fence: the processor builds one per attempt from the
 * job's lock token, and a body without one (tests, benches) commits unguarded.
 */
export interface JobFence {
  /** Rejects with JobLockLostError unless this attempt still holds its job's lock (checked in Redis). */
  assertHeld(): Promise<void>;
  /**
   * The version number of model `name` this job registers: allocated once per job (the same for
   * every attempt of it, never another job's), only while the attempt holds the job. `latest` is
   * the highest version the store holds: a floor, so a counter lost with Redis never reissues one.
   */
  versionFor(name: string, latest: number): Promise<number>;
}
