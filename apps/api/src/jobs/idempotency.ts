import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Redis } from 'ioredis';
import { ConflictError } from '@tq/contracts';

/** As long as a cancelled job's tombstone: a key is remembered while its job can still be asked about. */
const KEY_TTL_SECONDS = 7 * 24 * 3600;

/** sha256 of the RFC 8785 canonical JSON of the validated (defaulted) body: key order and spelling-neutral. */
export function bodyHash(body: unknown): string {
  return createHash('sha256')
    .update(canonicalize(body) ?? '')
    .digest('hex');
}

/**
 * The first request under an Idempotency-Key records its body's hash (SET NX: atomic, so two
 * racing requests agree on one). A later request with the same key and another body is refused
 * with 409 instead of silently answering with the first job.
 */
/** True when this request is the first under its key; false for a repeat with the same body. */
export async function claimIdempotencyKey(
  redis: Redis,
  prefix: string,
  jobId: string,
  body: unknown,
): Promise<boolean> {
  const key = `${prefix}:tq-idem:${jobId}`;
  const hash = bodyHash(body);
  const set = await redis.set(key, hash, 'EX', KEY_TTL_SECONDS, 'NX');
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
