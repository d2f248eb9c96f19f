import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { NotFoundError } from '@tq/contracts';
import {
  ArtifactNotFoundError,
  ArtifactStore,
  DatasetNotFoundError,
  DatasetStore,
  METADATA_JSON,
  ModelNotFoundError,
  ModelRegistry,
} from '@tq/storage';

const META = {
  inputShape: [4],
  featureCount: 4,
  classes: [],
  lineage: { kind: 'trained' as const },
  weightDtype: 'float32',
};
const DATASET = '33333333-3333-4333-8333-333333333333';

/** Only a missing thing is a NotFoundError (the API's 404); a corrupt or unreadable one is a fault. */
describe('storage: missing vs broken', () => {
  let root: string;
  let store: ArtifactStore;
  let registry: ModelRegistry;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'tq-notfound-'));
    store = new ArtifactStore(root);
    registry = new ModelRegistry(store);
    await registry.register('ok', META, (out) => out.put('model.json', '{"a":1}'));
    await registry.register('corrupt', META, async () => {});
    await store.blobs.put(store.modelKey({ name: 'corrupt', version: 1 }, METADATA_JSON), '{ not json');
    await store.blobs.put(store.datasetKey(DATASET, 'info.json'), '{ not json');
  });
  after(() => rm(root, { recursive: true, force: true }));

  it("models: missing is ModelNotFoundError with the caller's field; corrupt names the version", async () => {
    await assert.rejects(
      registry.getVersion({ name: 'ok', version: 2 }),
      (err) => err instanceof ModelNotFoundError && err.field === 'model',
    );
    assert.equal(new ModelNotFoundError({ name: 'ok', version: 2 }, 'source').field, 'source');
    const corrupt = (err: unknown) =>
      err instanceof Error &&
      !(err instanceof NotFoundError) &&
      /version 1 of "corrupt" has a corrupt metadata\.json/.test(err.message) &&
      err.cause instanceof SyntaxError;
    await assert.rejects(registry.getVersion({ name: 'corrupt', version: 1 }), corrupt);
    assert.equal(await registry.exists({ name: 'ok', version: 2 }), false);
    await assert.rejects(registry.exists({ name: 'corrupt', version: 1 }), corrupt);
  });

  it('artifacts: only own, listed names open; others are ArtifactNotFoundError naming "file"', async () => {
    const opened = await registry.serveArtifact({ name: 'ok', version: 1 }, 'model.json');
    assert.equal(opened.kind, 'stream');
    if (opened.kind !== 'stream') return;
    assert.deepEqual([opened.size, await text(opened.stream)], [7, '{"a":1}']);
    for (const file of ['constructor', '__proto__', 'toString', METADATA_JSON, 'weights.bin']) {
      await assert.rejects(
        registry.serveArtifact({ name: 'ok', version: 1 }, file),
        (err) => err instanceof ArtifactNotFoundError && err.field === 'file',
        file,
      );
    }
  });

  it('an artifact deleted from under its version is ArtifactNotFoundError naming it, not a fault', async () => {
    await registry.register('gone', META, (out) => out.put('weights.bin', 'w'));
    const meta = await registry.getVersion({ name: 'gone', version: 1 });
    await store.blobs.delete(store.modelKey(meta, meta.artifactSet!, 'weights.bin'));
    for (const read of [registry.serveArtifact.bind(registry), registry.readArtifact.bind(registry)])
      await assert.rejects(
        read({ name: 'gone', version: 1 }, 'weights.bin'),
        (err) =>
          err instanceof ArtifactNotFoundError &&
          /version 1 of "gone" has no artifact "weights\.bin"/.test(err.message),
      );
  });

  it('outputs: a missing one is a NotFoundError naming "id"', async () => {
    await assert.rejects(store.serveOutput('infer-none'), (err) => err instanceof NotFoundError && err.field === 'id');
  });

  it('datasets: missing is DatasetNotFoundError; a corrupt info.json is an error naming the dataset', async () => {
    const datasets = new DatasetStore(store);
    await assert.rejects(
      datasets.get('44444444-4444-4444-8444-444444444444'),
      (err) => err instanceof DatasetNotFoundError,
    );
    await assert.rejects(
      datasets.get(DATASET),
      (err) =>
        err instanceof Error &&
        !(err instanceof NotFoundError) &&
        err.message === `dataset "${DATASET}" has a corrupt info.json` &&
        err.cause instanceof SyntaxError,
    );
  });
});
