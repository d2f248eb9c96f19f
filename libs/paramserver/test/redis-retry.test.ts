import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTransientRedisError, RedisRetry } from '@tq/paramserver';

const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6390'), { code: 'ECONNREFUSED' });

describe('RedisRetry', () => {
  it('tries a dropped connection again with backoff, logs it once, and says when Redis is back', async () => {
    const lines: string[] = [];
    const retry = new RedisRetry((l) => lines.push(l), 20);
    let calls = 0;
    const value = await retry.run('waiting for weights', async () => {
      calls += 1;
      if (calls <= 5) throw refused();
      return 'ok';
    });
    assert.equal(value, 'ok');
    assert.equal(calls, 6);
    // Five failures: written once, then once more with the count of the four left out.
    assert.equal(lines.length, 3, lines.join('\n'));
    assert.match(lines[0]!, /^waiting for weights: connect ECONNREFUSED .*; trying again with backoff$/);
    assert.match(lines[1]!, /ECONNREFUSED .* \(repeated 4 times in /);
    assert.match(lines[2]!, /^waiting for weights: Redis answers again after \d+ ms$/);
  });

  it('throws a non-transient error at once, and a transient one after giveUpMs of failures', async () => {
    const retry = new RedisRetry(() => undefined, 10, 200);
    let calls = 0;
    const crossslot = new Error("CROSSSLOT Keys in request don't hash to the same slot");
    await assert.rejects(
      retry.run('x', async () => {
        calls += 1;
        throw crossslot;
      }),
      /CROSSSLOT/,
    );
    assert.equal(calls, 1);
    const started = Date.now();
    await assert.rejects(
      retry.run('x', async () => {
        throw refused();
      }),
      /ECONNREFUSED/,
    );
    assert.ok(Date.now() - started >= 200);
    assert.equal(isTransientRedisError(new Error('LOADING Redis is loading the dataset in memory')), true);
    assert.equal(isTransientRedisError(new Error('WRONGTYPE Operation against a key')), false);
  });
});
