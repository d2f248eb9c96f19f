import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ThrottledLog, retryDelay } from '../src/retention/retry-delay';

describe('retention loop: backoff and repeated errors', () => {
  it('waits its interval while well, doubles per failure, capped by REDIS_RETRY_MAX_MS but never below the interval', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 10, 1000].map((f) => retryDelay(200, f, 5000)),
      [200, 400, 800, 1600, 5000, 5000],
    );
    assert.equal(retryDelay(60_000, 3, 30_000), 60_000, 'a cap below the interval does not speed the loop up');
  });

  it('logs the first of repeated errors, then one line per interval with how many it held back', () => {
    const lines: string[] = [];
    const log = new ThrottledLog((l) => lines.push(l), 60_000);
    for (let t = 0; t < 150_000; t += 10_000) log.error('redis down', 1_000_000 + t);
    assert.deepEqual(lines, [
      'redis down',
      'redis down (and 5 more like it since the last report)',
      'redis down (and 5 more like it since the last report)',
    ]);
    log.reset();
    log.error('again', 1_200_000);
    assert.equal(lines.at(-1), 'again', 'after a good round the next error is news');
  });
});
