import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { RedisClient } from '@tq/queue';
import { ConflictError } from '@tq/contracts';
import { loadConfig } from '@tq/config';

/** sha256 of the RFC 8785 canonical JSON of the validated (defaulted) body: key order and spelling-neutral. */
export function bodyHash(body: unknown): string {
  return createHash('sha256')
    .update(canonicalize(body) ?? '')
    .digest('hex');
}

/** The key recording the body of the first request under an Idempotency-Key (named by its job id). */
export const idempotencyMarker = (prefix: string, jobId: string) => `${prefix}:tq-idem:${jobId}`;

/**
 * The first request under an Idempotency-Key records its body's hash (SET NX: atomic, so two
 * racing requests agree on one). A later request with the same key and another body is refused
 * with 409 instead of silently answering with the first job. True when this request is the first
 * under its key; false for a repeat with the same body.
 */
export async function claimIdempotencyKey(
  redis: RedisClient,
  prefix: string,
  jobId: string,
  body: unknown,
): Promise<boolean> {
  const key = idempotencyMarker(prefix, jobId);
  const hash = bodyHash(body);
  // As long as finished jobs and tombstones are kept: a key is remembered while its job can be asked about.
  const set = await redis.set(key, hash, 'EX', loadConfig().JOB_HISTORY_AGE_SECONDS, 'NX');
  if (set === 'OK') return true;
  const first = await redis.get(key);
  if (first !== null && first !== hash) {
    throw new ConflictError(
      'Idempotency-Key',
      'was already used with a different request body; use a new key for a new request',
    );
  }
  return false;
}
