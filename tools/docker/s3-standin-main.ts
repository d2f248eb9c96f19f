import { connect, createServer } from 'node:net';
import { S3rverFront } from '../../libs/storage/test/s3rver-front';

/**
 * The S3 stand-in container's process (image tq-test-s3:local, tools/docker/s3-image.ts): the
 * tests' s3rver with its conditional-write front, on S3_HOST:S3_PORT (127.0.0.1:9000 by default,
 * as a host-network service), with one bucket, S3_BUCKET (tq). The front listens on a port of its
 * own choosing; a byte-for-byte TCP relay gives it the fixed port a compose file can name. Data
 * lives in a temp folder of the container: a stand-in, not storage.
 */
async function main(): Promise<void> {
  const host = process.env.S3_HOST ?? '127.0.0.1';
  const port = Number(process.env.S3_PORT ?? 9000);
  const front = await S3rverFront.start(process.env.S3_BUCKET ?? 'tq');
  const target = new URL(front.endpoint);
  const relay = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((done, fail) => relay.once('error', fail).listen(port, host, done));
  console.log(`s3rver stand-in on http://${host}:${port}, bucket ${front.bucket}`);
  const stop = () => {
    relay.close();
    void front.stop().finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop).once('SIGINT', stop);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
