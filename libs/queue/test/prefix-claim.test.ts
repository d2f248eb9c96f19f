import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import Redis from 'ioredis';
import { QueuePrefixInUseError, claimQueuePrefix, storeClaimKey, takeQueuePrefix } from '@tq/queue';

const redisUrl = (): string => process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('claimQueuePrefix', () => {
  let redis: Redis;
  let prefix: string;
  const a = { id: 'id-a', location: 'host-1:/home/a/.data' };
  const b = { id: 'id-b', location: 'host-1:/home/b/.data' };
  const claim = (identity: { id: string; location: string }) => claimQueuePrefix(redis, prefix, identity, 'here:6379');
  const held = async () => JSON.parse((await redis.get(storeClaimKey(prefix))) ?? 'null') as { id: string } | null;

  before(() => {
    redis = new Redis(redisUrl());
  });
  after(() => redis.quit());
  // A unique prefix per test, its claim removed after.
  let n = 0;
  const next = () => (prefix = `tqtest-claim-${randomUUID().slice(0, 8)}-${n++}`);
  afterEach(() => redis.del(storeClaimKey(prefix)));

  it('claims a free prefix, keeps it for the same store, and refuses another store naming both', async () => {
    next();
    assert.deepEqual(await claim(a), { kind: 'claimed' });
    assert.deepEqual(await claim(a), { kind: 'held' });
    const err = await claim(b).then(
      () => assert.fail('another store got the prefix'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof QueuePrefixInUseError);
    assert.equal(err.holder.id, a.id);
    assert.match(
      err.message,
      new RegExp(`QUEUE_PREFIX "${prefix}" on Redis here:6379 belongs to another artifact store`),
    );
    assert.ok(err.message.includes(a.location) && err.message.includes(b.location), err.message);
    assert.equal((await held())?.id, a.id, 'the refused claim wrote nothing');
  });

  it('hands the prefix to a store emptied in place (same location, new id), naming the claim it replaced', async () => {
    next();
    await claim(a);
    const outcome = await claim({ id: 'id-a2', location: a.location });
    assert.equal(outcome.kind, 'replaced');
    assert.equal(outcome.kind === 'replaced' && outcome.previous?.id, a.id);
    assert.equal((await held())?.id, 'id-a2');
    await assert.rejects(claim(b), QueuePrefixInUseError, 'another location is still refused');
  });

  it('replaces a claim it cannot read', async () => {
    for (const junk of ['not json', '[]', '{"id":1}', '{"id":"x"}', '"text"', '{"id":"x","location":{}}']) {
      next();
      await redis.set(storeClaimKey(prefix), junk);
      const outcome = await claim(a);
      assert.deepEqual(outcome, { kind: 'replaced', previous: undefined }, junk);
      assert.equal((await held())?.id, a.id);
      await redis.del(storeClaimKey(prefix));
    }
  });

  it('lets exactly one of two stores racing on a free prefix win', async () => {
    for (let round = 0; round < 20; round++) {
      next();
      const racers = Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b));
      const results = await Promise.allSettled(racers.map((r) => claim(r)));
      const winners = new Set(racers.filter((_, i) => results[i]!.status === 'fulfilled').map((r) => r.id));
      assert.equal(winners.size, 1, `round ${round}: ${JSON.stringify(results)}`);
      const [winner] = winners;
      assert.equal((await held())?.id, winner);
      for (const [i, r] of results.entries())
        if (r.status === 'rejected') assert.ok(r.reason instanceof QueuePrefixInUseError && racers[i]!.id !== winner);
      await redis.del(storeClaimKey(prefix));
    }
  });

  it('takeQueuePrefix gives the prefix to another store and returns the claim it replaced', async () => {
    next();
    assert.equal(await takeQueuePrefix(redis, prefix, a), undefined);
    const previous = await takeQueuePrefix(redis, prefix, b);
    assert.equal((JSON.parse(previous ?? '{}') as { id?: string }).id, a.id);
    assert.deepEqual(await claim(b), { kind: 'held' });
    await assert.rejects(claim(a), QueuePrefixInUseError);
  });
});
