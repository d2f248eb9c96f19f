import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { trainRequestSchema, type LayerSpec, type TrainRequest } from '@tq/contracts';
import {
  buildModel,
  createOptimizer,
  EarlyStopping,
  evaluate,
  initBackend,
  loadModelVersion,
  lossSpecOf,
  sliceRows,
  trainModel,
  trainRowCount,
  validationEntry,
  validationLoss,
  withInputShape,
} from '@tq/ml';
import { freshState, loadAggregatorCheckpoint, runIdOf, saveAggregatorCheckpoint, shardJobId } from '@tq/paramserver';
import { LocalBlobStore } from '@tq/storage';
import { loadTrainingData, type TableDatasets } from '@tq/tables';
import { publicTableDatasets } from '../../jobs/test/table-fixtures';
import { PsTestEnv } from './fixtures/harness';

const CARS = randomUUID();
const EPOCHS = 40;
const regression: LayerSpec[] = [
  { type: 'dense', units: 16, activation: 'relu' },
  { type: 'dense', units: 1 },
];

type Mode = 'sync' | 'local' | 'async';

function request(mode: Mode): TrainRequest {
  return trainRequestSchema.parse({
    model: { name: `ps-mpg-early-${mode}`, layers: regression },
    dataset: { id: CARS },
    fit: {
      epochs: EPOCHS,
      batchSize: 16,
      optimizer: 'adam',
      learningRate: 0.01,
      validationSplit: 0.2,
      seed: 4,
      // A coarse minDelta (standardized target: the loss is about 0.1-0.2) ends the run well before EPOCHS.
      earlyStopping: { monitor: 'valLoss', patience: 2, minDelta: 0.01 },
    },
    distributed: { workers: 2, mode, checkpointEvery: 5, ...(mode === 'local' ? { syncEvery: 3 } : {}) },
  });
}

/** The state a shard job settles in (completed or failed), polled for up to 20 s. */
async function shardEnd(env: PsTestEnv, jobId: string): Promise<string | undefined> {
  for (let deadline = Date.now() + 20_000; ; await new Promise((r) => setTimeout(r, 100))) {
    const state = await (await env.shardQueue.getJob(jobId))?.getState();
    if (state === 'completed' || state === 'failed' || Date.now() > deadline) return state;
  }
}

/**
 * fit.earlyStopping in a data-parallel run: the aggregator feeds each epoch's validation to
 * @tq/ml's EarlyStopping, ends the run when patience runs out (the shards end as at the last
 * step) and registers the best epoch's weights. Sync 2 x 16 equals the local loop at 32, so the
 * local run stops at the same epoch; local and async modes end their epochs elsewhere (within a
 * round, at the shards' mean cursor) and must stop and keep the best weights too.
 */
