import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RequestRate } from '../src/request-rate';

describe('RequestRate (a token bucket per tenant, in memory)', () => {
  it('allows a burst, then the rate, and says how long to wait', () => {
    const rate = new RequestRate();
    const t0 = 1_000_000;
    for (let i = 0; i < 3; i++) assert.deepEqual(rate.take('a', 2, 3, t0), { allowed: true }, `request ${i + 1}`);
    assert.deepEqual(rate.take('a', 2, 3, t0), { allowed: false, retryAfterSeconds: 1 });
    // 2 tokens per second: one is back after 500 ms, not before.
    assert.equal(rate.take('a', 2, 3, t0 + 400).allowed, false);
    assert.equal(rate.take('a', 2, 3, t0 + 500).allowed, true);
    assert.equal(rate.take('a', 2, 3, t0 + 500).allowed, false);
  });

  it('keeps one bucket per tenant, and never holds more than the burst', () => {
    const rate = new RequestRate();
    assert.equal(rate.take('a', 1, 1, 0).allowed, true);
    assert.equal(rate.take('a', 1, 1, 0).allowed, false);
    assert.equal(rate.take('b', 1, 1, 0).allowed, true, "another tenant's bucket is full");
    // An hour idle refills to the burst (1), not to 3600.
    assert.equal(rate.take('a', 1, 1, 3_600_000).allowed, true);
    assert.equal(rate.take('a', 1, 1, 3_600_000).allowed, false);
  });

  it('asks a slow tenant to wait as long as one token takes', () => {
    const rate = new RequestRate();
    rate.take('slow', 0.1, 1, 0);
    assert.deepEqual(rate.take('slow', 0.1, 1, 0), { allowed: false, retryAfterSeconds: 10 });
  });
});
