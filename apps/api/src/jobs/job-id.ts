import { createHash, randomUUID } from 'node:crypto';
import { PUBLIC_JOB_TYPES, type PublicJobType } from '@tq/contracts';

/**
 * Public job ids say what they are ("train-<uuid>") so GET /v1/jobs/:id finds the queue without a
 * lookup table. With an Idempotency-Key header the id is derived from the key, and BullMQ's
 * de-duplication by id makes a retried POST return the same job instead of a second one.
 */
export function newJobId(type: PublicJobType, idempotencyKey?: string): string {
  if (!idempotencyKey) return `${type}-${randomUUID()}`;
  return `${type}-k${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 32)}`;
}

/** Type names hold dashes too ("profile-dataset"): the longest type the id starts with, then a dash. */
export function typeOfJobId(id: string): PublicJobType | undefined {
  const matching = PUBLIC_JOB_TYPES.filter((type) => id.startsWith(`${type}-`));
  return matching.sort((a, b) => b.length - a.length)[0];
}
