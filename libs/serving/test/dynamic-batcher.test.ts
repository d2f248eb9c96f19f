import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeadlineError, OverloadedError } from '@tq/contracts';
import { DynamicBatcher, type BatchOutput, type DynamicBatcherOptions } from '@tq/serving';

const F = 2;

/** A fake engine (our own seam): each row's answer is [sum of its values, row index in the batch]. */
function sumEngine(calls: number[]) {
  return (features: Float32Array, rows: number): Promise<BatchOutput> => {
    calls.push(rows);
    const scores = new Float32Array(rows * 2);
    for (let r = 0; r < rows; r++) {
      scores[r * 2] = features[r * F]! + features[r * F + 1]!;
      scores[r * 2 + 1] = r;
    }
    return Promise.resolve({ scores, outputSize: 2 });
  };
}

/** An engine call that waits until released: lets a test hold a batch running while it queues others. */
function gatedEngine(calls: number[]) {
  const gates: (() => void)[] = [];
  const run = async (features: Float32Array, rows: number): Promise<BatchOutput> => {
    await new Promise<void>((resolve) => gates.push(resolve));
    return sumEngine(calls)(features, rows);
  };
  const started = async (n: number): Promise<void> => {
    while (gates.length < n) await new Promise((r) => setImmediate(r));
  };
  return { run, gates, started };
}

const rowsOf = (...values: number[][]): Float32Array => Float32Array.from(values.flat());

const base: DynamicBatcherOptions = {
  featureCount: F,
  maxBatchSize: 8,
  maxDelayMs: 10_000,
  maxQueueRows: 100,
  timeoutMs: 60_000,
};

