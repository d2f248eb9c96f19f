import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ArtifactStore, ModelNotFoundError, ModelRegistry, isVersionTaken, type NewVersionMeta } from '@tq/storage';

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
    const write = (bytes: number) => (dir: string) => writeFile(join(dir, 'weights.bin'), Buffer.alloc(bytes));
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

  it('lists past a version folder with no metadata, but not past a corrupt one', async () => {
    const write = async (dir: string) => writeFile(join(dir, 'weights.bin'), 'w');
    await registry.register('holes', meta, write);
    await registry.register('holes', meta, write);
    await mkdir(join(registry.store.modelNameDir('holes'), '3'));
    assert.deepEqual(
      (await registry.versions('holes')).map((v) => v.version),
      [1, 2],
    );
    await writeFile(join(registry.store.modelDir({ name: 'holes', version: 2 }), 'metadata.json'), '{"name":');
    await assert.rejects(registry.versions('holes'), /version 2 of "holes" has a corrupt metadata\.json/);
  });

  it('takes only "target exists" from rename as a taken version, never a permission error', () => {
    const fault = (code: string) => Object.assign(new Error(code), { code });
    assert.equal(isVersionTaken(fault('ENOTEMPTY')), true);
    assert.equal(isVersionTaken(fault('EEXIST')), true);
    assert.equal(isVersionTaken(fault('EPERM')), false);
    assert.equal(isVersionTaken(fault('EACCES')), false);
  });

  it('rejects traversal in names and reports missing versions', async () => {
    await assert.rejects(registry.register('../etc', meta, async () => {}));
    await assert.rejects(registry.getVersion({ name: 'iris', version: 99 }), ModelNotFoundError);
    assert.throws(() => registry.artifactPath({ name: 'iris', version: 1 }, '../metadata.json'));
  });
});
