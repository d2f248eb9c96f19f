import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '@tq/config';
import {
  BlobIntegrityError,
  BlobKeyUnavailableError,
  BlobRangeError,
  ENCRYPTION_CHUNK_SIZE as CHUNK,
  ENCRYPTION_HEADER_SIZE as HEADER,
  EncryptedBlobStore,
  LocalBlobStore,
  ArtifactStore,
  ModelRegistry,
  blobStoreFromConfig,
  reencryptStore,
  type BlobStore,
  type ByteRange,
} from '@tq/storage';
import { blobStoreContract } from './blob-store.contract';
import { S3TestServer } from './s3-test-server';

const SEALED = CHUNK + 16;
const key = (id: string) => ({ id, key: randomBytes(32) });
const A = key('a');
const B = key('b');

blobStoreContract('encrypted (AES-256-GCM) over the local folder', async () => {
  const root = await mkdtemp(join(tmpdir(), 'tq-blob-enc-'));
  const notADir = join(root, 'file');
  await writeFile(notADir, 'x');
  return {
    store: new EncryptedBlobStore(new LocalBlobStore(join(root, 'store')), { keys: [A] }),
    bytesStored: () => folderBytes(join(root, 'store')),
    misconfigured: () => ({
      store: new EncryptedBlobStore(new LocalBlobStore(join(notADir, 'below')), { keys: [A] }),
      setting: 'ARTIFACT_DIR',
    }),
    close: () => rm(root, { recursive: true, force: true }),
  };
});

blobStoreContract('encrypted (AES-256-GCM) over S3 (s3rver on loopback)', async () => {
  const server = await S3TestServer.start();
  return {
    store: new EncryptedBlobStore(server.store({ prefix: 'tq/' }), { keys: [A] }),
    bytesStored: () => server.bytesReceived(),
    misconfigured: () => ({
      store: new EncryptedBlobStore(server.store({ bucket: 'no-such-bucket' }), { keys: [A] }),
      setting: 'S3_BUCKET',
    }),
    listRequests: () => server.listRequests(),
    close: () => server.stop(),
  };
});

/** Bytes of `n` with a recognisable pattern (a wrong offset shows). */
function pattern(n: number, seed = 7): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed + (i >> 8)) & 0xff;
  return b;
}

async function readAll(store: BlobStore, k: string, range?: ByteRange): Promise<Buffer> {
  return buffer((await store.stream(k, range)).stream);
}

/**
 * Every read of `k` fails with BlobIntegrityError: get, stream, ranged streams. Damage confined to
 * one chunk at plaintext offset `at`: the ranges covering it (others read: only covering chunks
 * are decrypted); damage to the header, the size or the final chunk: every range.
 */
async function assertEveryReadFails(store: BlobStore, k: string, size: number, what: string, at?: number) {
  const integrity = (err: unknown) => err instanceof BlobIntegrityError && err.status === 500 && err.key === k;
  await assert.rejects(store.get(k), integrity, `${what}: get`);
  await assert.rejects(readAll(store, k), integrity, `${what}: stream`);
  const ranges =
    at === undefined
      ? [{ start: 0 }, { start: 1, end: 1 }, { start: Math.floor(size / 2) }, { start: Math.max(0, size - 10) }]
      : [{ start: 0 }, { start: at, end: at }, { start: at, end: size - 1 }, { start: Math.max(0, at - 5) }];
  for (const r of ranges) await assert.rejects(readAll(store, k, r), integrity, `${what}: range ${JSON.stringify(r)}`);
}

