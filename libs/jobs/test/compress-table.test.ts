import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  compressRequestSchema,
  FieldError,
  localJobMeta,
  NotFoundError,
  trainRequestSchema,
  type JobHooks,
} from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { compressJob, runTraining, type CompressDeps } from '@tq/jobs';
import { GateRefusedError, initBackend } from '@tq/ml';
import { ArtifactStore, ModelRegistry } from '@tq/storage';
import { publicTableDatasets } from './table-fixtures';

function hooks<P>(jobId: string): JobHooks<P> {
  return {
    jobId,
    meta: localJobMeta(),
    signal: new AbortController().signal,
    onProgress: async () => {},
    log: () => {},
  };
}

/**
 * Compression of models trained on uploaded tables (raw columns): the held-out rows are the train
 * job's split with its fitted preprocessing, so the source's figures in the evaluation are exactly
 * the train job's valR2 / valRmse; the regression gates apply; a classifier distills over an upload
 * its teacher labels.
 */
describe('compress table models (cars regression, penguins classifier)', () => {
  const CARS = randomUUID();
  const PENGUINS = randomUUID();
  /** The same table uploaded again: distillation reads its rows, never its labels. */
  const UNLABELED = randomUUID();
  const CARS_AGAIN = randomUUID();
  let root: string;
  let deps: CompressDeps;
  let source: { name: string; version: number };
  let valR2: number;
  let valRmse: number;
  let penguins: { name: string; version: number };

  before(async () => {
    const backend = await initBackend();
    root = await mkdtemp(join(tmpdir(), 'tq-compress-table-'));
    const store = new ArtifactStore(root);
    const datasets = await publicTableDatasets({
      [CARS]: { table: 'cars', labelColumn: 'Miles_per_Gallon' },
      [PENGUINS]: { table: 'penguins', labelColumn: 'Species' },
      [UNLABELED]: { table: 'penguins', labelColumn: 'Species' },
      [CARS_AGAIN]: { table: 'cars', labelColumn: 'Miles_per_Gallon' },
    });
    const registry = new ModelRegistry(store);
    deps = { registry, datasets, store, backend, speed: { batchPasses: 1, latencyRuns: 3 } };
    const trained = await runTraining(
      trainRequestSchema.parse({
        model: {
          name: 'mpg',
          layers: [
            { type: 'dense', units: 16, activation: 'relu' },
            { type: 'dense', units: 1 },
          ],
        },
        dataset: { id: CARS },
        fit: { epochs: 40, batchSize: 32, learningRate: 0.01, validationSplit: 0.2, seed: 3 },
      }),
      { ...deps, datasets, store, budgets: loadConfig({}) },
      hooks('train-mpg'),
    );
    penguins = (
      await runTraining(
        trainRequestSchema.parse({
          model: {
            name: 'penguins',
            layers: [
              { type: 'dense', units: 16, activation: 'relu' },
              { type: 'dense', units: 3, activation: 'softmax' },
            ],
          },
          dataset: { id: PENGUINS },
          fit: { epochs: 30, batchSize: 16, learningRate: 0.01, validationSplit: 0.25, seed: 2 },
        }),
        { ...deps, datasets, store, budgets: loadConfig({}) },
        hooks('train-penguins'),
      )
    ).model;
    source = trained.model;
    valR2 = trained.metrics.valR2!;
    valRmse = trained.metrics.valRmse!;
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('evaluates on the train job’s held-out rows: the source’s R² and RMSE are its valR2 and valRmse', async () => {
    const result = await compressJob(
      compressRequestSchema.parse({
        source,
        steps: [{ prune: { sparsity: 0.3 } }, { quantize: { dtype: 'uint16' } }],
        gate: { maxR2Drop: 0.2, maxRmseIncrease: 5 },
      }),
      deps,
      hooks('c-mpg'),
    );
    const ev = result.evaluation!;
    assert.ok(Math.abs(ev.source.r2! - valR2) < 1e-5, `${ev.source.r2} vs ${valR2}`);
    assert.ok(Math.abs(ev.source.rmse! - valRmse) < 1e-4, `${ev.source.rmse} vs ${valRmse}`);
    assert.equal(ev.source.accuracy, undefined);
    assert.equal(ev.delta.r2, ev.result.r2! - ev.source.r2!);
    const meta = await deps.registry.getVersion(result.model);
    assert.equal(meta.task, 'regression');
    assert.ok(Object.hasOwn(meta.artifacts, 'preprocessing.json') && Object.hasOwn(meta.artifacts, 'network.onnx'));
    assert.equal(ev.result.artifact, 'network.onnx');
  });

  it('a regression gate refuses a wrecked model; a classification gate is refused naming it', async () => {
    await assert.rejects(
      compressJob(
        compressRequestSchema.parse({
          source,
          steps: [{ prune: { sparsity: 0.99, scope: 'global' } }],
          gate: { maxR2Drop: 0.01 },
        }),
        deps,
        hooks('c-mpg-refused'),
      ),
      (err: unknown) => err instanceof GateRefusedError && /R² dropped/.test(err.message),
    );
    await assert.rejects(
      compressJob(
        compressRequestSchema.parse({ source, steps: [{ prune: { sparsity: 0.5 } }], gate: { maxAccuracyDrop: 0.01 } }),
        deps,
        hooks('c-mpg-bad-gate'),
      ),
      (err: unknown) => err instanceof FieldError && err.field === 'gate.maxAccuracyDrop',
    );
  });

  it('distills the regression to a half-width student within an R² gate, over its rows and over an upload', async () => {
    for (const dataset of [undefined, { id: CARS_AGAIN }]) {
      const result = await compressJob(
        compressRequestSchema.parse({
          source,
          steps: [
            {
              distill: {
                student: { width: 0.5 },
                epochs: 40,
                batchSize: 32,
                learningRate: 0.01,
                alpha: 0.5,
                ...(dataset ? { dataset } : {}),
              },
            },
          ],
          gate: { maxR2Drop: 0.1 },
        }),
        deps,
        hooks(`c-mpg-distill-${dataset ? 'upload' : 'rows'}`),
      );
      const ev = result.evaluation!;
      assert.ok(ev.result.r2! > 0.6 && ev.delta.r2! > -0.1, `student R² ${ev.result.r2} (teacher ${ev.source.r2})`);
      assert.ok(
        ev.result.parameters < ev.source.parameters / 1.5,
        `${ev.result.parameters} vs ${ev.source.parameters} parameters`,
      );
      const meta = await deps.registry.getVersion(result.model);
      assert.equal(meta.task, 'regression');
      assert.equal(meta.lineage.kind, 'distilled');
    }
  });

  it('distills over an uploaded table the teacher labels; a missing upload is a 404 naming its field', async () => {
    const result = await compressJob(
      compressRequestSchema.parse({
        source: penguins,
        steps: [
          {
            distill: {
              student: { width: 0.5 },
              epochs: 20,
              batchSize: 16,
              learningRate: 0.01,
              dataset: { id: UNLABELED },
            },
          },
        ],
      }),
      deps,
      hooks('c-penguins-distill'),
    );
    const meta = await deps.registry.getVersion(result.model);
    const on = (meta.lineage.compression as { distilledOn: { id: string; rows: number } }).distilledOn;
    assert.equal(on.id, UNLABELED);
    assert.ok(on.rows >= 340, `${on.rows} rows labelled by the teacher`);
    assert.deepEqual(meta.inputColumns, (await deps.registry.getVersion(penguins)).inputColumns);
    assert.ok(result.evaluation!.result.accuracy! >= 0.85, `student ${result.evaluation!.result.accuracy}`);
    await assert.rejects(
      compressJob(
        compressRequestSchema.parse({
          source: penguins,
          steps: [{ distill: { student: { width: 0.5 }, dataset: { id: randomUUID() } } }],
        }),
        deps,
        hooks('c-penguins-missing'),
      ),
      (err: unknown) => err instanceof NotFoundError && err.field === 'steps.0.distill.dataset.id',
    );
  });
});
