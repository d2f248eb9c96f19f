import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { explainVersion, featureNames } from '@tq/jobs';
import { TableEnv } from './table-env';

/** explainVersion on a registered table model, without HTTP: what it keeps and how it sums columns. */
describe('explainVersion', () => {
  let env: TableEnv;
  before(async () => {
    env = await TableEnv.start();
  });
  after(async () => {
    await env.close();
  });

  const deps = () => ({ registry: env.registry, engine: env.engine, maxValues: 10_000_000 });

  it('keeps no tensor after a request, answered or refused', async () => {
    const records = env.penguins.records.slice(0, 3).map(({ Species: _, ...r }) => r);
    // A first request warms the backend's own caches; the second must leave the count as it was.
    await explainVersion(deps(), env.penguinsMeta, { records, steps: 8 });
    const before = tf.memory().numTensors;
    const res = await explainVersion(deps(), env.penguinsMeta, { records, steps: 8 });
    assert.equal(res.explanations.length, 3);
    await assert.rejects(explainVersion(deps(), env.penguinsMeta, { records, steps: 8, target: 7 }), /target/);
    assert.equal(tf.memory().numTensors, before, 'tensors left behind');
  });

  it("names a table's encoded features by column and category, the unknown slot last", () => {
    const names = featureNames(env.penguins.spec);
    assert.equal(names.length, env.penguins.spec.width);
    const island = names.filter((n) => n.startsWith('Island='));
    assert.ok(island.length >= 2 && island.at(-1) === 'Island=(unknown)', island.join(', '));
  });
});
