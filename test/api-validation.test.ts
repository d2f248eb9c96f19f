import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ArtifactStore, ModelRegistry } from '@tq/storage';
import { TestSystem } from './support/system';

const IRIS_MODEL = { name: 'iris', layers: [{ type: 'dense', units: 8, activation: 'relu', inputShape: [4] }, { type: 'dense', units: 3, activation: 'softmax' }] };
const train = (patch: Record<string, unknown> = {}) => ({ model: IRIS_MODEL, dataset: { builtin: 'iris' }, fit: { epochs: 1 }, ...patch });

/** Bad input gets a 4xx that names the field and the reason, and nothing is enqueued. */
describe('API validation (no workers: nothing may reach a queue)', () => {
  let system: TestSystem;
  before(async () => {
    system = await TestSystem.start({ workers: 0, env: { MAX_UPLOAD_BYTES: '2048' } });
    // A registered 4-feature model, written straight into the artifact folder.
    await new ModelRegistry(new ArtifactStore(system.artifactDir)).register('iris', {
      inputShape: [4], featureCount: 4, classes: ['a', 'b', 'c'], lineage: { kind: 'trained' }, weightDtype: 'float32',
    }, async () => {});
  });
  after(() => system.stop());

  const expectIssue = async (path: string, body: unknown, status: number, field: string, reason: RegExp) => {
    const res = await system.request('POST', path, body);
    assert.equal(res.status, status, JSON.stringify(res.body));
    const issue = res.body.issues?.find((i: { field: string }) => i.field === field);
    assert.ok(issue, `no issue for ${field} in ${JSON.stringify(res.body)}`);
    assert.match(issue.reason, reason);
  };

  it('rejects an unknown layer type', () =>
    expectIssue('/v1/jobs/train', train({ model: { name: 'x', layers: [{ type: 'lstm', units: 3, inputShape: [4] }] } }), 400, 'model.layers.0.type', /dense|expected|Invalid/i));
  it('rejects negative epochs', () => expectIssue('/v1/jobs/train', train({ fit: { epochs: -1 } }), 400, 'fit.epochs', />=1|too small/i));
  it('rejects an unsafe model name', () => expectIssue('/v1/jobs/train', train({ model: { ...IRIS_MODEL, name: '../etc' } }), 400, 'model.name', /a-z/));
  it('rejects an unknown dataset with 404', () => expectIssue('/v1/jobs/train', train({ dataset: { id: '00000000-0000-4000-8000-000000000000' } }), 404, 'dataset.id', /does not exist/));
  it('rejects a first layer that does not match the dataset', () =>
    expectIssue('/v1/jobs/train', train({ model: { name: 'x', layers: [{ type: 'dense', units: 3, activation: 'softmax', inputShape: [5] }] } }), 400, 'model.layers.0.inputShape', /4 features/));
  it('rejects an unknown model with 404', () => expectIssue('/v1/jobs/infer', { model: { name: 'nope', version: 1 }, input: { instances: [[1, 2, 3, 4]] } }, 404, 'model', /does not exist/));
  it('rejects rows with the wrong feature count', () => expectIssue('/v1/jobs/infer', { model: { name: 'iris', version: 1 }, input: { instances: [[1, 2, 3, 4], [1, 2, 3]] } }, 400, 'input.instances.1', /takes 4 features/));
  it('rejects non-numeric cells in instances', () => expectIssue('/v1/jobs/infer', { model: { name: 'iris', version: 1 }, input: { instances: [[1, 2, 'x', 4]] } }, 400, 'input.instances.0.2', /number/));
  it('rejects a compress request without a compression', () => expectIssue('/v1/jobs/compress', { source: { name: 'iris', version: 1 } }, 400, 'quantize', /at least one/));
  it('rejects unknown fields', async () => {
    const res = await system.request('POST', '/v1/jobs/train', { ...train(), epochs: 3 });
    assert.equal(res.status, 400);
    assert.match(res.body.message, /epochs/);
  });

  const upload = async (name: string, content: string, fields: Record<string, string>) => {
    const form = new FormData();
    form.append('file', new Blob([content]), name);
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    const res = await fetch(`${system.url}/v1/datasets`, { method: 'POST', body: form });
    return { status: res.status, body: (await res.json()) as { issues?: { field: string; reason: string }[]; message: string; id?: string } };
  };

  it('accepts a CSV upload and lists it', async () => {
    const res = await upload('t.csv', 'a,b,label\n1,2,cat\n3,4,dog\n', { labelColumn: 'label' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const got = await system.request('GET', `/v1/datasets/${res.body.id}`);
    assert.deepEqual([got.body.rows, got.body.classes, got.body.featureColumns], [2, ['cat', 'dog'], ['a', 'b']]);
  });
  it('rejects a CSV with a non-numeric cell, naming row and column', async () => {
    const res = await upload('t.csv', 'a,b,label\n1,2,cat\n3,oops,dog\n', { labelColumn: 'label' });
    assert.equal(res.status, 400);
    assert.equal(res.body.issues?.[0]?.field, 'row 2, column "b"');
    assert.match(res.body.issues?.[0]?.reason ?? '', /oops/);
  });
  it('rejects an unknown label column', async () => {
    const res = await upload('t.csv', 'a,b,label\n1,2,cat\n', { labelColumn: 'species' });
    assert.equal(res.status, 400);
    assert.match(JSON.stringify(res.body), /species/);
  });
  it('rejects an upload over the configured limit with 413', async () => {
    const res = await upload('big.csv', `a,label\n${'1,x\n'.repeat(1000)}`, { labelColumn: 'label' });
    assert.equal(res.status, 413);
    assert.match(res.body.message, /file/);
  });
  it('answers 404 for an unknown job and nothing was enqueued by the rejected requests', async () => {
    assert.equal((await system.request('GET', '/v1/jobs/train-00000000-0000-4000-8000-000000000000')).status, 404);
    const listed = await system.request('GET', '/v1/jobs');
    assert.deepEqual(listed.body.items, []);
  });
  it('returns the same job for a repeated Idempotency-Key', async () => {
    const post = () => fetch(`${system.url}/v1/jobs/train`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'abc-1' }, body: JSON.stringify(train()) }).then((r) => r.json() as Promise<{ id: string; state: string }>);
    const [first, second] = [await post(), await post()];
    assert.equal(second.id, first.id);
    assert.equal(second.state, 'waiting');
    assert.equal((await system.request('GET', '/v1/jobs?type=train')).body.items.length, 1);
    await system.request('DELETE', `/v1/jobs/${first.id}`);
  });
  it('serves an OpenAPI document whose request bodies come from the contracts', async () => {
    const doc = (await system.request('GET', '/docs-json')).body;
    const body = doc.paths['/v1/jobs/train'].post.requestBody.content['application/json'].schema;
    assert.deepEqual(body.required.sort(), ['dataset', 'model']);
    assert.ok(body.properties.fit.properties.epochs, 'fit.epochs is documented');
    assert.ok(doc.paths['/v1/models/{name}/versions/{version}/predict'] && doc.paths['/v1/datasets']);
  });
  it('rejects a bad list query', () => system.request('GET', '/v1/jobs?state=sleeping').then((res) => assert.equal(res.status, 400)));
});
