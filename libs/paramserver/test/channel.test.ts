import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Redis from 'ioredis';
import { mixSeed, seededPermutation } from '@tq/ml';
import {
  chunkCount,
  epochOrder,
  frameMessage,
  makePlan,
  RunChannel,
  shardMessageSchema,
  shardSlice,
  unframeMessage,
} from '@tq/paramserver';
import { redisUrl } from './fixtures/harness';

const randomFloats = (n: number): Float32Array => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);

describe('RunChannel (real Redis)', () => {
  const prefix = `tqtest-psch-${randomUUID().slice(0, 8)}`;
  let redis: Redis;
  const keysOf = async (pattern: string): Promise<string[]> => {
    const out: string[] = [];
    for await (const b of redis.scanStream({ match: `${prefix}:${pattern}`, count: 1000 }) as AsyncIterable<string[]>)
      out.push(...b);
    return out.sort();
  };
  before(() => {
    redis = new Redis(redisUrl());
  });
  after(async () => {
    const keys = await keysOf('*');
    if (keys.length) await redis.unlink(...keys);
    redis.disconnect();
  });

  it('moves Float32 tensors bit for bit in 1 MiB chunks and frees gradients as they are read', async () => {
    const ch = new RunChannel(redis, { runId: 'r1', shards: 1, prefix });
    const grad = randomFloats(655_360 + 3); // 2.5 MiB + 12 bytes: 3 chunks, the last one short
    await ch.push({ kind: 'grad', shard: 0, version: 0, samples: 5, loss: 0.5, correct: 2 }, grad);
    assert.equal((await keysOf('ps:{r1}:p:*')).length, chunkCount(grad.length));
    assert.equal(chunkCount(grad.length), 3);
    const msg = await ch.nextMessage(1000);
    assert.ok(msg);
    assert.deepEqual(
      { kind: msg.kind, shard: msg.shard, samples: msg.samples, floats: msg.floats },
      { kind: 'grad', shard: 0, samples: 5, floats: grad.length },
    );
    const got = await ch.readPayload(msg);
    assert.ok(got);
    assert.deepEqual(Buffer.from(got.buffer), Buffer.from(grad.buffer));
    assert.deepEqual(await keysOf('ps:{r1}:p:*'), []);
    // Values are raw bytes, not JSON: one chunk holds exactly 1 MiB.
    await ch.push({ kind: 'grad', shard: 0 }, grad);
    const first = (await keysOf('ps:{r1}:p:*')).find((k) => k.endsWith(':0'))!;
    assert.equal(await redis.strlen(first), 1 << 20);
    // Up to one chunk travels inside the inbox element itself: no payload keys at all.
    const small = randomFloats(1000);
    await ch.push({ kind: 'grad', shard: 0, samples: 1 }, small);
    const before = (await keysOf('ps:{r1}:p:*')).length;
    await ch.nextMessage(1000); // the 2.5 MiB one pushed above
    const inline = await ch.nextMessage(1000);
    assert.ok(inline?.inline);
    assert.deepEqual(Buffer.from((await ch.readPayload(inline))!.buffer), Buffer.from(small.buffer));
    assert.equal((await keysOf('ps:{r1}:p:*')).length, before);
    // The inline payload starts 4-byte aligned in its frame (readable in place), whatever the header's length.
    for (const shard of [0, 7, 12345]) {
      const frame = frameMessage(
        shardMessageSchema.parse({ kind: 'grad', shard, inline: true, floats: small.length }),
        small,
      );
      assert.equal((4 + frame.readUInt32LE(0)) % 4, 0);
      assert.deepEqual(Buffer.from(unframeMessage(frame).inlineBytes!), Buffer.from(small.buffer));
    }
    await ch.close();
  });

  it('waitForState brings the next version weights along with its wake note, and only that version', async () => {
    const ch = new RunChannel(redis, { runId: 'r5', shards: 1, prefix });
    const reader = new RunChannel(redis.duplicate(), { runId: 'r5', shards: 1, prefix });
    const w = randomFloats(262_144 + 5); // just over 1 MiB: two chunks
    const into = new Float32Array(w.length);
    const publish = async (v: number, status: 'running' | 'done' = 'running') => {
      w[0] = v;
      await ch.publish({ version: v, step: v, status, floats: w.length }, w);
    };
    const dropFromRedis = async (v: number) => {
      await redis.unlink(...(await keysOf(`ps:{r5}:w:${v}:*`)));
    };
    // The first wait cannot know the weights' size yet: pulled as usual.
    await publish(0);
    const s0 = await reader.waitForState(0, -1, 5000);
    assert.equal((await reader.pullWeights(s0!, into))?.[0], 0);
    // Blocked before version 1 is out: the GETs queued behind the BLPOP run when it returns, so the
    // weights are here even once their keys are gone from Redis.
    const waiting = reader.waitForState(0, 0, 5000);
    await new Promise((r) => setTimeout(r, 50));
    await publish(1);
    const s1 = await waiting;
    assert.equal(s1?.version, 1);
    await dropFromRedis(1);
    assert.equal(await reader.pullWeights(s1, into), into);
    assert.deepEqual(Buffer.from(into.buffer), Buffer.from(w.buffer));
    assert.equal(await reader.pullWeights(s1, into), null); // taken once; the keys are gone
    // Versions 2 and 3 out before the reader (at 1) looks: the note is 3's, the chunks fetched with
    // it were 2's, so nothing is kept and pullWeights reads version 3 from Redis.
    await publish(2);
    await publish(3);
    const s3 = await reader.waitForState(0, 1, 5000);
    assert.equal(s3?.version, 3);
    assert.equal((await reader.pullWeights(s3, into))?.[0], 3);
    // Nothing newer: null after the timeout; then the end of the run.
    assert.equal(await reader.waitForState(0, 3, 300), null);
    await publish(4, 'done');
    assert.equal((await reader.waitForState(0, 3, 5000))?.status, 'done');
    await ch.cleanup();
    await ch.close();
    await reader.close();
    reader.redis.disconnect();
  });

  it('keeps a bounded window of published versions, wakes waiting shards, cleans up to a marker', async () => {
    const ch = new RunChannel(redis, { runId: 'r2', shards: 2, prefix, keepVersions: 3 });
    const reader = new RunChannel(redis.duplicate(), { runId: 'r2', shards: 2, prefix });
    const w = randomFloats(1000);
    const waiting = reader.waitForState(1, 4, 5000); // waits for a version after 4
    for (let v = 0; v < 10; v++) {
      w[0] = v;
      await ch.publish({ version: v, step: v, status: 'running', floats: w.length }, w);
    }
    const state = await waiting;
    assert.ok(state && state.version > 4);
    const latest = await reader.pullWeights({ version: 9, step: 9, status: 'running', floats: w.length });
    assert.equal(latest?.[0], 9);
    assert.equal(await reader.pullWeights({ version: 5, step: 5, status: 'running', floats: w.length }), null); // fell out of the window
    assert.deepEqual((await keysOf('ps:{r2}:w:*')).map((k) => k.split(':').at(-2)).sort(), ['7', '8', '9']);

    assert.equal(await reader.isAborted(), false);
    await ch.abort();
    assert.equal(await reader.isAborted(), true);
    await ch.reopen();
    assert.equal(await reader.isAborted(), false);

    await ch.cleanup();
    assert.deepEqual(await keysOf('ps:{r2}:*'), [`${prefix}:ps:{r2}:ended`]);
    assert.equal(await reader.isEnded(), true);
    assert.equal(await reader.isAborted(), true); // an ended run stops whoever is left
    await ch.close();
    await reader.close();
    reader.redis.disconnect();
  });

  it('claims: the newest attempt of a role holds it, older ones see themselves superseded; none after cleanup', async () => {
    const ch = new RunChannel(redis, { runId: 'r4', shards: 2, prefix });
    const older = await ch.claim('shard:1');
    const other = await ch.claim('shard:0');
    assert.equal(await ch.isSuperseded(older), false);
    const newer = await ch.claim('shard:1');
    assert.equal(await ch.isSuperseded(older), true);
    assert.equal(await ch.isSuperseded(newer), false);
    assert.equal(await ch.isSuperseded(other), false, 'roles are independent');
    // The aggregator reads it along with the abort flag and the unstaffed shards, in one round trip.
    await ch.setUnstaffed([1]);
    assert.deepEqual(await ch.readControl(older), { aborted: false, unstaffed: [1], superseded: true });
    assert.deepEqual(await ch.readControl(newer), { aborted: false, unstaffed: [1], superseded: false });
    await ch.cleanup(1000);
    assert.equal(await ch.isSuperseded(older), false, 'a cleaned-up run is over, not taken over');
    await ch.close();
  });
});

