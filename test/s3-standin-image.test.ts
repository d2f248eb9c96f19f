import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { BlobExistsError, S3BlobStore } from '@tq/storage';
import { ensureDockerEngine } from '../tools/docker/engine';
import { ensureTestImages } from '../tools/docker/images';
import { ensureS3StandinImage } from '../tools/docker/s3-image';
import { freePort } from '../tools/free-port';
import { waitForHttp } from '../tools/processes';

/**
 * The S3 stand-in image (tq-test-s3:local) that a compose `minio` service will use in the tests:
 * run as such a service would be, on the host network at a free port, it answers the S3 protocol
 * and refuses a second If-None-Match write, which S3BlobStore.check() requires of a real endpoint.
 */
describe('tq-test-s3:local, the S3 stand-in image', () => {
  let container = '';
  let endpoint = '';
  before(async () => {
    await ensureDockerEngine();
    const image = ensureS3StandinImage(ensureTestImages().node);
    const port = await freePort();
    const run = spawnSync(
      'docker',
      ['run', '-d', '--rm', '--network', 'host', '-e', `S3_PORT=${port}`, '-e', 'S3_BUCKET=tq-compose', image],
      { encoding: 'utf8' },
    );
    assert.equal(run.status, 0, run.stderr);
    container = run.stdout.trim();
    endpoint = `http://127.0.0.1:${port}`;
    await waitForHttp(`${endpoint}/`);
  });
  after(() => {
    if (container) spawnSync('docker', ['rm', '-f', container], { stdio: 'ignore' });
  });

  test('S3BlobStore accepts it (conditional writes honoured) and round-trips a blob', async () => {
    const store = new S3BlobStore({
      bucket: 'tq-compose',
      endpoint,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    await store.check();
    await store.put('models/a/1/model.json', '{"ok":true}', { ifNoneMatch: '*' });
    assert.equal((await store.get('models/a/1/model.json')).toString(), '{"ok":true}');
    await assert.rejects(store.put('models/a/1/model.json', 'again', { ifNoneMatch: '*' }), BlobExistsError);
  });
});