describe('DynamicBatcher', () => {
  it('coalesces concurrent requests into one engine call and gives each its own rows in order', async () => {
    const calls: number[] = [];
    const b = new DynamicBatcher(sumEngine(calls), { ...base, maxBatchSize: 6 });
    const answers = await Promise.all([
      b.submit(rowsOf([1, 1], [2, 2]), 2),
      b.submit(rowsOf([10, 10]), 1),
      b.submit(rowsOf([100, 0], [200, 0], [300, 0]), 3),
    ]);
    assert.deepEqual(calls, [6], 'one engine call of 6 rows (full: no wait for maxDelayMs)');
    assert.deepEqual(Array.from(answers[0].scores), [2, 0, 4, 1]);
    assert.deepEqual(Array.from(answers[1].scores), [20, 2]);
    assert.deepEqual(Array.from(answers[2].scores), [100, 3, 200, 4, 300, 5]);
    for (const a of answers) assert.equal(a.batchRows, 6);
  });

  it('never puts more than maxBatchSize rows in a call, and a request is never split', async () => {
    const calls: number[] = [];
    const b = new DynamicBatcher(sumEngine(calls), { ...base, maxBatchSize: 4, maxDelayMs: 0 });
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => b.submit(rowsOf([i, 0], [i, 1], [i, 2]), 3)),
    );
    for (const rows of calls) assert.ok(rows <= 4, `a call of ${rows} rows`);
    answers.forEach((a, i) => assert.deepEqual([a.scores[0], a.scores[2], a.scores[4]], [i, i + 1, i + 2]));
  });

  it('runs a partial batch once the oldest request waited maxDelayMs', async () => {
    const calls: number[] = [];
    const b = new DynamicBatcher(sumEngine(calls), { ...base, maxBatchSize: 1000, maxDelayMs: 20 });
    const a = await b.submit(rowsOf([3, 4]), 1);
    assert.deepEqual(Array.from(a.scores), [7, 0]);
    assert.deepEqual(calls, [1]);
  });

  it('fills the next batch while one runs', async () => {
    const calls: number[] = [];
    const engine = gatedEngine(calls);
    const b = new DynamicBatcher(engine.run, { ...base, maxBatchSize: 100, maxDelayMs: 0 });
    const first = b.submit(rowsOf([1, 0]), 1);
    await engine.started(1);
    const rest = Array.from({ length: 5 }, (_, i) => b.submit(rowsOf([i, 0]), 1));
    assert.equal(b.waitingRequests, 5);
    engine.gates[0]!();
    await first;
    await engine.started(2);
    engine.gates[1]!();
    const answers = await Promise.all(rest);
    assert.deepEqual(calls, [1, 5]);
    answers.forEach((a, i) => assert.deepEqual(Array.from(a.scores), [i, i]));
  });

  it('refuses beyond the queue bound with a 429 carrying Retry-After', async () => {
    const engine = gatedEngine([]);
    const b = new DynamicBatcher(engine.run, {
      ...base,
      maxBatchSize: 1,
      maxDelayMs: 0,
      maxQueueRows: 3,
      retryAfterSeconds: 2,
    });
    const running = b.submit(rowsOf([0, 0]), 1);
    await engine.started(1);
    const queued = [1, 2, 3].map((i) => b.submit(rowsOf([i, 0]), 1));
    assert.equal(b.waitingRows, 3);
    const refused = await b.submit(rowsOf([9, 9]), 1).then(
      () => assert.fail('admitted beyond the bound'),
      (err: unknown) => err,
    );
    assert.ok(refused instanceof OverloadedError);
    assert.equal(refused.status, 429);
    assert.equal(refused.retryAfterSeconds, 2);
    assert.match(refused.message, /SERVE_MAX_QUEUE/);
    // Everything admitted still answers.
    for (let i = 0; i < 4; i++) {
      await engine.started(i + 1);
      engine.gates[i]!();
    }
    await running;
    await Promise.all(queued);
  });

  it('answers 504 past the deadline and frees its place in the queue', async () => {
    const calls: number[] = [];
    const engine = gatedEngine(calls);
    const b = new DynamicBatcher(engine.run, {
      ...base,
      maxBatchSize: 1,
      maxDelayMs: 0,
      maxQueueRows: 1,
      timeoutMs: 30,
    });
    const running = b.submit(rowsOf([0, 0]), 1);
    const runningOutcome = running.then(
      () => undefined,
      (err: unknown) => err,
    );
    await engine.started(1);
    const waiting = b.submit(rowsOf([1, 0]), 1);
    const timedOut = await waiting.then(
      () => assert.fail('answered though the engine was held'),
      (err: unknown) => err,
    );
    assert.ok(timedOut instanceof DeadlineError);
    assert.equal(timedOut.status, 504);
    assert.equal(b.waitingRows, 0, 'the expired request left the queue');
    assert.ok((await runningOutcome) instanceof DeadlineError, 'the running one answers 504 too');
    // The slot is free: a new request is admitted, and runs once the engine is free again.
    const next = b.submit(rowsOf([5, 5]), 1);
    engine.gates[0]!();
    await engine.started(2);
    engine.gates[1]!();
    // It may itself time out (30 ms) on a slow machine; what matters is it was admitted, not refused.
    await next.then(
      (a) => assert.deepEqual(Array.from(a.scores), [10, 0]),
      (err: unknown) => assert.ok(err instanceof DeadlineError, String(err)),
    );
    assert.deepEqual(calls, [1, 1], 'the expired request never ran');
  });

  it('a request whose rows the engine refuses fails alone; the others of its batch answer', async () => {
    const calls: number[] = [];
    const fussy = (features: Float32Array, rows: number): Promise<BatchOutput> => {
      if (features.some((v) => Number.isNaN(v))) return Promise.reject(new Error('NaN in the input'));
      return sumEngine(calls)(features, rows);
    };
    const b = new DynamicBatcher(fussy, { ...base, maxBatchSize: 3 });
    const [good1, bad, good2] = await Promise.allSettled([
      b.submit(rowsOf([1, 1]), 1),
      b.submit(rowsOf([NaN, 1]), 1),
      b.submit(rowsOf([2, 2]), 1),
    ]);
    assert.equal(good1.status, 'fulfilled');
    assert.equal(good2.status, 'fulfilled');
    assert.equal(bad.status, 'rejected');
    assert.match(String(bad.reason), /NaN/);
    if (good1.status === 'fulfilled') assert.equal(good1.value.scores[0], 2);
    if (good2.status === 'fulfilled') assert.equal(good2.value.scores[0], 4);
  });

  it('checks its input: values per row, rows ≥ 1, options', async () => {
    const b = new DynamicBatcher(sumEngine([]), base);
    await assert.rejects(b.submit(new Float32Array(3), 1), /3 values for 1 rows of 2/);
    await assert.rejects(b.submit(new Float32Array(0), 0), /rows must be/);
    assert.throws(() => new DynamicBatcher(sumEngine([]), { ...base, maxBatchSize: 0 }), /maxBatchSize/);
  });
});