describe('data order', () => {
  it('gives each shard a disjoint share; together they use every training row once per epoch', () => {
    for (const [rows, workers, b] of [
      [450, 3, 11],
      [450, 2, 16],
      [10, 4, 3],
      [7, 3, 5],
    ] as const) {
      const plan = makePlan({ trainRows: rows, workers, batchPerWorker: b, epochs: 2, seed: 3, shuffle: true });
      for (let epoch = 0; epoch < 2; epoch++) {
        const order = epochOrder(plan, epoch);
        const seen = new Uint8Array(rows);
        for (let s = epoch * plan.stepsPerEpoch; s < (epoch + 1) * plan.stepsPerEpoch; s++) {
          for (let i = 0; i < workers; i++) {
            const sl = shardSlice(plan, s, i);
            assert.equal(sl.epoch, epoch);
            assert.ok(sl.end - sl.start <= b, 'a shard never gets more than its batch');
            for (let p = sl.start; p < sl.end; p++) seen[order[p]!]! += 1;
          }
        }
        assert.ok(
          seen.every((c) => c === 1),
          `rows=${rows} N=${workers} b=${b} epoch ${epoch}`,
        );
      }
    }
  });

  it("is trainModel's order: global batch k of epoch e is positions [kB, (k+1)B) of the same permutation", () => {
    const plan = makePlan({ trainRows: 100, workers: 3, batchPerWorker: 4, epochs: 3, seed: 11, shuffle: true });
    for (let e = 0; e < 3; e++) assert.deepEqual(epochOrder(plan, e), seededPermutation(100, mixSeed(11, e)));
    const last = shardSlice(plan, plan.stepsPerEpoch - 1, 2);
    assert.equal(last.end, 100);
    assert.equal(plan.stepsPerEpoch, 9); // ceil(100 / 12): the last batch has 4 rows, split 1/1/2
  });
});
