import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ArtifactStore, ModelNotFoundError, ModelRegistry, type NewVersionMeta, type VersionWriter } from '@tq/storage';

const meta: NewVersionMeta = {
  inputShape: [4],
  featureCount: 4,
  classes: ['a', 'b'],
  lineage: { kind: 'trained' },
  weightDtype: 'float32',
};

describe('ModelRegistry', () => {
  let root: string;
  let registry: ModelRegistry;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'tq-registry-'));
    registry = new ModelRegistry(new ArtifactStore(root));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('allocates distinct versions to concurrent registrations and records artifact sizes', async () => {
    const write = (bytes: number) => (out: VersionWriter) => out.put('weights.bin', Buffer.alloc(bytes));
    const made = await Promise.all([1, 2, 3, 4, 5].map((n) => registry.register('iris', meta, write(n * 10))));
    assert.deepEqual(made.map((m) => m.version).sort(), [1, 2, 3, 4, 5]);
    const versions = await registry.versions('iris');
    assert.deepEqual(
      versions.map((v) => v.version),
      [1, 2, 3, 4, 5],
    );
    for (const v of versions) {
      const bytes = v.artifacts['weights.bin'];
      assert.ok(bytes !== undefined, `v${v.version} has weights.bin`);
      assert.equal(bytes % 10, 0);
    }
  });

  it('is rebuilt from the folder alone by a fresh instance', async () => {
    const fresh = new ModelRegistry(new ArtifactStore(root));
    assert.deepEqual(await fresh.names(), ['iris']);
    assert.equal(await fresh.latestVersion('iris'), 5);
  });

  it('adds an artifact to an existing version', async () => {
    const updated = await registry.putArtifact({ name: 'iris', version: 2 }, 'model.onnx', new Uint8Array(7));
    assert.equal(updated.artifacts['model.onnx'], 7);
  });

  it('stores a sparse weight file gzipped (its bytes on disk shrink) and reads it back whole; a dense one as it is', async () => {
    const sparse = new Float32Array(50_000).map((_, i) => (i % 10 === 0 ? Math.sin(i) : 0));
    const dense = new Float32Array(50_000).map((_, i) => Math.sin(i * 1.3) * 1e-3);
    const sizes = new Map<number, number>();
    for (const weights of [sparse, dense]) {
      const bytes = new Uint8Array(weights.buffer);
      const made = await registry.register('packed', meta, async (out) => {
        await out.put('model.json', '{}');
        await out.put('weights.bin', bytes);
      });
      assert.equal(made.artifacts['weights.bin'], bytes.length, 'artifacts hold the file size');
      assert.deepEqual(await registry.readArtifact(made, 'weights.bin'), Buffer.from(bytes));
      for await (const entry of registry.store.blobs.list(`${registry.store.modelKey(made)}/`))
        if (entry.key.endsWith('weights.bin')) sizes.set(made.version, entry.size);
      if (weights === sparse) {
        assert.deepEqual(made.storedAs, { 'weights.bin': { encoding: 'gzip', bytes: sizes.get(made.version) } });
        assert.ok(sizes.get(made.version)! * 4 < bytes.length, `stored ${sizes.get(made.version)} of ${bytes.length}`);
      } else {
        assert.equal(made.storedAs, undefined);
        assert.equal(sizes.get(made.version), bytes.length);
      }
    }
    // putArtifact encodes the same way, and a replaced file loses its old encoding.
    const v1 = { name: 'packed', version: 1 };
    const dense1 = await registry.putArtifact(v1, 'weights.bin', new Uint8Array(dense.buffer));
    assert.equal(dense1.storedAs, undefined);
    assert.deepEqual(await registry.readArtifact(v1, 'weights.bin'), Buffer.from(dense.buffer));
  });

  it('lists past a claimed number that was never committed (its writer failed), but not past a corrupt one', async () => {
    const write = async (out: VersionWriter) => out.put('weights.bin', 'w');
    await registry.register('holes', meta, write);
    await assert.rejects(
      registry.register('holes', meta, async (out) => {
        await out.put('weights.bin', 'half');
        throw new Error('the writer died');
      }),
      /the writer died/,
    );
    await registry.register('holes', meta, write);
    assert.deepEqual(
      (await registry.versions('holes')).map((v) => v.version),
      [1, 3],
    );
    assert.equal(await registry.latestVersion('holes'), 3);
    const keys: string[] = [];
    for await (const { key } of registry.store.blobs.list(registry.store.modelsPrefix('holes'))) keys.push(key);
    assert.deepEqual(
      keys.filter((k) => k.startsWith('models/holes/2/')),
      ['models/holes/2/claim.json'],
      "the failed writer's artifacts are removed; its claim keeps the number from reuse",
    );
    await registry.store.blobs.put(registry.store.modelKey({ name: 'holes', version: 3 }, 'metadata.json'), '{"name":');
    await assert.rejects(registry.versions('holes'), /version 3 of "holes" has a corrupt metadata\.json/);
  });

  it('rejects traversal in names and reports missing versions', async () => {
    await assert.rejects(registry.register('../etc', meta, async () => {}));
    await assert.rejects(registry.getVersion({ name: 'iris', version: 99 }), ModelNotFoundError);
    await assert.rejects(
      registry.putArtifact({ name: 'iris', version: 1 }, '../metadata.json', 'x'),
      /bad artifact name/,
    );
    await assert.rejects(registry.putArtifact({ name: 'iris', version: 1 }, 'metadata.json', 'x'), /bad artifact name/);
  });
});
