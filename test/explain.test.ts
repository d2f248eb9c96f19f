import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { featureMeans, writeModelArtifacts } from '@tq/ml';
import { ArtifactStore, ModelRegistry } from '@tq/storage';
import { fitTableModel, registerTableModel, type TableModel } from '../libs/jobs/test/table-models';
import { TestSystem } from './support/system';
import { irisTrain } from './support/iris-train';

/** Rows × steps × features a request may cost here: small, so that a 413 is cheap to provoke. */
const MAX_EXPLAIN_VALUES = 200_000;

/**
 * POST .../explain over HTTP (issue 10): integrated gradients on table models registered as the
 * train job registers them (penguins: classification with categories; cars: regression), and on
 * an iris model trained by a worker (which records the training means, the default baseline).
 */
describe('explain (integrated gradients)', { timeout: 600_000 }, () => {
  let system: TestSystem;
  let penguins: TableModel;
  let cars: TableModel;

  before(async () => {
    system = await TestSystem.start({ workers: 1, env: { MAX_EXPLAIN_VALUES: String(MAX_EXPLAIN_VALUES) } });
    [penguins, cars] = [await fitTableModel('penguins'), await fitTableModel('cars')];
    const registry = new ModelRegistry(new ArtifactStore(system.artifactDir).forTenant('default'));
    await registerTableModel(registry, 'penguins', penguins);
    await registerTableModel(registry, 'mpg', cars);
    // v2: the same network with its training rows' means recorded, as the train job now does.
    const { train } = penguins.prepared;
    const target = penguins.spec.target;
    await registry.register(
      'penguins',
      {
        inputShape: [penguins.spec.width],
        featureCount: penguins.spec.width,
        classes: target.task === 'classification' ? target.classes : [],
        task: target.task,
        inputColumns: penguins.spec.steps.map((s) => s.name),
        featureMeans: featureMeans(train.features, train.rows, penguins.spec.width),
        lineage: { kind: 'trained' },
        weightDtype: 'float32',
      },
      (out) => writeModelArtifacts(penguins.model, out, () => undefined, { preprocessing: penguins.spec }),
    );
    // A classifier without class names (instances only): a target index is checked against its outputs.
    await registry.register(
      'bare',
      {
        inputShape: [penguins.spec.width],
        featureCount: penguins.spec.width,
        classes: [],
        task: 'classification',
        lineage: { kind: 'trained' },
        weightDtype: 'float32',
      },
      (out) => writeModelArtifacts(penguins.model, out, () => undefined),
    );
  });
  after(async () => {
    penguins.model.dispose();
    cars.model.dispose();
    await system.stop();
  });

  const record = () => {
    const r = { ...penguins.records[0]! };
    delete r.Species;
    return r;
  };

  it('a table record: attributions by column summing its features, the predicted class, a small gap', async () => {
    const res = await system.request('POST', '/v1/models/penguins/versions/1/explain', {
      records: [record()],
      steps: 256,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.method, 'integrated-gradients');
    assert.equal(res.body.baseline, 'zeros', 'v1 records no means');
    assert.equal(res.body.steps, 256);
    const [e] = res.body.explanations;
    assert.deepEqual(Object.keys(e.attributions).sort(), penguins.spec.steps.map((s) => s.name).sort());
    assert.equal(e.features.length, penguins.spec.width);
    assert.ok(
      e.features.some((f: { name: string }) => f.name.startsWith('Island=')),
      JSON.stringify(e.features),
    );
    // A column's attribution is its encoded features' sum.
    const island = e.features
      .filter((f: { name: string }) => f.name.startsWith('Island='))
      .reduce((s: number, f: { attribution: number }) => s + f.attribution, 0);
    assert.ok(Math.abs(island - e.attributions.Island) < 1e-6);
    // The predicted class is explained, and completeness holds: Σ attributions ≈ f(x) − f(baseline).
    assert.equal(e.target.classIndex, e.prediction.classIndex);
    assert.equal(e.target.label, e.prediction.label);
    assert.ok(Math.abs(e.value - e.prediction.scores[e.prediction.classIndex]) < 1e-5);
    assert.ok(Math.abs(e.completenessGap) < 0.01, `gap ${e.completenessGap}`);
    const sum = Object.values(e.attributions as Record<string, number>).reduce((s, a) => s + a, 0);
    assert.ok(Math.abs(sum - (e.value - e.baselineValue) - e.completenessGap) < 1e-5);
    assert.ok(Math.abs(e.value - e.baselineValue) > 1e-3, 'the record differs from the baseline: something to explain');
  });

  it('the recorded means are the default baseline; zeros on request; a target by label or index', async () => {
    const path = '/v1/models/penguins/versions/2/explain';
    const mean = await system.request('POST', path, { records: [record()] });
    assert.equal(mean.status, 200, JSON.stringify(mean.body));
    assert.equal(mean.body.baseline, 'mean');
    assert.equal(mean.body.steps, 64);
    const zeros = await system.request('POST', path, { records: [record()], baseline: 'zeros', target: 'Gentoo' });
    assert.equal(zeros.status, 200, JSON.stringify(zeros.body));
    assert.equal(zeros.body.baseline, 'zeros');
    assert.notEqual(zeros.body.explanations[0].baselineValue, mean.body.explanations[0].baselineValue);
    const gentoo = zeros.body.explanations[0].target;
    assert.equal(gentoo.label, 'Gentoo');
    const byIndex = await system.request('POST', path, { records: [record()], target: gentoo.classIndex });
    assert.equal(byIndex.body.explanations[0].target.label, 'Gentoo');
    // v1 recorded no means: asked for, they are a 400 naming baseline.
    const none = await system.request('POST', '/v1/models/penguins/versions/1/explain', {
      records: [record()],
      baseline: 'mean',
    });
    assert.equal(none.status, 400, JSON.stringify(none.body));
    assert.equal(none.body.issues?.[0]?.field, 'baseline');
  });

  it('a regression explains its value in target units', async () => {
    const res = await system.request('POST', '/v1/models/mpg/versions/1/explain', {
      records: cars.records.slice(0, 2),
      steps: 128,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    for (const e of res.body.explanations) {
      assert.deepEqual(e.target, { value: true });
      assert.ok(Math.abs(e.value - e.prediction.value) < 1e-3, `${e.value} vs ${e.prediction.value}`);
      assert.ok(Math.abs(e.completenessGap) < 0.05, `gap ${e.completenessGap} mpg`);
      assert.ok(Math.abs(e.value - e.baselineValue) > 0.1, 'the car differs from the baseline');
    }
  });

  it('a model trained by a worker records its means: instances explained from them', async () => {
    const train = await system.request('POST', '/v1/jobs/train', irisTrain({ epochs: 3, seed: 1 }));
    assert.equal(train.status, 202, JSON.stringify(train.body));
    const job = await system.waitForJob(train.body.id);
    assert.equal(job.state, 'completed', JSON.stringify(job));
    const meta = await system.request('GET', '/v1/models/iris/versions/1');
    assert.equal(meta.body.featureMeans?.length, 4, JSON.stringify(meta.body));
    const res = await system.request('POST', '/v1/models/iris/versions/1/explain', {
      instances: [[5.1, 3.5, 1.4, 0.2]],
      steps: 128,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.baseline, 'mean');
    const [e] = res.body.explanations;
    assert.equal(e.attributions.length, 4);
    assert.equal(e.features, undefined);
    assert.ok(Math.abs(e.completenessGap) < 0.01, `gap ${e.completenessGap}`);

    // A compressed version has the same inputs: the means carry over, and its model.json explains.
    const compress = await system.request('POST', '/v1/jobs/compress', {
      source: { name: 'iris', version: 1 },
      quantize: { dtype: 'uint8' },
    });
    assert.equal(compress.status, 202, JSON.stringify(compress.body));
    const compressed = await system.waitForJob(compress.body.id);
    assert.equal(compressed.state, 'completed', JSON.stringify(compressed));
    const version = compressed.result.model.version as number;
    const child = await system.request('GET', `/v1/models/iris/versions/${version}`);
    assert.deepEqual(child.body.featureMeans, meta.body.featureMeans);
    const quantized = await system.request('POST', `/v1/models/iris/versions/${version}/explain`, {
      instances: [[5.1, 3.5, 1.4, 0.2]],
    });
    assert.equal(quantized.status, 200, JSON.stringify(quantized.body));
    assert.equal(quantized.body.baseline, 'mean');
  });

  it('400 naming the field: feature count, unknown column, steps, target; 413 over the budget; 404 unknown version', async () => {
    const good = record();
    const cases: Array<[string, unknown, string, number]> = [
      ['penguins/versions/1', { instances: [[1, 2, 3]] }, 'instances.0', 400],
      ['penguins/versions/1', { records: [{ ...good, Wings: 2 }] }, 'records.0.Wings', 400],
      ['penguins/versions/1', { records: [good], instances: [[1]] }, 'instances', 400],
      ['penguins/versions/1', { steps: 8 }, 'instances', 400],
      ['penguins/versions/1', { records: [good], steps: 0 }, 'steps', 400],
      ['penguins/versions/1', { records: [good], baseline: 'median' }, 'baseline', 400],
      ['penguins/versions/1', { records: [good], steps: 513 }, 'steps', 400],
      ['penguins/versions/1', { records: [good], steps: 1.5 }, 'steps', 400],
      ['penguins/versions/1', { records: [good], target: 'Dodo' }, 'target', 400],
      ['penguins/versions/1', { records: [good], target: 3 }, 'target', 400],
      ['mpg/versions/1', { records: [cars.records[0]], target: 0 }, 'target', 400],
      ['penguins/versions/1', { records: Array(50).fill(good), steps: 512 }, 'steps', 413],
      ['penguins/versions/9', { records: [good] }, 'version', 404],
      ['bare/versions/1', { instances: [Array(penguins.spec.width).fill(0.5)], target: 3 }, 'target', 400],
    ];
    for (const [path, body, field, status] of cases) {
      const res = await system.request('POST', `/v1/models/${path}/explain`, body);
      assert.equal(res.status, status, `${field}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.issues?.[0]?.field, field, JSON.stringify(res.body));
    }
    const big = await system.request('POST', '/v1/models/penguins/versions/1/explain', {
      records: Array(50).fill(good),
      steps: 512,
    });
    assert.match(big.body.message, /MAX_EXPLAIN_VALUES/);
    const bare = await system.request('POST', '/v1/models/bare/versions/1/explain', {
      instances: [Array(penguins.spec.width).fill(0.5)],
      target: 2,
    });
    assert.equal(bare.status, 200, JSON.stringify(bare.body));
    assert.deepEqual(bare.body.explanations[0].target, { classIndex: 2 });
  });

  it("another tenant's key gets a 404 for the model; a viewer of the owning tenant may explain", async () => {
    const run = Math.random().toString(36).slice(2, 8);
    const key = async (tenant: string, role: string): Promise<string> => {
      const res = await system.request('POST', '/v1/keys', { name: `${tenant}-${role}`, tenant, role });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body.key as string;
    };
    const explain = (k: string) =>
      fetch(`${system.url}/v1/models/penguins/versions/1/explain`, {
        method: 'POST',
        headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json' },
        body: JSON.stringify({ records: [record()] }),
      });
    const other = await explain(await key(`b-${run}`, 'member'));
    assert.equal(other.status, 404, await other.text());
    const viewer = await explain(await key('default', 'viewer'));
    assert.equal(viewer.status, 200, await viewer.text());
  });
});
