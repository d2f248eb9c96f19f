import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { NotFoundError } from '@tq/contracts';
import {
  BlobExistsError,
  BlobKeyError,
  BlobNotFoundError,
  BlobRangeError,
  BlobStoreConfigError,
  blobKey,
  type BlobStore,
} from '@tq/storage';

/** What one implementation gives the contract suite. */
export interface BlobStoreHarness {
  store: BlobStore;
  /** Bytes that have reached the storage so far (written to disk, received by the server). */
  bytesStored(): Promise<number>;
  /** A store whose configuration cannot work, and the setting its start-up error must name. */
  misconfigured(): { store: BlobStore; setting: string };
  /** Requests the store made to list (S3: ListObjectsV2 pages); undefined where there are none. */
  listRequests?(): Promise<number>;
  close(): Promise<void>;
}

const MB = 1024 * 1024;

/**
 * One suite, every implementation: the same calls, the same answers, the same errors. A store
 * that passes it can replace another behind the BlobStore interface.
 */
export function blobStoreContract(name: string, open: () => Promise<BlobStoreHarness>): void {
  describe(`blob store contract: ${name}`, () => {
    let h: BlobStoreHarness;
    let store: BlobStore;
    before(async () => {
      h = await open();
      store = h.store;
      await store.check();
    });
    after(async () => {
      store.close();
      await h.close();
    });

    it('put then get, head and replace; the content type follows the key', async () => {
      const key = blobKey('models', 'iris', '1', 'metadata.json');
      const put = await store.put(key, '{"a":1}');
      assert.equal(put.size, 7);
      assert.equal((await store.get(key)).toString(), '{"a":1}');
      const head = await store.head(key);
      assert.equal(head?.size, 7);
      assert.equal(head?.contentType, 'application/json');
      await store.put(key, Buffer.from('{"a":22}'));
      assert.equal((await store.get(key)).toString(), '{"a":22}');
      assert.notEqual((await store.head(key))?.etag, undefined);
      assert.equal(await store.head(blobKey('models', 'iris', '1', 'nothing.json')), undefined);
      // A key that is only a "folder" of others is no object.
      assert.equal(await store.head('models/iris/1'), undefined);
    });

    it('stream: whole, a range, an open range; a range past the end is a 416', async () => {
      const key = 'stream/digits.bin';
      await store.put(key, Buffer.from('0123456789'));
      const whole = await store.stream(key);
      assert.equal(whole.size, 10);
      assert.equal(whole.totalSize, 10);
      assert.equal((await buffer(whole.stream)).toString(), '0123456789');
      const part = await store.stream(key, { start: 2, end: 5 });
      assert.deepEqual([part.size, part.totalSize, part.range], [4, 10, { start: 2, end: 5 }]);
      assert.equal((await buffer(part.stream)).toString(), '2345');
      const tail = await store.stream(key, { start: 7 });
      assert.deepEqual([tail.size, tail.range], [3, { start: 7, end: 9 }]);
      assert.equal((await buffer(tail.stream)).toString(), '789');
      const clamped = await store.stream(key, { start: 8, end: 100 });
      assert.equal((await buffer(clamped.stream)).toString(), '89');
      await assert.rejects(
        store.stream(key, { start: 10 }),
        (err) => err instanceof BlobRangeError && err.status === 416,
      );
      const served = await store.serve(key, { range: { start: 0, end: 1 } });
      assert.equal(served.kind, 'stream');
      if (served.kind === 'stream') {
        assert.equal(served.contentType, 'application/octet-stream');
        assert.equal((await buffer(served.stream)).toString(), '01');
      }
    });

    it('a 20 MB stream goes in while it is produced (bounded memory) and comes back intact', async () => {
      const key = 'big/20mb.bin';
      const total = 20 * MB;
      const chunk = 256 * 1024;
      const hash = createHash('sha256');
      const base = await h.bytesStored();
      let produced = 0;
      let maxAhead = 0;
      async function* source(): AsyncGenerator<Buffer> {
        for (let i = 0; produced < total; i++) {
          const bytes = Buffer.alloc(chunk, i % 251);
          hash.update(bytes);
          // How far the producer is ahead of the storage: what the store holds in memory (or in flight).
          maxAhead = Math.max(maxAhead, produced - ((await h.bytesStored()) - base));
          produced += bytes.length;
          yield bytes;
        }
      }
      const put = await store.put(key, Readable.from(source()));
      assert.equal(put.size, total);
      // Everything buffered would put the producer 20 MB ahead; S3 holds at most a part being
      // filled and queueSize parts in flight (5 MiB each, 2 at a time), the folder a write buffer.
      assert.ok(maxAhead < 16 * MB, `the producer ran ${(maxAhead / MB).toFixed(1)} MB ahead of the storage`);
      const back = await store.stream(key);
      assert.equal(back.size, total);
      const readHash = createHash('sha256');
      for await (const b of back.stream) readHash.update(b as Buffer);
      assert.equal(readHash.digest('hex'), hash.digest('hex'));
    });

    it('a stream that fails midway leaves no object, and the old one whole (one part and multipart)', async () => {
      for (const failAfter of [100 * 1024, 6 * MB]) {
        const fresh = `fail/new-${failAfter}.bin`;
        const old = `fail/old-${failAfter}.bin`;
        await store.put(old, 'old');
        const failing = () =>
          Readable.from(
            (async function* () {
              for (let sent = 0; sent < failAfter; sent += 64 * 1024) yield Buffer.alloc(64 * 1024, 1);
              throw new Error('source broke');
            })(),
          );
        await assert.rejects(store.put(fresh, failing()), /source broke/);
        await assert.rejects(store.put(old, failing()), /source broke/);
        assert.equal(await store.head(fresh), undefined);
        assert.equal((await store.get(old)).toString(), 'old');
      }
      const left = [];
      for await (const e of store.list('fail/')) left.push(e.key);
      assert.deepEqual(left.sort(), ['fail/old-102400.bin', 'fail/old-6291456.bin']);
    });

    it('list: every key under a prefix once, across pages; nothing outside it', async () => {
      const keys: string[] = [];
      for (let i = 0; i < 23; i++) keys.push(`ls/k${String(i).padStart(3, '0')}.bin`);
      keys.push('ls/a/b.bin', 'ls/a.bin', 'ls/a/c/d.bin');
      await Promise.all(keys.map((k) => store.put(k, k)));
      await store.put('lsx/other.bin', 'x');
      await store.put('ls2/other.bin', 'x');
      const before = (await h.listRequests?.()) ?? 0;
      const listed = [];
      for await (const e of store.list('ls/', { pageSize: 7 })) listed.push(e);
      // Every key once; no order is promised (s3rver walks its folders, S3 directory buckets do not sort).
      assert.deepEqual(listed.map((e) => e.key).sort(), [...keys].sort());
      assert.equal(listed.find((e) => e.key === 'ls/a/c/d.bin')?.size, 'ls/a/c/d.bin'.length);
      if (h.listRequests) assert.ok((await h.listRequests()) - before >= 4, 'pages of 7 keys: at least 4 requests');
      const nested = [];
      for await (const e of store.list('ls/a/')) nested.push(e.key);
      assert.deepEqual(nested.sort(), ['ls/a/b.bin', 'ls/a/c/d.bin']);
      const none = [];
      for await (const e of store.list('nothing/here/')) none.push(e);
      assert.deepEqual(none, []);
    });

    it('folders: the names right under a prefix, each once, without what is below them', async () => {
      await Promise.all(
        ['fo/t1/a/x.bin', 'fo/t1/a/y.bin', 'fo/t1/b.bin', 'fo/t2/z.bin', 'fo/file.bin', 'fox/t9/q.bin'].map((k) =>
          store.put(k, k),
        ),
      );
      assert.deepEqual((await store.folders('fo/')).sort(), ['t1', 't2']);
      assert.deepEqual((await store.folders('fo/t1/')).sort(), ['a']);
      assert.deepEqual(await store.folders('fo/t2/'), []);
      assert.deepEqual(await store.folders('nothing/here/'), []);
      assert.ok((await store.folders('')).includes('fo'));
      await assert.rejects(store.folders('../'), BlobKeyError);
    });

    it('delete removes one object (twice is fine); get after it is a 404 naming the key', async () => {
      const key = 'del/one.json';
      await store.put(key, '{}');
      await store.delete(key);
      await store.delete(key);
      assert.equal(await store.head(key), undefined);
      await assert.rejects(store.get(key), notFound(key));
    });

    it('deletePrefix removes everything under it and nothing beside it; "" is refused', async () => {
      await Promise.all(
        ['dp/a.bin', 'dp/b/c.bin', 'dp/b/d/e.bin', 'dp2/keep.bin', 'dpx.bin'].map((k) => store.put(k, k)),
      );
      await store.deletePrefix('dp/');
      const left = [];
      for await (const e of store.list('')) if (e.key.startsWith('dp')) left.push(e.key);
      assert.deepEqual(left.sort(), ['dp2/keep.bin', 'dpx.bin']);
      await store.deletePrefix('dp/'); // nothing there: fine
      await assert.rejects(store.deletePrefix(''), BlobKeyError);
    });

    it('conditional create: of two racing creators exactly one wins, the other gets BlobExistsError', async () => {
      for (let round = 0; round < 8; round++) {
        const key = `markers/m${round}/COMMITTED`;
        const results = await Promise.allSettled(
          ['A', 'B', 'C'].map((who) => store.put(key, who, { ifNoneMatch: '*' })),
        );
        const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? ['ABC'[i]] : []));
        assert.equal(won.length, 1, `round ${round}: ${won.length} winners`);
        for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof BlobExistsError, r.reason);
        assert.equal((await store.get(key)).toString(), won[0]);
      }
      // A streamed create (S3: a multipart upload, the condition on its completion) loses the same way.
      const key = 'markers/big.bin';
      await store.put(key, 'first');
      const big = Readable.from(
        (function* () {
          for (let i = 0; i < 6; i++) yield Buffer.alloc(MB, i);
        })(),
      );
      await assert.rejects(store.put(key, big, { ifNoneMatch: '*' }), BlobExistsError);
      assert.equal((await store.get(key)).toString(), 'first');
    });

    it('a missing key is BlobNotFoundError (a NotFoundError, 404) naming the key, for every read', async () => {
      const key = 'models/gone/3/model.onnx';
      await assert.rejects(store.get(key), notFound(key));
      await assert.rejects(store.stream(key), notFound(key));
      await assert.rejects(store.stream(key, { start: 0, end: 9 }), notFound(key));
      await assert.rejects(store.serve(key), notFound(key));
    });

    it('keys that are not safe segments are refused before any I/O', async () => {
      const bad = ['../x', 'a/../b', '/abs/x', 'a\0b', 'a\\b', '', 'a//b', '.hidden', 'a/', 'a b', 'ü'];
      for (const key of bad) {
        await assert.rejects(store.put(key, 'x'), BlobKeyError, JSON.stringify(key));
        await assert.rejects(store.get(key), BlobKeyError, JSON.stringify(key));
        await assert.rejects(store.head(key), BlobKeyError, JSON.stringify(key));
        await assert.rejects(store.delete(key), BlobKeyError, JSON.stringify(key));
      }
      await assert.rejects(drain(store.list('../')), BlobKeyError);
      await assert.rejects(drain(store.list('a')), BlobKeyError);
      assert.throws(() => blobKey('models', '..'), BlobKeyError);
      assert.equal(blobKey('jobs', 'infer:42', 'out.jsonl'), 'jobs/infer_42/out.jsonl');
    });

    it('a store that cannot work fails its start-up check naming the setting', async () => {
      const { store: bad, setting } = h.misconfigured();
      try {
        await assert.rejects(
          bad.check(),
          (err) => err instanceof BlobStoreConfigError && err.setting === setting && err.message.startsWith(setting),
        );
      } finally {
        bad.close();
      }
    });
  });
}

function notFound(key: string) {
  return (err: unknown) =>
    err instanceof BlobNotFoundError && err instanceof NotFoundError && err.status === 404 && err.message.includes(key);
}

async function drain(items: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of items);
}
