import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { LocalBlobStore, type BlobStore } from '@tq/storage';
import { S3TestServer } from '../libs/storage/test/s3-test-server';
import { envInt } from './lib/env';
import { printComparisons, printContext, type Comparison } from './lib/report';

/**
 * The blob store's cost on loopback (issue 12): put then get of one BENCH_BLOB_MB (100) MB object
 * (streamed in, streamed out) and of BENCH_BLOB_SMALL (1,000) 1 KB objects (BENCH_BLOB_CONCURRENCY,
 * 16, at a time), through the local folder and through S3BlobStore against s3rver (a Node S3
 * server writing to the same disk). The ratio is S3 / local: it is the price of the S3 protocol
 * (HTTP, XML, s3rver's own files), not of a real object store, whose latency is the network's.
 */
const BIG_MB = envInt(process.env.BENCH_BLOB_MB, 100);
const SMALL = envInt(process.env.BENCH_BLOB_SMALL, 1000);
const CONCURRENCY = envInt(process.env.BENCH_BLOB_CONCURRENCY, 16);
const MB = 1024 * 1024;

interface Timings {
  bigPut: number;
  bigGet: number;
  smallPut: number;
  smallGet: number;
}

async function main(): Promise<void> {
  console.log(`blob bench: ${BIG_MB} MB put+get, ${SMALL} x 1 KB put+get (${CONCURRENCY} at a time)`);
  const dir = await mkdtemp(join(tmpdir(), 'tq-blob-bench-'));
  const server = await S3TestServer.start();
  const s3 = server.store({ prefix: 'bench/' });
  try {
    const local = await measure('local', new LocalBlobStore(dir));
    await s3.check();
    const remote = await measure('s3 (s3rver)', s3);
    const row = (figure: string, value: number, baseline: number, unit = 's'): Comparison => ({
      figure,
      unit,
      value,
      baseline,
      baselineName: 'local folder',
      higherIsBetter: false,
    });
    printComparisons('S3BlobStore on s3rver vs LocalBlobStore (seconds, lower is better)', [
      row(`put ${BIG_MB} MB (stream)`, remote.bigPut, local.bigPut),
      row(`get ${BIG_MB} MB (stream)`, remote.bigGet, local.bigGet),
      row(`put ${SMALL} x 1 KB`, remote.smallPut, local.smallPut),
      row(`get ${SMALL} x 1 KB`, remote.smallGet, local.smallGet),
    ]);
    printContext({ cpus: cpus().length, node: process.version, s3: 's3rver 3.7.1 on loopback, in a child process' });
  } finally {
    s3.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function measure(name: string, store: BlobStore): Promise<Timings> {
  const key = 'big/object.bin';
  let t = performance.now();
  const hashIn = createHash('sha256');
  await store.put(
    key,
    Readable.from(
      (function* () {
        for (let i = 0; i < BIG_MB * 4; i++) {
          const chunk = Buffer.alloc(MB / 4, i % 251);
          hashIn.update(chunk);
          yield chunk;
        }
      })(),
    ),
  );
  const bigPut = (performance.now() - t) / 1000;
  t = performance.now();
  const hashOut = createHash('sha256');
  for await (const chunk of (await store.stream(key)).stream) hashOut.update(chunk as Buffer);
  const bigGet = (performance.now() - t) / 1000;
  if (hashIn.digest('hex') !== hashOut.digest('hex')) throw new Error(`${name}: the big object came back different`);

  const body = Buffer.alloc(1024, 7);
  const keys = Array.from({ length: SMALL }, (_, i) => `small/${String(i).padStart(5, '0')}.bin`);
  t = performance.now();
  await inBatches(keys, (k) => store.put(k, body));
  const smallPut = (performance.now() - t) / 1000;
  t = performance.now();
  await inBatches(keys, async (k) => {
    if ((await store.get(k)).length !== body.length) throw new Error(`${name}: ${k} came back short`);
  });
  const smallGet = (performance.now() - t) / 1000;
  console.log(
    `${name}: big put ${bigPut.toFixed(2)} s, get ${bigGet.toFixed(2)} s; small put ${smallPut.toFixed(2)} s, get ${smallGet.toFixed(2)} s`,
  );
  return { bigPut, bigGet, smallPut, smallGet };
}

/** CONCURRENCY calls in flight at a time. */
async function inBatches<T>(items: readonly T[], fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
