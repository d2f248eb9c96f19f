import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { BlobStoreConfigError, blobStoreFromConfig, type S3BlobStore } from '@tq/storage';
import { freePort } from '../../../tools/free-port';
import { blobStoreContract } from './blob-store.contract';
import { S3TestServer } from './s3-test-server';

blobStoreContract('S3 (s3rver on loopback)', async () => {
  const server = await S3TestServer.start();
  return {
    store: server.store({ prefix: 'tq/' }),
    bytesStored: () => server.bytesReceived(),
    misconfigured: () => ({ store: server.store({ bucket: 'no-such-bucket' }), setting: 'S3_BUCKET' }),
    listRequests: () => server.listRequests(),
    close: () => server.stop(),
  };
});

/** What only S3 has: its start-up check, presigned URLs, key prefixes, the config factory. */
describe('S3 blob store: start-up check, redirects, prefix', () => {
  let server: S3TestServer;
  let store: S3BlobStore;
  before(async () => {
    server = await S3TestServer.start();
    store = server.store({ prefix: 'fleet/a' });
  });
  after(async () => {
    store.close();
    await server.stop();
  });

  it('an endpoint that ignores If-None-Match is refused by check(), naming S3_ENDPOINT', async () => {
    await store.check();
    await server.setConditionalWrites(false);
    try {
      await assert.rejects(
        store.check(),
        (err) =>
          err instanceof BlobStoreConfigError && err.setting === 'S3_ENDPOINT' && /If-None-Match/.test(err.message),
      );
    } finally {
      await server.setConditionalWrites(true);
    }
  });

  it('an endpoint nobody answers at fails the check naming S3_ENDPOINT', async () => {
    const nobody = server.store({ endpoint: `http://127.0.0.1:${await freePort()}` });
    try {
      await assert.rejects(
        nobody.check(),
        (err) => err instanceof BlobStoreConfigError && err.setting === 'S3_ENDPOINT',
      );
    } finally {
      nobody.close();
    }
  });

  it('unknown credentials fail the check naming the bucket setting and the key settings', async () => {
    // s3rver checks the access key id (it does not verify SigV4 signatures): an unknown one is a 403.
    const denied = server.store({ credentials: { accessKeyId: 'NOBODY', secretAccessKey: 'wrong' } });
    try {
      await assert.rejects(
        denied.check(),
        (err) =>
          err instanceof BlobStoreConfigError &&
          err.setting === 'S3_BUCKET' &&
          /S3_SECRET_ACCESS_KEY/.test(err.message),
      );
    } finally {
      denied.close();
    }
  });

  it('serve with redirectSeconds gives a presigned URL that fetches the object', async () => {
    await store.put('outputs/job-1.jsonl', '{"y":1}\n');
    const served = await store.serve('outputs/job-1.jsonl', { redirectSeconds: 60 });
    assert.equal(served.kind, 'redirect');
    if (served.kind !== 'redirect') return;
    assert.equal(served.head.size, 8);
    assert.equal(served.head.contentType, 'application/x-ndjson');
    const res = await fetch(served.url);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '{"y":1}\n');
  });

  it('an object put with contentEncoding gzip keeps it: a presigned download is decoded by the client', async () => {
    const file = Buffer.from('weights '.repeat(1000));
    await store.put('models/m/1/weights.bin', gzipSync(file), { contentEncoding: 'gzip' });
    const served = await store.serve('models/m/1/weights.bin', { redirectSeconds: 60 });
    assert.equal(served.kind, 'redirect');
    if (served.kind !== 'redirect') return;
    const res = await fetch(served.url);
    assert.equal(res.headers.get('content-encoding'), 'gzip');
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), file);
  });

  it('keys live under S3_PREFIX, and a store with another prefix does not see them', async () => {
    await store.put('models/m/1/model.onnx', 'onnx');
    const other = server.store({ prefix: 'fleet/b' });
    const bare = server.store();
    try {
      assert.equal(await other.head('models/m/1/model.onnx'), undefined);
      assert.equal((await bare.get('fleet/a/models/m/1/model.onnx')).toString(), 'onnx');
    } finally {
      other.close();
      bare.close();
    }
  });

  it('blobStoreFromConfig: s3 needs S3_BUCKET, and both keys or neither', () => {
    const base = {
      BLOB_STORE: 's3' as const,
      ARTIFACT_DIR: '.data',
      S3_PREFIX: '',
      S3_REGION: 'us-east-1',
      S3_FORCE_PATH_STYLE: true,
    };
    assert.throws(
      () => blobStoreFromConfig(base),
      (err) => err instanceof BlobStoreConfigError && err.setting === 'S3_BUCKET',
    );
    assert.throws(
      () => blobStoreFromConfig({ ...base, S3_BUCKET: 'b', S3_ACCESS_KEY_ID: 'k' }),
      (err) => err instanceof BlobStoreConfigError && err.setting === 'S3_SECRET_ACCESS_KEY',
    );
    assert.throws(
      () => blobStoreFromConfig({ ...base, S3_BUCKET: 'b', S3_PREFIX: '../up' }),
      (err) => err instanceof BlobStoreConfigError && err.setting === 'S3_PREFIX',
    );
    const made = blobStoreFromConfig({ ...base, S3_BUCKET: 'b', S3_ENDPOINT: server.endpoint });
    assert.equal(made.kind, 's3');
    made.close();
  });
});
