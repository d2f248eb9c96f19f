import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ArtifactStore, createOnceSecret } from '@tq/storage';

describe('createOnceSecret', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'tq-secret-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('makes a key once: racing callers and later stores on the same folder get the same one', async () => {
    const racing = await Promise.all(
      Array.from({ length: 8 }, () => createOnceSecret(new ArtifactStore(root), 'job-id-key')),
    );
    assert.equal(racing[0]?.length, 32);
    for (const key of racing) assert.ok(key.equals(racing[0]));
    assert.ok((await createOnceSecret(new ArtifactStore(root), 'job-id-key')).equals(racing[0]));
    assert.ok(!(await createOnceSecret(new ArtifactStore(root), 'other')).equals(racing[0]));
    assert.deepEqual((await readdir(join(root, 'secrets'))).sort(), ['job-id-key', 'other'], 'no temporary file left');
    assert.equal((await stat(join(root, 'secrets', 'job-id-key'))).mode & 0o777, 0o600);
  });

  it('refuses a name that is not a plain segment', async () => {
    await assert.rejects(createOnceSecret(new ArtifactStore(root), '../escape'), /secret names/);
  });
});
