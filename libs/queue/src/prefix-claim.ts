import type { StoreIdentity } from '@tq/storage';
import type { RedisClient } from './redis-connection';

/**
 * Which artifact store the prefix's jobs, model versions and aliases belong to. Redis keeps those
 * and the store keeps their files: two systems on one Redis with one QUEUE_PREFIX (two clones of
 * the project, each with its own ./.data), or a fleet machine left on a local ARTIFACT_DIR, would
 * share queues and numbering while their files land in different places, and jobs would "succeed"
 * with outputs nobody can read.
 */
export const storeClaimKey = (prefix: string): string => `${prefix}:tq-artifact-store`;

/** What the claim key holds. */
export interface StoreClaim extends StoreIdentity {
  /** When this store first claimed the prefix (ISO). */
  readonly since: string;
}

export type ClaimOutcome =
  /** Nobody held the prefix: a new one, or a Redis that lost its data. */
  | { kind: 'claimed' }
  /** This store held it already. */
  | { kind: 'held' }
  /** The store at this location had another id (it was emptied and made again), or the claim was unreadable. */
  | { kind: 'replaced'; previous: StoreClaim | undefined };

/** What a process says when it took its prefix back from its own store under an older id. */
export function replacedClaimWarning(prefix: string, location: string, previous: StoreClaim | undefined): string {
  const since = previous ? ` (${previous.id}, since ${previous.since})` : '';
  return (
    `QUEUE_PREFIX "${prefix}" taken over: the store at ${location} held it under another id${since}; ` +
    'it was emptied or made again, so the jobs, versions and aliases Redis kept from before may name ' +
    'files that are gone'
  );
}

/** A process's store is not the one that holds its prefix: it must not take or make jobs there. */
export class QueuePrefixInUseError extends Error {
  constructor(
    readonly prefix: string,
    readonly holder: StoreClaim,
    readonly mine: StoreIdentity,
    redisAddress: string,
  ) {
    super(
      `QUEUE_PREFIX "${prefix}" on Redis ${redisAddress} belongs to another artifact store: ` +
        `${holder.location} (claimed ${holder.since}); this process's store is ${mine.location}. ` +
        "The prefix's jobs, model versions and aliases refer to files there, not here. Give each " +
        'system its own QUEUE_PREFIX (a second clone: QUEUE_PREFIX=tq2 npm start), and every API, ' +
        'worker and serve replica of one system the same store (one shared ARTIFACT_DIR, or one ' +
        'bucket). If that store is gone for good, hand the prefix to this one with ' +
        '`npm run take-prefix` (it deletes nothing).',
    );
    this.name = 'QueuePrefixInUseError';
  }
}

/**
 * KEYS[1] the claim; ARGV[1] id, ARGV[2] location, ARGV[3] the claim to write. Held by this id:
 * kept. Held by another id at another location: {'other', claim}, nothing written. Otherwise
 * (none, the same location under a new id, or unreadable) this claim is written. One script, so
 * two stores racing on an empty prefix cannot both win.
 */
const CLAIM = `
local held = redis.call('GET', KEYS[1])
if held then
  local ok, claim = pcall(cjson.decode, held)
  if ok and type(claim) == 'table' and type(claim.id) == 'string' and type(claim.location) == 'string' then
    if claim.id == ARGV[1] then return {'held', held} end
    if claim.location ~= ARGV[2] then return {'other', held} end
  end
end
redis.call('SET', KEYS[1], ARGV[3])
if held then return {'replaced', held} end
return {'claimed', ''}
`;

const claimOf = (identity: StoreIdentity): string =>
  JSON.stringify({ id: identity.id, location: identity.location, since: new Date().toISOString() });

/** Claims `prefix` for the store `identity` names; QueuePrefixInUseError when another store holds it. */
export async function claimQueuePrefix(
  redis: RedisClient,
  prefix: string,
  identity: StoreIdentity,
  redisAddress: string,
): Promise<ClaimOutcome> {
  const [kind, held] = (await redis.eval(
    CLAIM,
    1,
    storeClaimKey(prefix),
    identity.id,
    identity.location,
    claimOf(identity),
  )) as [string, string];
  if (kind === 'held') return { kind };
  if (kind === 'claimed') return { kind };
  if (kind === 'replaced') return { kind, previous: parsedClaim(held) };
  // 'other' only comes of a claim the script could decode, with an id and a location.
  throw new QueuePrefixInUseError(prefix, parsedClaim(held)!, identity, redisAddress);
}

function parsedClaim(text: string): StoreClaim | undefined {
  try {
    const claim = JSON.parse(text) as Partial<StoreClaim>;
    return typeof claim.id === 'string' && typeof claim.location === 'string'
      ? { id: claim.id, location: claim.location, since: String(claim.since) }
      : undefined;
  } catch {
    return undefined;
  }
}

/** Gives `prefix` to this store whoever held it (`npm run take-prefix`); the claim it replaced, if any. */
export async function takeQueuePrefix(
  redis: RedisClient,
  prefix: string,
  identity: StoreIdentity,
): Promise<string | undefined> {
  return (await redis.set(storeClaimKey(prefix), claimOf(identity), 'GET')) ?? undefined;
}