describe('encryption at rest: format, tampering, rotation, ranges (local folder under it)', () => {
  let root: string;
  let inner: LocalBlobStore;
  let store: EncryptedBlobStore;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'tq-enc-'));
    inner = new LocalBlobStore(root);
    store = new EncryptedBlobStore(inner, { keys: [A] });
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('stores no plaintext; head and list report the plaintext size; the stored size follows from it', async () => {
    const text = 'sepal_length,sepal_width,species\n' + '5.1,3.5,setosa\n'.repeat(20_000);
    await store.put('d/iris.csv', text);
    await store.put('d/empty.json', '');
    await store.put('d/exact.bin', pattern(2 * CHUNK));
    const onDisk = await readFile(join(root, 'd', 'iris.csv'));
    assert.equal(onDisk.includes('sepal_length'), false);
    assert.equal(onDisk.includes('setosa'), false);
    const chunks = Math.ceil(text.length / CHUNK);
    assert.equal(onDisk.length, HEADER + text.length + 16 * chunks);
    assert.equal((await store.head('d/iris.csv'))?.size, text.length);
    assert.equal((await store.head('d/empty.json'))?.size, 0);
    assert.equal((await stat(join(root, 'd', 'empty.json'))).size, HEADER + 16);
    assert.equal((await store.head('d/exact.bin'))?.size, 2 * CHUNK);
    assert.equal((await stat(join(root, 'd', 'exact.bin'))).size, HEADER + 2 * SEALED);
    const listed = new Map<string, number>();
    for await (const e of store.list('d/')) listed.set(e.key, e.size);
    assert.deepEqual(Object.fromEntries(listed), {
      'd/iris.csv': text.length,
      'd/empty.json': 0,
      'd/exact.bin': 2 * CHUNK,
    });
    assert.equal((await store.get('d/iris.csv')).toString(), text);
    assert.equal((await store.get('d/empty.json')).length, 0);
    assert.equal((await readAll(store, 'd/empty.json')).length, 0);
    await assert.rejects(store.stream('d/empty.json', { start: 0 }), BlobRangeError);
    assert.deepEqual(await readAll(store, 'd/exact.bin'), pattern(2 * CHUNK));
    // The same plaintext twice: different bytes (a fresh data key and nonces per object).
    await store.put('d/again.csv', text);
    assert.equal(onDisk.equals(await readFile(join(root, 'd', 'again.csv'))), false);
  });

  it('serve streams the plaintext, never a redirect', async () => {
    await store.put('s/out.jsonl', '{"y":1}\n');
    const served = await store.serve('s/out.jsonl', { redirectSeconds: 60 });
    assert.equal(served.kind, 'stream');
    if (served.kind === 'stream') assert.equal((await buffer(served.stream)).toString(), '{"y":1}\n');
  });

  it('ranged reads match the plaintext: random sizes around chunk boundaries, random ranges', async () => {
    let seed = Number(process.env.TQ_TEST_SEED ?? Date.now() % 1_000_000);
    const first = seed;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const around = [1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK - 1, 3 * CHUNK + 17];
    for (let round = 0; round < 12; round++) {
      const base = around[Math.floor(random() * around.length)]!;
      const size = Math.max(1, base + Math.floor(random() * 5) - 2);
      const plain = pattern(size, round);
      const k = `r/obj-${round}.bin`;
      // Streamed or in one piece, in odd-sized pieces: the chunking must not depend on the source.
      if (round % 2 === 0) await store.put(k, plain);
      else {
        const piece = 1 + Math.floor(random() * 40_000);
        await store.put(
          k,
          Readable.from(
            (function* () {
              for (let o = 0; o < size; o += piece) yield plain.subarray(o, o + piece);
            })(),
          ),
        );
      }
      for (let q = 0; q < 15; q++) {
        const start = Math.floor(random() * size);
        const pick = random();
        const end = pick < 0.2 ? undefined : pick < 0.3 ? size + 100 : start + Math.floor(random() * (size - start));
        const range = end === undefined ? { start } : { start, end };
        const got = await store.stream(k, range);
        const expectEnd = Math.min(end ?? size - 1, size - 1);
        const bytes = await buffer(got.stream);
        assert.deepEqual(
          [got.size, got.totalSize, got.range],
          [expectEnd - start + 1, size, { start, end: expectEnd }],
          `seed ${first}: ${size} bytes, range ${JSON.stringify(range)}`,
        );
        assert.ok(
          bytes.equals(plain.subarray(start, expectEnd + 1)),
          `seed ${first}: bytes of ${JSON.stringify(range)}`,
        );
      }
      await assert.rejects(store.stream(k, { start: size }), BlobRangeError, `seed ${first}`);
    }
  });

  it('a ranged read decrypts only the chunks covering the range', async () => {
    const plain = pattern(10 * CHUNK);
    await store.put('r/ten.bin', plain);
    // Chunk 7 broken: a range inside chunk 2 still reads, one touching chunk 7 does not.
    const stored = await inner.get('r/ten.bin');
    stored[HEADER + 7 * SEALED + 100]! ^= 1;
    await inner.put('r/ten.bin', stored);
    const ok = await readAll(store, 'r/ten.bin', { start: 2 * CHUNK + 5, end: 3 * CHUNK - 1 });
    assert.ok(ok.equals(plain.subarray(2 * CHUNK + 5, 3 * CHUNK)));
    await assert.rejects(readAll(store, 'r/ten.bin', { start: 7 * CHUNK, end: 7 * CHUNK }), BlobIntegrityError);
  });

  it('tampering: a flipped byte anywhere, a truncation, a dropped or reordered chunk, swapped objects: every read fails', async () => {
    const size = 3 * CHUNK + 500;
    const plain = pattern(size);
    const fresh = async (k: string) => {
      await store.put(k, plain);
      return inner.get(k);
    };
    // [what, tamper, the plaintext offset of damage confined to one chunk]
    const cases: [string, (b: Buffer) => Buffer, number?][] = [
      ['magic', (b) => flip(b, 1)],
      ['key id', (b) => flip(b, 7)],
      ['nonce prefix', (b) => flip(b, 40)],
      ['wrapped key', (b) => flip(b, 70)],
      ['first chunk', (b) => flip(b, HEADER + 3), 3],
      ['a middle chunk', (b) => flip(b, HEADER + SEALED + 1000), CHUNK + 1000],
      ['a tag', (b) => flip(b, HEADER + 2 * SEALED - 1), CHUNK + 5],
      ['the last byte (the final tag)', (b) => flip(b, b.length - 1)],
      ['truncated mid-chunk', (b) => b.subarray(0, b.length - 100)],
      ['the last chunk dropped', (b) => b.subarray(0, HEADER + 3 * SEALED)],
      ['a byte appended', (b) => Buffer.concat([b, Buffer.from([0])])],
      ['a chunk appended again', (b) => Buffer.concat([b, b.subarray(HEADER, HEADER + SEALED)])],
      [
        'two chunks swapped',
        (b) =>
          Buffer.concat([
            b.subarray(0, HEADER),
            b.subarray(HEADER + SEALED, HEADER + 2 * SEALED),
            b.subarray(HEADER, HEADER + SEALED),
            b.subarray(HEADER + 2 * SEALED),
          ]),
        0,
      ],
      ['header only', (b) => b.subarray(0, HEADER)],
      ['emptied', () => Buffer.alloc(0)],
    ];
    for (const [what, tamper, at] of cases) {
      const k = `t/${what.replace(/\W+/g, '-')}.bin`;
      await inner.put(k, tamper(await fresh(k)));
      await assertEveryReadFails(store, k, size, what, at);
      if (at !== undefined) {
        // Chunks away from the damage still read (and the final one verifies).
        const away = at < CHUNK ? 2 * CHUNK : 0;
        assert.ok((await readAll(store, k, { start: away, end: away + 9 })).equals(plain.subarray(away, away + 10)));
      }
    }
    // Two objects' bytes swapped (each sealed for its own key): both fail, though each is intact.
    const x = await fresh('t/x.bin');
    const y = await fresh('t/y.bin');
    await inner.put('t/x.bin', y);
    await inner.put('t/y.bin', x);
    await assertEveryReadFails(store, 't/x.bin', size, 'swapped x');
    await assertEveryReadFails(store, 't/y.bin', size, 'swapped y');
  });

  it('no plaintext of a bad chunk is emitted: the stream yields the verified chunks before it, then fails', async () => {
    const plain = pattern(5 * CHUNK);
    await store.put('t/late.bin', plain);
    const stored = await inner.get('t/late.bin');
    stored[HEADER + 2 * SEALED + 10]! ^= 0x80; // in chunk 2
    await inner.put('t/late.bin', stored);
    for (const range of [undefined, { start: CHUNK + 7 }]) {
      const got = await store.stream('t/late.bin', range);
      const emitted: Buffer[] = [];
      await assert.rejects(async () => {
        for await (const piece of got.stream) emitted.push(piece as Buffer);
      }, BlobIntegrityError);
      const out = Buffer.concat(emitted);
      const from = range?.start ?? 0;
      assert.ok(out.equals(plain.subarray(from, 2 * CHUNK)), `only chunks 0-1 (from ${from}): got ${out.length} bytes`);
    }
  });

  it('an object without the header is refused; ENCRYPTION_READ_PLAINTEXT reads it (a migration)', async () => {
    await inner.put('p/legacy.csv', 'a,b\n1,2\n');
    await inner.put('p/empty.txt', '');
    await assertEveryReadFails(store, 'p/legacy.csv', 8, 'plaintext');
    await assert.rejects(store.get('p/empty.txt'), BlobIntegrityError);
    const migrating = new EncryptedBlobStore(inner, { keys: [A], readPlaintext: true });
    assert.equal((await migrating.get('p/legacy.csv')).toString(), 'a,b\n1,2\n');
    assert.equal((await readAll(migrating, 'p/legacy.csv')).toString(), 'a,b\n1,2\n');
    assert.equal((await readAll(migrating, 'p/legacy.csv', { start: 4, end: 6 })).toString(), '1,2');
    assert.equal((await migrating.head('p/legacy.csv'))?.size, 8);
    assert.equal((await migrating.get('p/empty.txt')).length, 0);
    await migrating.put('p/new.csv', 'a,b\n3,4\n');
    const listed = new Map<string, number>();
    for await (const e of migrating.list('p/')) listed.set(e.key, e.size);
    assert.deepEqual(Object.fromEntries(listed), { 'p/legacy.csv': 8, 'p/empty.txt': 0, 'p/new.csv': 8 });
    assert.equal(await migrating.keyIdOf('p/legacy.csv'), undefined);
    assert.equal(await migrating.keyIdOf('p/new.csv'), 'a');
    // Still sealed and verified: a tampered sealed object fails with the migration setting on.
    const sealed = await inner.get('p/new.csv');
    await inner.put('p/new.csv', flip(sealed, sealed.length - 3));
    await assert.rejects(migrating.get('p/new.csv'), BlobIntegrityError);
  });

  it('rotation: old objects read under the old key, new ones use the new; without the old key, a read names it', async () => {
    await store.put('k/old.json', '{"under":"a"}');
    const rotated = new EncryptedBlobStore(inner, { keys: [A, B], activeId: 'b' });
    assert.equal((await rotated.get('k/old.json')).toString(), '{"under":"a"}');
    await rotated.put('k/new.json', '{"under":"b"}');
    assert.equal(await rotated.keyIdOf('k/new.json'), 'b');
    assert.equal(await rotated.keyIdOf('k/old.json'), 'a');
    const onlyB = new EncryptedBlobStore(inner, { keys: [B] });
    assert.equal((await onlyB.get('k/new.json')).toString(), '{"under":"b"}');
    const namesA = (err: unknown) =>
      err instanceof BlobKeyUnavailableError &&
      err.setting === 'ENCRYPTION_KEYS' &&
      err.keyId === 'a' &&
      /ENCRYPTION_KEYS/.test(err.message) &&
      /"a"/.test(err.message);
    await assert.rejects(onlyB.get('k/old.json'), namesA);
    await assert.rejects(readAll(onlyB, 'k/old.json'), namesA);
    await assert.rejects(readAll(onlyB, 'k/old.json', { start: 2 }), namesA);
    // A key listed under the old id but with other bytes: the wrap fails its tag, an integrity error.
    const wrongA = new EncryptedBlobStore(inner, { keys: [key('a')] });
    await assert.rejects(wrongA.get('k/old.json'), BlobIntegrityError);
  });

  it('re-encryption completes a rotation and a migration: afterwards the new key alone reads everything', async () => {
    const dir = join(root, 'rotate');
    const base = new LocalBlobStore(dir);
    const underA = new EncryptedBlobStore(base, { keys: [A] });
    const big = pattern(3 * CHUNK + 11);
    await underA.put('m/big.bin', big);
    await underA.put('m/small.json', '{"a":1}');
    await base.put('m/legacy.csv', 'x,y\n1,2\n');
    await underA.put('m/broken.bin', 'soon broken');
    const broken = await base.get('m/broken.bin');
    await base.put('m/broken.bin', flip(broken, broken.length - 1));
    const rotated = new EncryptedBlobStore(base, { keys: [B, A], readPlaintext: true });
    await rotated.put('m/new.json', '{"b":1}');

    const dry = await reencryptStore(rotated, { dryRun: true });
    assert.deepEqual([dry.objects, dry.current, dry.rewritten, dry.fromPlaintext], [5, 1, 4, 1]);
    assert.equal(await rotated.keyIdOf('m/big.bin'), 'a', 'a dry run writes nothing');

    const seen: string[] = [];
    const report = await reencryptStore(rotated, { onObject: (k, outcome) => seen.push(`${outcome} ${k}`) });
    assert.deepEqual([report.objects, report.current, report.rewritten, report.fromPlaintext], [5, 1, 3, 1]);
    assert.deepEqual(
      report.failed.map((f) => f.key),
      ['m/broken.bin'],
    );
    assert.match(report.failed[0]!.reason, /integrity/);
    assert.ok(seen.includes('rewritten m/legacy.csv'), seen.join(', '));
    const onlyB = new EncryptedBlobStore(base, { keys: [B] });
    assert.ok((await onlyB.get('m/big.bin')).equals(big));
    assert.ok(
      (await readAll(onlyB, 'm/big.bin', { start: CHUNK - 3, end: CHUNK + 3 })).equals(
        big.subarray(CHUNK - 3, CHUNK + 4),
      ),
    );
    assert.equal((await onlyB.get('m/small.json')).toString(), '{"a":1}');
    assert.equal((await onlyB.get('m/legacy.csv')).toString(), 'x,y\n1,2\n');
    assert.equal((await onlyB.get('m/new.json')).toString(), '{"b":1}');
    assert.equal((await base.get('m/legacy.csv')).includes('x,y'), false, 'the plaintext object is now sealed');

    // The tool, as an operator runs it: the app's settings, exit 1 while an object is unreadable.
    await base.delete('m/broken.bin');
    await underA.put('m/late.json', '{"late":true}');
    const env = {
      ...process.env,
      ARTIFACT_DIR: dir,
      ENCRYPTION_KEYS: `b:${B.key.toString('base64')},a:${A.key.toString('base64')}`,
      ENCRYPTION_KEY_ID: 'b',
    };
    const tool = join(__dirname, '..', '..', '..', 'tools', 'reencrypt-store.js');
    const run = spawnSync(process.execPath, [tool], { env, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr + run.stdout);
    assert.match(run.stdout, /rewritten m\/late\.json \(was under "a"\)/);
    assert.match(run.stdout, /5 objects: 4 already under "b", 1 rewritten/);
    assert.equal(await onlyB.keyIdOf('m/late.json'), 'b');
    const none = spawnSync(process.execPath, [tool], { env: { ...process.env, ARTIFACT_DIR: dir }, encoding: 'utf8' });
    assert.equal(none.status, 1);
    assert.match(none.stderr, /ENCRYPTION_KEYS is not set/);
  });

  it('config: ENCRYPTION_KEYS and ENCRYPTION_KEY_ID are checked, errors name the setting and never the key', () => {
    const k1 = randomBytes(32).toString('base64');
    const k2 = randomBytes(32).toString('base64');
    const config = loadConfig({ ENCRYPTION_KEYS: `old:${k1}, new:${k2}`, ENCRYPTION_KEY_ID: 'new' });
    assert.deepEqual(
      config.ENCRYPTION_KEYS?.map((k) => [k.id, k.key.toString('base64')]),
      [
        ['old', k1],
        ['new', k2],
      ],
    );
    assert.equal(loadConfig({}).ENCRYPTION_KEYS, undefined);
    assert.equal(loadConfig({}).ENCRYPTION_READ_PLAINTEXT, false);
    const short = randomBytes(16).toString('base64');
    for (const [env, pattern] of [
      [{ ENCRYPTION_KEYS: `a:${short}` }, /ENCRYPTION_KEYS: entry 1 \("a"\): the key must be 32 bytes/],
      [{ ENCRYPTION_KEYS: k1 }, /ENCRYPTION_KEYS: entry 1: expected "id:base64key"/],
      [{ ENCRYPTION_KEYS: `a b:${k1}` }, /ENCRYPTION_KEYS: .*expected "id:base64key"/],
      [{ ENCRYPTION_KEYS: `a:${k1},a:${k2}` }, /ENCRYPTION_KEYS: entry 2 \("a"\): the id "a" is listed twice/],
      [{ ENCRYPTION_KEYS: `a:${k1.slice(0, -2)}!=` }, /ENCRYPTION_KEYS: entry 1 \("a"\): the key must be 32 bytes/],
      [
        { ENCRYPTION_KEYS: `a:${k1}`, ENCRYPTION_KEY_ID: 'b' },
        /ENCRYPTION_KEY_ID: "b" is not an id of ENCRYPTION_KEYS/,
      ],
      [{ ENCRYPTION_KEY_ID: 'b' }, /ENCRYPTION_KEY_ID: needs ENCRYPTION_KEYS/],
    ] as const)
      assert.throws(
        () => loadConfig(env),
        (err: unknown) => err instanceof Error && pattern.test(err.message) && !err.message.includes(k1.slice(0, 20)),
        JSON.stringify(env),
      );
  });

  it('blobStoreFromConfig: ENCRYPTION_KEYS set wraps the store; unset leaves it plain', async () => {
    const env = { ARTIFACT_DIR: join(root, 'cfg'), ENCRYPTION_KEYS: `main:${randomBytes(32).toString('base64')}` };
    const encrypted = blobStoreFromConfig(loadConfig(env));
    assert.ok(encrypted instanceof EncryptedBlobStore);
    assert.match(encrypted.location, /encrypted at rest, key "main"/);
    await encrypted.put('c/x.json', '{"modelTopology":1}');
    assert.equal((await readFile(join(root, 'cfg', 'c', 'x.json'))).includes('modelTopology'), false);
    const plain = blobStoreFromConfig(loadConfig({ ARTIFACT_DIR: join(root, 'cfg') }));
    assert.ok(plain instanceof LocalBlobStore);
    await assert.rejects(
      blobStoreFromConfig(loadConfig({ ...env, ENCRYPTION_KEYS: `other:${randomBytes(32).toString('base64')}` })).get(
        'c/x.json',
      ),
      (err) => err instanceof BlobKeyUnavailableError && err.keyId === 'main',
    );
  });
});

