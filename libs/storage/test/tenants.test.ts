import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  adoptUntenanted,
  ArtifactStore,
  DatasetNotFoundError,
  DatasetStore,
  JobFiles,
  JobInputStore,
  ModelNotFoundError,
  ModelRegistry,
  createOnceSecret,
  tenantPrefix,
  type NewVersionMeta,
} from '@tq/storage';

const meta: NewVersionMeta = {
  inputShape: [4],
  featureCount: 4,
  classes: ['a', 'b'],
  lineage: { kind: 'trained' },
  weightDtype: 'float32',
};

/** Checkpoint keys "train-<jobId>" belong to their job (the worker's naming, simplified). */
const naming = {
  keysOf: (jobId: string) => [`train-${jobId}`],
  jobOf: (key: string) => (key.startsWith('train-') ? key.slice('train-'.length) : undefined),
};

/** Tenant views of the store (issue 11): keys under tenants/<tenant>/, names and ids per tenant. */
describe('tenant views of the store', () => {
  let root: string;
  let store: ArtifactStore;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'tq-tenants-'));
    store = new ArtifactStore(root);
  });
  after(() => rm(root, { recursive: true, force: true }));

  const keys = async (prefix = ''): Promise<string[]> => {
    const out: string[] = [];
    for await (const { key } of store.blobs.list(prefix)) out.push(key);
    return out.sort();
  };

  it('builds every key of a tenant under tenants/<tenant>/, and refuses a tenant that is no name', () => {
    const a = store.forTenant('a');
    assert.equal(tenantPrefix('a'), 'tenants/a/');
    assert.equal(a.modelKey({ name: 'm', version: 2 }, 'model.json'), 'tenants/a/models/m/2/model.json');
    assert.equal(a.datasetKey('d1', 'source'), 'tenants/a/datasets/d1/source');
    assert.equal(a.outputKey('infer-1'), 'tenants/a/outputs/infer-1.jsonl');
    assert.equal(a.outputPartKey('infer-1', 'part-0.jsonl'), 'tenants/a/outputs/infer-1/part-0.jsonl');
    assert.equal(a.inputKey('infer-1'), 'tenants/a/inputs/infer-1.f32');
    assert.equal(a.checkpointKey('train-1', 'w.bin'), 'tenants/a/checkpoints/train-1/w.bin');
    assert.equal(a.forTenant('b').modelsPrefix(), 'tenants/b/models/', "a view's view is the other tenant's");
    assert.equal(store.modelKey({ name: 'm', version: 1 }), 'models/m/1', 'the root view is unprefixed');
    for (const bad of ['', '..', 'A', 'a/b', '-a', 'a'.repeat(65)]) assert.throws(() => store.forTenant(bad));
  });

  it('gives the same prefixes past the kept ones, and refuses a bad tenant every time it is named', () => {
    // More tenants than the kept prefixes (4,096): the map is cleared and refilled, never wrong.
    for (let i = 0; i < 5000; i++) assert.equal(tenantPrefix(`t${i}`), `tenants/t${i}/`);
    for (const bad of ['..', 'A', 'a/b'])
      for (let i = 0; i < 2; i++) assert.throws(() => tenantPrefix(bad), /must be 1-64 chars/, `${bad}, call ${i + 1}`);
    assert.equal(tenantPrefix('t0'), 'tenants/t0/');
  });

  it("keeps two tenants' models of one name apart: numbers, versions, artifacts, listings", async () => {
    const a = new ModelRegistry(store).forTenant('a');
    const b = new ModelRegistry(store).forTenant('b');
    await a.register('digits', meta, (out) => out.put('weights.bin', Buffer.from('aaaa')));
    await a.register('digits', meta, (out) => out.put('weights.bin', Buffer.from('aaaa')));
    const fromB = await b.register('digits', meta, (out) => out.put('weights.bin', Buffer.from('bb')));
    assert.equal(fromB.version, 1, "B's first version, whatever A has");
    assert.deepEqual(
      (await a.versions('digits')).map((v) => v.version),
      [1, 2],
    );
    assert.deepEqual(
      (await b.versions('digits')).map((v) => v.version),
      [1],
    );
    assert.equal((await b.readArtifact({ name: 'digits', version: 1 }, 'weights.bin')).toString(), 'bb');
    await assert.rejects(b.getVersion({ name: 'digits', version: 2 }), ModelNotFoundError);
    await b.register('only-b', meta, (out) => out.put('weights.bin', Buffer.from('b')));
    assert.deepEqual(await a.names(), ['digits']);
    assert.deepEqual(await b.names(), ['digits', 'only-b']);
    assert.deepEqual(await new ModelRegistry(store).names(), [], 'nothing at the root');
    assert.ok((await keys()).every((k) => k.startsWith('tenants/a/') || k.startsWith('tenants/b/')));
    assert.deepEqual(await store.tenants(), ['a', 'b']);
  });

  it("answers another tenant's dataset id as a missing one, and lists only the tenant's", async () => {
    const a = new DatasetStore(store).forTenant('a');
    const b = new DatasetStore(store).forTenant('b');
    const info = await a.create({ name: 't.csv', format: 'csv' }, Readable.from(['x,y\n1,2\n']), 1 << 20);
    assert.equal((await a.get(info.id)).id, info.id);
    await assert.rejects(b.get(info.id), DatasetNotFoundError);
    await assert.rejects(b.openSource(info.id), DatasetNotFoundError);
    assert.deepEqual(
      (await a.list()).map((d) => d.id),
      [info.id],
    );
    assert.deepEqual(await b.list(), []);
    assert.ok((await keys(`tenants/a/datasets/${info.id}/`)).includes(`tenants/a/datasets/${info.id}/info.json`));
  });

  it('keeps secrets outside tenants, whatever view makes them', async () => {
    await createOnceSecret(store.forTenant('a'), 'tenant-test-key');
    assert.deepEqual(await keys('secrets/'), ['secrets/tenant-test-key']);
  });

  it("finds, sizes and removes a job's objects in whichever tenant holds them", async () => {
    const a = store.forTenant('a');
    const b = store.forTenant('b');
    await new JobInputStore(store).forTenant('a').save('infer-x', [[1, 2, 3, 4]]);
    await a.blobs.put(a.outputKey('infer-x'), 'line\n');
    await b.blobs.put(b.checkpointKey('train-train-y', 'w.bin'), Buffer.alloc(10));
    await store.blobs.put(store.outputKey('infer-old'), 'from before tenants\n');
    const files = new JobFiles(store, naming);
    const listed = [];
    for await (const f of files.list()) listed.push(`${f.kind}:${f.jobId}`);
    assert.deepEqual(listed.sort(), ['checkpoint:train-y', 'input:infer-x', 'output:infer-old', 'output:infer-x']);
    assert.equal(await files.bytes('infer-x'), 16 + 5);
    assert.equal(await files.bytes('train-y'), 10);
    await files.remove('infer-x');
    await files.remove('train-y');
    assert.equal(await files.bytes('infer-x'), 0);
    assert.deepEqual(await keys('tenants/b/checkpoints/'), []);
    assert.deepEqual(await keys('tenants/a/inputs/'), []);
  });

  it("finds a tenant's job objects written after an earlier look found no such tenant", async () => {
    const files = new JobFiles(store, naming);
    assert.equal(await files.bytes('infer-late'), 0);
    const late = store.forTenant('late');
    await late.blobs.put(late.outputKey('infer-late'), 'line\n');
    await late.blobs.put(late.outputKey('infer-told'), 'line\n');
    assert.equal(await files.bytes('infer-late'), 5);
    await files.remove('infer-late');
    // Told the tenant, it looks there (and at the root) without listing the store.
    assert.equal(await files.bytes('infer-told', 'late'), 5);
    await files.remove('infer-told', 'late');
    assert.deepEqual(await keys('tenants/late/outputs/'), []);
  });

  it('adopts a store from before tenants into one tenant: models, datasets, outputs; conflicts stay', async () => {
    const old = await mkdtemp(join(tmpdir(), 'tq-untenanted-'));
    try {
      const rootView = new ArtifactStore(old);
      // What the system wrote before tenants: everything at the root.
      const registered = await new ModelRegistry(rootView).register('legacy', meta, (out) =>
        out.put('weights.bin', Buffer.from('wwww')),
      );
      await rootView.blobs.put(rootView.outputKey('infer-old'), 'row\n');
      await rootView.blobs.put(rootView.outputKey('infer-clash'), 'old\n');
      await rootView.blobs.put(rootView.forTenant('default').outputKey('infer-clash'), 'new\n');
      await createOnceSecret(rootView, 'kept-at-root');
      const before = [];
      for await (const { key } of rootView.blobs.list('models/')) before.push(key);

      const dry = await adoptUntenanted(rootView, { dryRun: true });
      assert.equal(dry.moved, before.length + 2);
      assert.equal((await new ModelRegistry(rootView).forTenant('default').versions('legacy')).length, 0);

      const order: string[] = [];
      const report = await adoptUntenanted(rootView, { onObject: (key, outcome) => order.push(`${outcome} ${key}`) });
      assert.equal(report.moved, before.length + 1);
      assert.deepEqual(report.conflicts, ['outputs/infer-clash.jsonl']);
      // The version's metadata (its commit) went after its files.
      assert.match(order.filter((o) => o.includes('models/')).at(-1)!, /metadata\.json$/);
      const adopted = await new ModelRegistry(rootView).forTenant('default').versions('legacy');
      assert.deepEqual(
        adopted.map((v) => v.version),
        [registered.version],
      );
      const tenantView = rootView.forTenant('default');
      assert.equal((await tenantView.blobs.get(tenantView.outputKey('infer-old'))).toString(), 'row\n');
      assert.equal((await tenantView.blobs.get(tenantView.outputKey('infer-clash'))).toString(), 'new\n');
      assert.equal((await rootView.blobs.get(rootView.outputKey('infer-clash'))).toString(), 'old\n', 'left');
      const left = [];
      for await (const { key } of rootView.blobs.list('')) if (!key.startsWith('tenants/')) left.push(key);
      assert.deepEqual(left.sort(), ['outputs/infer-clash.jsonl', 'secrets/kept-at-root']);
      // Again: nothing more to move.
      assert.equal((await adoptUntenanted(rootView)).moved, 0);
    } finally {
      await rm(old, { recursive: true, force: true });
    }
  });
});
