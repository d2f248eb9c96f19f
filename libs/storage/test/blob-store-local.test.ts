import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { link, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BlobKeyError, BlobNotFoundError, BlobUnsafeFileError, LocalBlobStore, blobStoreFromConfig } from '@tq/storage';
import { blobStoreContract } from './blob-store.contract';

blobStoreContract('local folder', async () => {
  const root = await mkdtemp(join(tmpdir(), 'tq-blob-local-'));
  const notADir = join(root, '..', `${root.split('/').pop()}.file`);
  await writeFile(notADir, 'x');
  return {
    store: new LocalBlobStore(join(root, 'store')),
    bytesStored: () => folderBytes(join(root, 'store')),
    misconfigured: () => ({ store: new LocalBlobStore(join(notADir, 'below')), setting: 'ARTIFACT_DIR' }),
    close: async () => {
      await rm(root, { recursive: true, force: true });
      await rm(notADir, { force: true });
    },
  };
});

/** What only a folder can get wrong: links planted in the tree, leftovers of a crash. */
describe('local blob store: symlinks and temp files', () => {
  let root: string;
  let outside: string;
  let store: LocalBlobStore;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'tq-blob-links-'));
    outside = await mkdtemp(join(tmpdir(), 'tq-blob-outside-'));
    await writeFile(join(outside, 'secret.json'), '{"secret":true}');
    store = new LocalBlobStore(root);
    await store.check();
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('a symlinked folder or file inside the root is refused, for reads, writes and lists', async () => {
    await symlink(outside, join(root, 'escape'));
    await mkdir(join(root, 'models'), { recursive: true });
    await symlink(join(outside, 'secret.json'), join(root, 'models', 'link.json'));
    // Reads: no object (a 404 at the API, as for a missing one), whatever the link points at.
    await assert.rejects(store.get('escape/secret.json'), BlobUnsafeFileError);
    await assert.rejects(store.stream('escape/secret.json'), BlobUnsafeFileError);
    await assert.rejects(store.get('models/link.json'), BlobUnsafeFileError);
    await assert.rejects(store.serve('models/link.json'), BlobNotFoundError);
    assert.equal(await store.head('escape/secret.json'), undefined);
    assert.equal(await store.head('models/link.json'), undefined);
    // Writes through a linked folder: refused, nothing written outside.
    await assert.rejects(store.put('escape/new.json', '{}'), BlobKeyError);
    await assert.rejects(store.put('escape/deeper/new.json', '{}'), BlobKeyError);
    assert.deepEqual(await drain(store.list('escape/')), [], 'a linked prefix lists nothing');
    assert.deepEqual(await drain(store.list('')), [], 'links are not listed');
    assert.deepEqual(await readdir(outside), ['secret.json'], 'nothing was written outside');
    await rm(join(root, 'escape'));
    await rm(join(root, 'models'), { recursive: true });
  });

  it('a symlinked folder pointing inside the root is not followed either', async () => {
    await store.put('models/real/1/model.json', '{"real":true}');
    await symlink(join(root, 'models', 'real'), join(root, 'models', 'alias'));
    await assert.rejects(store.get('models/alias/1/model.json'), BlobUnsafeFileError);
    assert.equal(await store.head('models/alias/1/model.json'), undefined);
    assert.deepEqual(await drain(store.list('models/')), ['models/real/1/model.json']);
    assert.equal((await store.get('models/real/1/model.json')).toString(), '{"real":true}');
    await rm(join(root, 'models'), { recursive: true });
  });

  it('a hard-linked file (to a file outside, or another object) is not read nor listed', async () => {
    await mkdir(join(root, 'models', 'm', '1'), { recursive: true });
    await link(join(outside, 'secret.json'), join(root, 'models', 'm', '1', 'model.json'));
    await store.put('models/m/1/weights.bin', 'w');
    await link(join(root, 'models', 'm', '1', 'weights.bin'), join(root, 'models', 'm', '1', 'model.onnx'));
    await assert.rejects(store.get('models/m/1/model.json'), BlobUnsafeFileError);
    await assert.rejects(store.stream('models/m/1/model.json'), BlobUnsafeFileError);
    await assert.rejects(store.get('models/m/1/weights.bin'), BlobUnsafeFileError, 'both names of a linked pair');
    assert.equal(await store.head('models/m/1/model.json'), undefined);
    assert.deepEqual(await drain(store.list('models/')), []);
    // Replacing the name (a put renames over it) makes it an object of the store again.
    await store.put('models/m/1/model.json', '{}');
    assert.equal((await store.get('models/m/1/model.json')).toString(), '{}');
    await rm(join(root, 'models'), { recursive: true });
  });

  it("a create's own link (put with ifNoneMatch) is readable: the file is never left with two links", async () => {
    await store.put('markers/a.json', '{"a":1}', { ifNoneMatch: '*' });
    assert.equal((await stat(join(root, 'markers', 'a.json'))).nlink, 1);
    assert.equal((await store.get('markers/a.json')).toString(), '{"a":1}');
    // The instant between the create's link and the removal of its temp name: still readable.
    const tmp = join(root, 'markers', `.${randomUUID()}.tmp`);
    await link(join(root, 'markers', 'a.json'), tmp);
    assert.equal((await store.get('markers/a.json')).toString(), '{"a":1}');
    assert.equal((await store.head('markers/a.json'))?.size, 7);
    // Any other second name is a hard link: refused.
    await rm(tmp);
    await link(join(root, 'markers', 'a.json'), join(root, 'markers', 'copy'));
    await assert.rejects(store.get('markers/a.json'), BlobUnsafeFileError);
    await rm(join(root, 'markers'), { recursive: true });
  });

  it('a put leaves no temp file, and temp files (a crash) are never listed', async () => {
    await store.put('t/a.bin', 'a');
    await writeFile(join(root, 't', '.0000.tmp'), 'half');
    const listed = [];
    for await (const e of store.list('t/')) listed.push(e.key);
    assert.deepEqual(listed, ['t/a.bin']);
    assert.deepEqual((await readdir(join(root, 't'))).sort(), ['.0000.tmp', 'a.bin']);
  });

  it('a store whose folder does not exist yet reads nothing and creates it on the first put', async () => {
    const fresh = new LocalBlobStore(join(root, 'fresh', 'root'));
    await assert.rejects(fresh.get('a/b.json'), BlobNotFoundError);
    assert.equal(await fresh.head('a/b.json'), undefined);
    await fresh.delete('a/b.json');
    await fresh.put('a/b.json', '{}');
    assert.equal((await fresh.get('a/b.json')).toString(), '{}');
  });

  it('blobStoreFromConfig: local is ARTIFACT_DIR, so keys are the folder layout the files already have', async () => {
    const fromConfig = blobStoreFromConfig({
      BLOB_STORE: 'local',
      ARTIFACT_DIR: root,
      S3_PREFIX: '',
      S3_REGION: 'us-east-1',
      S3_FORCE_PATH_STYLE: false,
    });
    await fromConfig.put('models/iris/1/metadata.json', '{}');
    assert.equal((await stat(join(root, 'models', 'iris', '1', 'metadata.json'))).size, 2);
  });
});

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch {
    return 0;
  }
  for (const e of entries)
    if (e.isFile())
      total += await stat(join(e.parentPath, e.name)).then(
        (s) => s.size,
        () => 0,
      );
  return total;
}

async function drain(entries: AsyncIterable<{ key: string }>): Promise<string[]> {
  const keys = [];
  for await (const e of entries) keys.push(e.key);
  return keys;
}