describe('parameter server with early stopping', () => {
  const env = new PsTestEnv();
  let tables: TableDatasets;
  before(async () => {
    await initBackend();
    tables = await publicTableDatasets({ [CARS]: { table: 'cars', labelColumn: 'Miles_per_Gallon' } });
    await env.setupOnTables(tables);
  });
  after(() => env.teardown());

  for (const mode of ['sync', 'local', 'async'] as const) {
    it(`${mode}: stops before the last epoch and registers the best epoch's weights`, async (t) => {
      const req = request(mode);
      const { id, result } = await env.train(req);
      const data = await loadTrainingData(req, { datasets: tables });
      const { bestEpoch, stoppedEpoch } = result;
      t.diagnostic(`${mode}: best ${bestEpoch}, stopped ${stoppedEpoch}`);
      assert.ok(bestEpoch !== undefined && stoppedEpoch !== undefined, JSON.stringify(result));
      assert.ok(stoppedEpoch < EPOCHS, `stopped after epoch ${stoppedEpoch} of ${EPOCHS}`);
      assert.equal(stoppedEpoch, bestEpoch + 2, 'patience 2: stopped two epochs after the best');
      assert.equal(result.epochs, stoppedEpoch);
      // The shards end as at a run's last step: their jobs complete (an async one may still be
      // finishing the gradient it was computing when the run ended).
      for (const i of [0, 1]) assert.equal(await shardEnd(env, shardJobId(runIdOf(id), i)), 'completed');
      if (mode === 'sync') {
        const layers = withInputShape(req.model.layers!, data.featureCount);
        const reference = buildModel(layers, { seed: 4, task: data.task });
        const local = await trainModel({ model: reference, data, fit: { ...req.fit, batchSize: 32 } });
        reference.dispose();
        assert.deepEqual([bestEpoch, stoppedEpoch], [local.bestEpoch, local.stoppedEpoch]);
        // Training mae/rmse/r2 from the shards' error sums: those of the single-process loop.
        for (const key of ['loss', 'mae', 'rmse', 'r2'] as const) {
          const [ps, one] = [result.metrics[key], local.metrics[key]];
          assert.ok(
            ps !== undefined && one !== undefined && Math.abs(ps - one) < 1e-3,
            `${key}: ps ${ps}, local ${one}`,
          );
        }
      }

      const { model, meta } = await loadModelVersion(env.registry, result.model);
      assert.equal(meta.history?.length, stoppedEpoch);
      const best = meta.history[bestEpoch - 1]!;
      assert.equal(result.metrics.valLoss, best.valLoss);
      // The registered weights, evaluated afresh, give the best epoch's validation figures.
      const split = trainRowCount(data, req.fit.validationSplit);
      const validation = sliceRows(data, split, data.rows);
      const loss = validationLoss(lossSpecOf(data, req.fit, split));
      const again = validationEntry(await evaluate(model, validation, 1024, loss));
      model.dispose();
      for (const key of ['valLoss', 'valRmse', 'valR2'])
        assert.ok(Math.abs(again[key]! - best[key]!) < 1e-5, `${key}: registered ${again[key]}, best ${best[key]}`);
    });
  }
});

/**
 * A resumed aggregator decides alike: its checkpoint carries early stopping's state (patience
 * count, best value and epoch) and the best epoch's weights, which differ from the current ones.
 */
describe('aggregator checkpoint with early stopping', () => {
  it('keeps the patience count and the best weights for a resumed aggregator', async () => {
    await initBackend();
    const dir = await mkdtemp(join(tmpdir(), 'tq-ps-es-'));
    const layers: LayerSpec[] = [{ type: 'dense', units: 2, inputShape: [3] }, ...regression.slice(1)];
    const model = buildModel(layers, { seed: 1, task: 'regression' });
    const optimizer = createOptimizer(request('sync').fit);
    const spec = { monitor: 'valLoss' as const, patience: 3, minDelta: 0 };
    const early = new EarlyStopping(spec);
    const bestWeights = model.getWeights().map((w) => Array.from(w.dataSync()));
    early.update(model, 1, { valLoss: 0.5 });
    model.setWeights(model.getWeights().map((w) => w.add(1)));
    early.update(model, 2, { valLoss: 0.7 });
    const state = { ...freshState(2), earlyStopping: { ...early.state } };
    const path = { blobs: new LocalBlobStore(dir), key: 'aggregator.ckpt' };
    await saveAggregatorCheckpoint(path, state, 'fp', model, optimizer, { best: await early.encodeBest() });

    const loaded = await loadAggregatorCheckpoint(path, 'fp');
    assert.deepEqual(loaded?.state.earlyStopping, { bestEpoch: 1, bestValue: 0.5, wait: 1, stopped: false });
    const resumed = new EarlyStopping(spec);
    resumed.loadBest(loaded.state.earlyStopping, loaded.best);
    const fresh = buildModel(layers, { seed: 2, task: 'regression' });
    resumed.restore(fresh);
    assert.deepEqual(
      fresh.getWeights().map((w) => Array.from(w.dataSync())),
      bestWeights,
    );
    // Two more epochs without improvement: patience 3 runs out counting the one before the restart.
    assert.equal(resumed.update(fresh, 3, { valLoss: 0.6 }), false);
    assert.equal(resumed.update(fresh, 4, { valLoss: 0.6 }), true);
    for (const m of [model, fresh]) m.dispose();
    for (const e of [early, resumed]) e.dispose();
    optimizer.dispose();
    await rm(dir, { recursive: true, force: true });
  });
});
