import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff, backoffDelay, ThrottledLog } from '@tq/contracts';

describe('Backoff', () => {
  it('doubles from the base up to the cap, never below half of each step', () => {
    // The jitter at both ends: every delay lies in [ceiling/2, ceiling].
    for (const r of [0, 0.5, 0.999]) {
      const b = new Backoff({ baseMs: 100, capMs: 30_000, random: () => r });
      const delays = Array.from({ length: 20 }, () => b.next());
      const ceilings = [100, 200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, ...new Array<number>(11).fill(30_000)];
      delays.forEach((d, i) => {
        assert.ok(d >= ceilings[i]! / 2 && d <= ceilings[i]!, `try ${i}: ${d} ms for ceiling ${ceilings[i]}`);
      });
      for (let i = 1; i < 9; i++) assert.ok(delays[i]! >= delays[i - 1]!, `grows: ${delays.join(', ')}`);
      assert.equal(b.attempts, 20);
    }
  });

  it('starts over after a success, and a huge try count stays at the cap', () => {
    const b = new Backoff({ baseMs: 50, capMs: 1000, random: () => 1 });
    b.next();
    b.next();
    assert.equal(b.next(), 200);
    b.reset();
    assert.equal(b.next(), 50);
    assert.equal(backoffDelay(5000, { capMs: 1000, random: () => 1 }), 1000);
    assert.equal(backoffDelay(5000, { capMs: 1000, random: () => 0 }), 500);
  });

  it('wait() sleeps the delay and ends early on abort', async () => {
    const b = new Backoff({ baseMs: 60_000, capMs: 60_000 });
    const ac = new AbortController();
    const waiting = b.wait(ac.signal);
    ac.abort();
    await waiting; // would take 30-60 s without the abort
    assert.equal(b.attempts, 1);
  });
});

describe('ThrottledLog', () => {
  it('writes a message repeated 1,000 times within the interval once, then once more with the count', () => {
    const lines: string[] = [];
    let now = 0;
    const log = new ThrottledLog(
      (l) => lines.push(l),
      60_000,
      () => now,
    );
    for (let i = 0; i < 1000; i++) {
      log.log(`CROSSSLOT Keys in request don't hash to the same slot (try ${i})`, 'main-loop');
      now += 10; // 1,000 tries in 10 s
    }
    assert.deepEqual(lines, ["CROSSSLOT Keys in request don't hash to the same slot (try 0)"]);
    now = 60_000;
    assert.equal(log.log('CROSSSLOT again', 'main-loop'), true);
    assert.equal(lines.length, 2);
    assert.match(lines[1]!, /^CROSSSLOT again \(and 999 more like it in 60\.0 s\)$/);
  });

  it('keeps keys apart and flushes a pending count', () => {
    const lines: string[] = [];
    const log = new ThrottledLog(
      (l) => lines.push(l),
      60_000,
      () => 0,
    );
    log.log('a');
    log.log('b');
    log.log('a');
    log.log('a');
    assert.deepEqual(lines, ['a', 'b']);
    log.flush();
    assert.deepEqual(lines, ['a', 'b', 'a (repeated 2 times in 0.0 s)']);
    log.flush();
    assert.equal(lines.length, 3);
  });
});
