import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { trainRequestSchema, type LayerSpec, type TrainRequest } from '@tq/contracts';
import { buildModel, initBackend, loadModelVersion, PREPROCESSING_ARTIFACT, trainModel, withInputShape } from '@tq/ml';
import { loadTrainingData, type TableDatasets } from '@tq/tables';
import { publicTableDatasets } from '../../jobs/test/table-fixtures';
import { PsTestEnv } from './fixtures/harness';

const ID = { cars: randomUUID(), penguins: randomUUID() };
const regression: LayerSpec[] = [
  { type: 'dense', units: 16, activation: 'relu' },
  { type: 'dense', units: 1 },
];
const classifier: LayerSpec[] = [
  { type: 'dense', units: 16, activation: 'relu' },
  { type: 'dense', units: 3, activation: 'softmax' },
];

function request(name: string, id: string, layers: LayerSpec[], fit: object): TrainRequest {
  return trainRequestSchema.parse({
    model: { name, layers },
    dataset: { id },
    fit: { epochs: 3, batchSize: 16, optimizer: 'adam', learningRate: 0.01, validationSplit: 0.2, seed: 4, ...fit },
    distributed: { workers: 2, mode: 'sync', checkpointEvery: 5 },
  });
}

/**
 * Data-parallel training on uploaded tables: every process (coordinator, aggregator, two shards)
 * prepares the table itself with loadTrainingData, so the run is right only if they all derive the
 * same split, preprocessing and matrices. Sync mode with 2 shards of 16 rows must then equal the
 * single-process loop with batches of 32 (as equivalence.test.ts shows for MNIST), for both tasks.
 */
describe('sync parameter server on tables', () => {
  const env = new PsTestEnv();
  let tables: TableDatasets;
  before(async () => {
    await initBackend();
    tables = await publicTableDatasets({
      [ID.cars]: { table: 'cars', labelColumn: 'Miles_per_Gallon' },
      [ID.penguins]: { table: 'penguins', labelColumn: 'Species' },
    });
    await env.setupOnTables(tables);
  });
  after(() => env.teardown());

  const cases = [
    ['cars regression', request('ps-mpg', ID.cars, regression, {}), 'valR2'],
    [
      'penguins, balanced class weights',
      request('ps-penguins', ID.penguins, classifier, { classWeights: 'balanced' }),
      'valAccuracy',
    ],
  ] as const;
  for (const [title, req, metric] of cases) {
    it(`${title}: 2 workers x 16 == 1 process x 32, registered with preprocessing.json`, async (t) => {
      const { result } = await env.train(req);
      const data = await loadTrainingData(req, { datasets: tables });
      const reference = buildModel(withInputShape(req.model.layers!, data.featureCount), {
        seed: req.fit.seed,
        task: data.task,
      });
      const local = await trainModel({ model: reference, data, fit: { ...req.fit, batchSize: 32 } });
      t.diagnostic(`${metric}: ps ${result.metrics[metric]}, local ${local.metrics[metric]}`);
      assert.equal(result.task, data.task);
      assert.deepEqual(result.preprocessing, { width: data.featureCount, ignored: data.preprocessing!.ignored });
      assert.ok(Math.abs(result.metrics[metric]! - local.metrics[metric]!) < 1e-3);

      const { model, meta } = await loadModelVersion(env.registry, result.model);
      const got = model.getWeights().map((w) => w.dataSync());
      const want = reference.getWeights().map((w) => w.dataSync());
      let maxDiff = 0;
      for (let i = 0; i < want.length; i++)
        for (let k = 0; k < want[i]!.length; k++) maxDiff = Math.max(maxDiff, Math.abs(got[i]![k]! - want[i]![k]!));
      assert.ok(maxDiff < 5e-4, `max |w_ps - w_local| = ${maxDiff}`);
      assert.equal(meta.task, data.task);
      assert.deepEqual(meta.inputShape, [data.featureCount]);
      const spec = JSON.parse((await env.registry.readArtifact(result.model, PREPROCESSING_ARTIFACT)).toString('utf8'));
      assert.deepEqual(spec, JSON.parse(JSON.stringify(data.preprocessing)));
      model.dispose();
      reference.dispose();
    });
  }
});