describe('encryption at rest over S3: tampering and serve', () => {
  let server: S3TestServer;
  let store: EncryptedBlobStore;
  before(async () => {
    server = await S3TestServer.start();
    store = new EncryptedBlobStore(server.store({ prefix: 'enc' }), { keys: [A] });
  });
  after(async () => {
    store.close();
    await server.stop();
  });

  it('serve never redirects (the client would get ciphertext); the stored object has no plaintext', async () => {
    await store.put('o/out.jsonl', '{"modelTopology":1}\n');
    const served = await store.serve('o/out.jsonl', { redirectSeconds: 60 });
    assert.equal(served.kind, 'stream');
    if (served.kind === 'stream') assert.equal((await buffer(served.stream)).toString(), '{"modelTopology":1}\n');
    const raw = await store.inner.get('o/out.jsonl');
    assert.equal(raw.includes('modelTopology'), false);
    assert.equal((await store.inner.head('o/out.jsonl'))?.size, raw.length);
    assert.equal((await store.head('o/out.jsonl'))?.size, 20);
  });

  it('a registry over it stores a sparse weight file gzipped, then sealed; the bucket object has no Content-Encoding', async () => {
    const registry = new ModelRegistry(new ArtifactStore(store));
    const weights = new Float32Array(20_000).map((_, i) => (i % 20 === 0 ? i : 0));
    const bytes = Buffer.from(weights.buffer);
    const meta = { inputShape: [4], featureCount: 4, classes: ['a'], lineage: { kind: 'trained' as const } };
    const made = await registry.register('enc', { ...meta, weightDtype: 'float32' }, (out) =>
      out.put('weights.bin', bytes),
    );
    assert.equal(made.storedAs?.['weights.bin']?.encoding, 'gzip');
    assert.deepEqual(await registry.readArtifact(made, 'weights.bin'), bytes);
    let key = '';
    for await (const entry of store.inner.list('')) if (entry.key.endsWith('weights.bin')) key = entry.key;
    // A presigned download of the ciphertext must not claim to be gzip (a client would try to inflate it).
    const redirect = await store.inner.serve(key, { redirectSeconds: 60 });
    assert.equal(redirect.kind, 'redirect');
    if (redirect.kind === 'redirect') assert.equal((await fetch(redirect.url)).headers.get('content-encoding'), null);
  });

  it('a tampered, truncated or swapped object fails every read', async () => {
    const plain = pattern(2 * CHUNK + 3);
    await store.put('o/a.bin', plain);
    await store.put('o/b.bin', plain);
    const a = await store.inner.get('o/a.bin');
    const b = await store.inner.get('o/b.bin');
    await store.inner.put('o/flip.bin', flip(a, HEADER + CHUNK));
    await assertEveryReadFails(store, 'o/flip.bin', plain.length, 'flip (the wrong blob key too)');
    await store.put('o/cut.bin', plain);
    await store.inner.put('o/cut.bin', (await store.inner.get('o/cut.bin')).subarray(0, HEADER + 2 * SEALED));
    await assertEveryReadFails(store, 'o/cut.bin', plain.length, 'dropped last chunk');
    await store.inner.put('o/a.bin', b);
    await assertEveryReadFails(store, 'o/a.bin', plain.length, 'swapped');
  });
});

function flip(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at]! ^= 0x01;
  return copy;
}

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
