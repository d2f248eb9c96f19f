import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { ArtifactStore, DatasetStore, ModelRegistry } from '@tq/storage';
import { profileTable, readTable } from '@tq/tables';
import { feeds } from '../libs/tables/test/onnx-feeds';
import { fitTableModel, registerTableModel, type TableModel } from '../libs/jobs/test/table-models';
import { TestSystem } from './support/system';

/**
 * POST .../predict with records over HTTP, on a version registered as a table model is (model.onnx
 * the whole pipeline, network.onnx, preprocessing.json), and the same answers from the download.
 */
describe('predict with records (API, no workers)', () => {
  let system: TestSystem;
  let penguins: TableModel;
  let cars: TableModel;

  /** A dataset stored through the dataset store, in the state a test needs. */
  async function dataset(status: 'profiling' | 'ready', columns: string[]): Promise<string> {
    const store = new DatasetStore(new ArtifactStore(system.artifactDir).forTenant('default'));
    const csv = `${columns.map((c) => JSON.stringify(c)).join(',')}\n${columns.map(() => '1').join(',')}\n`;
    const bytes = () => Readable.from([Buffer.from(csv)]);
    const { id } = await store.create({ name: 't.csv', format: 'csv' }, bytes(), 1 << 20);
    if (status === 'profiling') return id; // as an upload is until its profile job ends
    const profile = await profileTable(await readTable(bytes(), 'csv'));
    await store.markReady(id, { profile, rows: 1, featureColumns: columns, classes: [] });
    return id;
  }

  before(async () => {
    system = await TestSystem.start({ workers: 0 });
    [penguins, cars] = [await fitTableModel('penguins'), await fitTableModel('cars')];
    const registry = new ModelRegistry(new ArtifactStore(system.artifactDir).forTenant('default'));
    await registerTableModel(registry, 'penguins', penguins);
    await registerTableModel(registry, 'mpg', cars);
  });
  after(async () => {
    penguins.model.dispose();
    cars.model.dispose();
    await system.stop();
  });

  it('answers class names, and the downloaded model.onnx gives the same probabilities on raw columns', async () => {
    const records = [
      { ...penguins.records[0]!, Species: undefined },
      { Island: 'Atlantis', 'Beak Length (mm)': 46.1, 'Beak Depth (mm)': null, 'Flipper Length (mm)': 211 },
    ].map((r) => ({ 'Body Mass (g)': 4500, Sex: null, ...r }));
    const body = {
      records: records.map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined))),
    };
    const res = await system.request('POST', '/v1/models/penguins/versions/1/predict', body);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.engine, 'onnxruntime');
    assert.deepEqual(res.body.unknownCategories, { Island: 1 });
    assert.equal(res.body.predictions[0].label, 'Adelie');

    const download = await system.fetch(`/v1/models/penguins/versions/1/model.onnx`);
    const session = await ort.InferenceSession.create(new Uint8Array(await download.arrayBuffer()));
    const rows = body.records.map((r) => penguins.columns.map((c) => r[c] ?? null));
    const out = (await session.run(feeds(penguins.spec, penguins.columns, rows))).output!.data as Float32Array;
    await session.release();
    (res.body.predictions as Array<{ scores: number[] }>).forEach((p, i) =>
      p.scores.forEach((s, k) => assert.ok(Math.abs(s - out[i * 3 + k]!) <= 1e-5, `record ${i} class ${k}`)),
    );
  });

  it('regression answers {value} in target units', async () => {
    const res = await system.request('POST', '/v1/models/mpg/versions/1/predict', {
      records: cars.records.slice(0, 2),
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const values = (res.body.predictions as Array<{ value: number }>).map((p) => p.value);
    assert.ok(
      values.every((v) => v > 5 && v < 50),
      `miles per gallon: ${values.join(', ')}`,
    );
  });

  it('400 naming records.<i>.<column> for an unknown or absent column or a bad cell; instances of the wrong width', async () => {
    const good = penguins.records[0]!;
    const cases: Array<[string, unknown, string]> = [
      ['penguins', { records: [{ ...good, Wings: 2 }] }, 'records.0.Wings'],
      ['penguins', { records: [good, { ...good, Island: undefined }] }, 'records.1.Island'],
      ['penguins', { records: [{ ...good, 'Body Mass (g)': 'heavy' }] }, 'records.0.Body Mass (g)'],
      ['penguins', { instances: [[1, 2, 3]] }, 'instances.0'],
    ];
    for (const [model, body, field] of cases) {
      const res = await system.request('POST', `/v1/models/${model}/versions/1/predict`, body);
      assert.equal(res.status, 400, `${field}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.issues?.[0]?.field, field);
    }
  });

  it('infer on a table: 202 when its columns fit; 409 while profiling; 400 naming input.dataset.id otherwise', async () => {
    const all = [...penguins.columns];
    const infer = (id: string) =>
      system.request('POST', '/v1/jobs/infer', { model: { name: 'penguins', version: 1 }, input: { dataset: { id } } });
    const ok = await infer(await dataset('ready', all));
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
    const busy = await infer(await dataset('profiling', all));
    assert.equal(busy.status, 409, JSON.stringify(busy.body));
    assert.equal(busy.body.issues?.[0]?.field, 'input.dataset.id');
    const lacking = await infer(
      await dataset(
        'ready',
        all.filter((c) => c !== 'Island'),
      ),
    );
    assert.equal(lacking.status, 400, JSON.stringify(lacking.body));
    assert.match(lacking.body.issues?.[0]?.reason ?? '', /"Island"/);
  });
});
