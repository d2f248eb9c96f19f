import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalBlobStore, readBlocksFile, writeBlocksFile, type BlobRef } from '@tq/storage';

describe('blocks file', () => {
  let dir: string;
  let blobs: LocalBlobStore;
  const at = (key: string): BlobRef => ({ blobs, key });
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tq-blocks-'));
    blobs = new LocalBlobStore(dir);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('round-trips a header and named blocks, each in its own aligned buffer', async () => {
    const path = at('a/ck.bin');
    await writeBlocksFile(path, 'TQCK', { step: 7 }, { w: new Float32Array([1, 2, 3]), o: new Uint8Array([9]).buffer });
    const file = await readBlocksFile<{ step: number }>(path, 'TQCK');
    assert.deepEqual(file?.header, { step: 7 });
    assert.deepEqual([...new Float32Array(file.blocks.w!)], [1, 2, 3]);
    assert.deepEqual([...new Uint8Array(file.blocks.o!)], [9]);
  });

  it('answers undefined for a missing object and throws for another kind or a truncated one', async () => {
    assert.equal(await readBlocksFile(at('none.bin'), 'TQCK'), undefined);
    const path = at('a/ck.bin');
    await assert.rejects(readBlocksFile(path, 'TQPS'), /not a TQPS object/);
    const bytes = await blobs.get(path.key);
    await blobs.put(path.key, bytes.subarray(0, bytes.length - 2));
    await assert.rejects(readBlocksFile(path, 'TQCK'), /unaccounted/);
  });
});
