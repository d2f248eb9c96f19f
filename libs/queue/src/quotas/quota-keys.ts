import type { QueueName } from '@tq/contracts';

/**
 * Redis keys of the tenant quotas, under the queue prefix (so a test's prefix removes them, and on
 * a cluster the prefix's hash tag keeps them in the slot of the job hashes the scripts read).
 */
export function quotaKeys(prefix: string, tenant: string) {
  const base = `${prefix}:tq-quota`;
  return {
    /** Hash: quota name → the tenant's override (an admin's PUT). */
    limits: `${base}:limits:${tenant}`,
    /** Sorted set: job member → admitted at (ms); the tenant's submitted, unfinished jobs. */
    queued: `${base}:queued:${tenant}`,
    /** Sorted set: job member → lease end (ms); the tenant's jobs running on workers. */
    active: `${base}:active:${tenant}`,
  };
}

/** A job in the quota sets: "<queue>:<jobId>", so `${prefix}:${member}` is its BullMQ hash. */
export const jobMember = (queue: QueueName | string, jobId: string): string => `${queue}:${jobId}`;

/** Hash of one queue's fair share: tenant → the last priority given to one of its jobs. */
export const fairShareKey = (prefix: string, queue: QueueName | string): string => `${prefix}:tq-fair:${queue}`;
