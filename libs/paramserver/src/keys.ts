import { KEY_PREFIX } from '@tq/config';

/**
 * Redis keys of one data-parallel run. Every key carries the `{runId}` hashtag, so on Redis
 * Cluster they all hash to one slot: pipelines and multi-key commands of a run never cross slots.
 * A prefix with a hash tag of its own (`{tq}`, as a cluster requires of QUEUE_PREFIX) comes first
 * and wins: then every run shares the queues' slot, which holds as well.
 */
export interface RunKeys {
  /** Everything of the run starts with this (used to find leftovers when cleaning up). */
  readonly base: string;
  /** Hash: version, step, status, floats, chunks: the current published weights. */
  readonly state: string;
  /** List of small JSON messages (gradient / weights / done / gone) from workers to the aggregator. */
  readonly inbox: string;
  /** Hash: abort flag written by the coordinator. */
  readonly control: string;
  /** Hash: async mode, the next local step of each shard (survives a shard restart). */
  readonly cursors: string;
  /** Tiny marker left after cleanup (with a TTL), so a late shard job knows the run is over. */
  readonly ended: string;
  /** List of one element, the latest state, that wakes shard `i` when new weights are out. */
  wake(shard: number): string;
  /** Chunk `c` of the weights published as `version`. */
  weights(version: number, chunk: number): string;
  /** Chunk `c` of one payload (gradient or local weights) pushed by a shard. */
  payload(token: string, chunk: number): string;
}

const RUN_ID = /^[A-Za-z0-9_.-]{1,128}$/;

export function runKeys(runId: string, prefix = 'tq'): RunKeys {
  // Braces in a run id would break the hashtag; colons would make SCAN patterns ambiguous.
  if (!RUN_ID.test(runId)) throw new Error(`bad run id "${runId}"`);
  if (!KEY_PREFIX.test(prefix)) throw new Error(`bad key prefix "${prefix}"`);
  const base = `${prefix}:ps:{${runId}}`;
  return {
    base,
    state: `${base}:state`,
    inbox: `${base}:inbox`,
    control: `${base}:control`,
    cursors: `${base}:cursors`,
    ended: `${base}:ended`,
    wake: (shard) => `${base}:wake:${shard}`,
    weights: (version, chunk) => `${base}:w:${version}:${chunk}`,
    payload: (token, chunk) => `${base}:p:${token}:${chunk}`,
  };
}
