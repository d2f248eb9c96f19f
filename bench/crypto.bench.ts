import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { EncryptedBlobStore, LocalBlobStore, type BlobStore } from '@tq/storage';
import { envInt } from './lib/env';
import { printComparisons, printContext, type Comparison } from './lib/report';

/**
 * The price of encryption at rest (issue 11): put and get of one BENCH_CRYPTO_MB (64) MiB object
 * through the local folder, plain and through EncryptedBlobStore (AES-256-GCM, 64 KiB chunks), and
 * a 1 MiB ranged read from its middle. Best of BENCH_CRYPTO_RUNS (3) each, so a busy neighbour on
 * the shared cores costs less. Throughput in MiB/s of plaintext.
 */
const SIZE_MB = envInt(process.env.BENCH_CRYPTO_MB, 64);
const RUNS = envInt(process.env.BENCH_CRYPTO_RUNS, 3);
const MB = 1024 * 1024;

interface Timings {
  put: number;
  streamGet: number;
  get: number;
  range: number;
}

async function main(): Promise<void> {
  console.log(`crypto bench: ${SIZE_MB} MiB put + get, plain vs encrypted, best of ${RUNS}`);
  const dir = await mkdtemp(join(tmpdir(), 'tq-crypto-bench-'));
  try {
    const plain = await measure('plain', new LocalBlobStore(join(dir, 'plain')));
    const sealed = await measure(
      'encrypted',
      new EncryptedBlobStore(new LocalBlobStore(join(dir, 'sealed')), {
        keys: [{ id: 'bench', key: randomBytes(32) }],
      }),
    );
    const row = (figure: string, value: number, baseline: number, unit = 'MiB/s'): Comparison => ({
      figure,
      unit,
      value,
      baseline,
      baselineName: 'plain',
      higherIsBetter: unit !== 'ms',
    });
    const mibs = (s: number) => SIZE_MB / s;
    printComparisons('EncryptedBlobStore vs LocalBlobStore (MiB/s of plaintext, higher is better)', [
      row(`put ${SIZE_MB} MiB (stream)`, mibs(sealed.put), mibs(plain.put)),
      row(`stream ${SIZE_MB} MiB`, mibs(sealed.streamGet), mibs(plain.streamGet)),
      row(`get ${SIZE_MB} MiB (one buffer)`, mibs(sealed.get), mibs(plain.get)),
      row('1 MiB ranged read (ms)', sealed.range * 1000, plain.range * 1000, 'ms'),
    ]);
    printContext({
      cpus: cpus().length,
      'load average': loadavg()[0]!.toFixed(1),
      node: process.version,
      openssl: process.versions.openssl ?? '?',
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function measure(name: string, store: BlobStore): Promise<Timings> {
  const best: Timings = { put: Infinity, streamGet: Infinity, get: Infinity, range: Infinity };
  const piece = randomBytes(MB / 4);
  for (let run = 0; run < RUNS; run++) {
    const key = `big/object-${run}.bin`;
    const hashIn = createHash('sha256');
    let t = performance.now();
    await store.put(
      key,
      Readable.from(
        (function* () {
          for (let i = 0; i < SIZE_MB * 4; i++) {
            hashIn.update(piece);
            yield piece;
          }
        })(),
      ),
    );
    best.put = Math.min(best.put, (performance.now() - t) / 1000);
    t = performance.now();
    const hashOut = createHash('sha256');
    for await (const chunk of (await store.stream(key)).stream) hashOut.update(chunk as Buffer);
    best.streamGet = Math.min(best.streamGet, (performance.now() - t) / 1000);
    if (hashIn.digest('hex') !== hashOut.digest('hex')) throw new Error(`${name}: the object came back different`);
    t = performance.now();
    const whole = await store.get(key);
    best.get = Math.min(best.get, (performance.now() - t) / 1000);
    if (whole.length !== SIZE_MB * MB) throw new Error(`${name}: get gave ${whole.length} bytes`);
    t = performance.now();
    const start = Math.floor((SIZE_MB * MB) / 2) + 12_345;
    const part = await buffer((await store.stream(key, { start, end: start + MB - 1 })).stream);
    best.range = Math.min(best.range, (performance.now() - t) / 1000);
    if (!part.equals(whole.subarray(start, start + MB))) throw new Error(`${name}: the range came back different`);
    await store.delete(key);
  }
  const r = (s: number) => `${(SIZE_MB / s).toFixed(0)} MiB/s`;
  console.log(
    `${name}: put ${r(best.put)}, stream ${r(best.streamGet)}, get ${r(best.get)}, 1 MiB range ${(best.range * 1000).toFixed(1)} ms`,
  );
  return best;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
