import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { BlobIntegrityError, BlobRangeError, BlobStoreConfigError } from '../blob-errors';
import { assertBlobKey } from '../blob-key';
import {
  clampRange,
  type BlobBody,
  type BlobEntry,
  type BlobHead,
  type BlobServe,
  type BlobStore,
  type BlobStream,
  type ByteRange,
  type ListOptions,
  type PutOptions,
  type ServeOptions,
} from '../blob-store';
import { ByteReader, openBytes, openChunks, sealBytes, sealChunks } from './chunk-streams';
import {
  CHUNK_SIZE,
  HEADER_SIZE,
  MAGIC,
  SEALED_CHUNK,
  ObjectKeys,
  chunkCount,
  hasMagic,
  plainSize,
  type MasterKey,
} from './object-cipher';

export interface EncryptionOptions {
  /** Every master key that may read (ENCRYPTION_KEYS); ids as stored in headers. */
  keys: readonly MasterKey[];
  /** The key new objects are sealed with (ENCRYPTION_KEY_ID); the first one when unset. */
  activeId?: string;
  /** Read objects without the header as they are (ENCRYPTION_READ_PLAINTEXT, for a migration). */
  readPlaintext?: boolean;
}

/** A ranged read that sees the object replaced between its header read and its body read tries again this often. */
const RACE_RETRIES = 3;

/**
 * Encryption at rest over any BlobStore (the folder or S3): every object is stored sealed (see
 * object-cipher.ts for the format) and every read verifies before it emits, so a tampered,
 * truncated or swapped object is a BlobIntegrityError, never wrong bytes. The contract is the
 * inner store's, in plaintext terms: sizes and byte ranges are plaintext ones (a range reads and
 * decrypts only the chunks that cover it), and serve always streams: a presigned URL would hand
 * the client ciphertext.
 */
export class EncryptedBlobStore implements BlobStore {
  private readonly masters: ReadonlyMap<string, Buffer>;
  private readonly active: MasterKey;
  private readonly readPlaintext: boolean;

  constructor(
    readonly inner: BlobStore,
    options: EncryptionOptions,
  ) {
    const masters = new Map<string, Buffer>();
    for (const { id, key } of options.keys) {
      // The config checks both (KEY_ID_PATTERN); a store made in code gets the same refusal.
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/.test(id))
        throw new BlobStoreConfigError(
          'ENCRYPTION_KEYS',
          `"${id}" is not a key id (letters, digits, "_.-", 32 at most)`,
        );
      if (key.length !== 32) throw new BlobStoreConfigError('ENCRYPTION_KEYS', `key "${id}" is not 32 bytes`);
      masters.set(id, key);
    }
    const activeId = options.activeId ?? options.keys[0]?.id;
    const activeKey = activeId === undefined ? undefined : masters.get(activeId);
    if (activeId === undefined || !activeKey)
      throw new BlobStoreConfigError('ENCRYPTION_KEY_ID', `"${activeId ?? ''}" is not an id of ENCRYPTION_KEYS`);
    this.masters = masters;
    this.active = { id: activeId, key: activeKey };
    this.readPlaintext = options.readPlaintext ?? false;
  }

  get kind(): BlobStore['kind'] {
    return this.inner.kind;
  }

  get location(): string {
    return `${this.inner.location} (encrypted at rest, key "${this.active.id}")`;
  }

  /** The key id new objects get (the re-encryption tool compares with it). */
  get activeKeyId(): string {
    return this.active.id;
  }

  /**
   * The master key id an object is sealed under, or undefined when it has no header (plaintext):
   * what the re-encryption tool reads to skip objects already under the active key.
   */
  async keyIdOf(key: string): Promise<string | undefined> {
    try {
      const head = await this.inner.stream(key, { start: 0, end: HEADER_SIZE - 1 });
      return ObjectKeys.keyIdOf(await buffer(head.stream));
    } catch (err) {
      if (err instanceof BlobRangeError) return undefined; // empty
      throw err;
    }
  }

  check(): Promise<void> {
    return this.inner.check();
  }

  async put(key: string, body: BlobBody, putOptions: PutOptions = {}): Promise<BlobHead> {
    assertBlobKey(key);
    // The bucket holds ciphertext: no Content-Encoding on it (downloads come through serve, decrypted).
    const { contentEncoding: _plainOnly, ...options } = putOptions;
    const { keys, header } = ObjectKeys.create(key, this.active);
    if (typeof body === 'string' || body instanceof Uint8Array) {
      const plain = Buffer.from(body);
      const head = await this.inner.put(key, sealBytes(plain, keys, header), options);
      return { ...head, size: plain.length };
    }
    const counted = { size: 0 };
    const head = await this.inner.put(key, Readable.from(sealChunks(body, keys, header, counted)), options);
    return { ...head, size: counted.size };
  }

  async get(key: string): Promise<Buffer> {
    const stored = await this.inner.get(key);
    if (!hasMagic(stored)) {
      this.allowPlaintext(key);
      return stored;
    }
    const keys = ObjectKeys.open(key, stored.subarray(0, HEADER_SIZE), this.masters);
    const plain = this.plainSizeOf(key, stored.length);
    return openBytes(key, keys, stored.subarray(HEADER_SIZE), plain);
  }

  async stream(key: string, range?: ByteRange): Promise<BlobStream> {
    if (range) {
      clampRange(range, Number.MAX_SAFE_INTEGER); // validates before any request
      return this.streamRange(key, range);
    }
    const stored = await this.inner.stream(key);
    try {
      const reader = ByteReader.of(stored.stream);
      const header = await reader.read(HEADER_SIZE);
      if (!hasMagic(header)) {
        this.allowPlaintext(key);
        return { ...stored, stream: Readable.from(reader.rest(header), { objectMode: false }) };
      }
      const keys = ObjectKeys.open(key, header, this.masters);
      const plain = this.plainSizeOf(key, stored.size);
      const span = { first: 0, last: chunkCount(plain) - 1, plainTotal: plain, start: 0, end: plain - 1 };
      return {
        stream: await openedReadable(openChunks(key, keys, reader, span), stored.stream),
        size: plain,
        totalSize: plain,
        contentType: stored.contentType,
        etag: stored.etag,
      };
    } catch (err) {
      stored.stream.destroy();
      throw err;
    }
  }

  async head(key: string): Promise<BlobHead | undefined> {
    const head = await this.inner.head(key);
    if (!head) return undefined;
    if (this.readPlaintext && !(await this.startsWithMagic(key))) return head;
    return { ...head, size: this.plainSizeOf(key, head.size) };
  }

  /** Key names are not encrypted: the folders are the inner store's. */
  folders(prefix: string): Promise<string[]> {
    return this.inner.folders(prefix);
  }

  async *list(prefix: string, options?: ListOptions): AsyncIterable<BlobEntry> {
    for await (const entry of this.inner.list(prefix, options)) {
      // During a migration an entry may be plaintext: one small read each tells (only then).
      if (this.readPlaintext && !(await this.startsWithMagic(entry.key))) yield entry;
      // A size no sealed object has: listed as stored (reads refuse it as an integrity failure).
      else yield { ...entry, size: plainSize(entry.size) ?? entry.size };
    }
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  deletePrefix(prefix: string): Promise<void> {
    return this.inner.deletePrefix(prefix);
  }

  /** Always a stream (redirectSeconds is ignored): a presigned redirect would give the client the ciphertext. */
  async serve(key: string, options: ServeOptions = {}): Promise<BlobServe> {
    return { kind: 'stream', ...(await this.stream(key, options.range)) };
  }

  close(): void {
    this.inner.close();
  }

  /**
   * A plaintext range: the header (one small read, which also gives the stored size, hence the
   * plaintext size), the final chunk (verified, not emitted) unless the range covers it, then only
   * the sealed chunks that cover the range. Should the object be replaced between these reads (its
   * etag changes), the read starts over.
   */
  private async streamRange(key: string, range: ByteRange): Promise<BlobStream> {
    for (let attempt = 0; ; attempt++) {
      let first: BlobStream;
      try {
        first = await this.inner.stream(key, { start: 0, end: HEADER_SIZE - 1 });
      } catch (err) {
        if (!(err instanceof BlobRangeError)) throw err;
        this.allowPlaintext(key); // an empty object: no header
        return this.inner.stream(key, range);
      }
      const header = await buffer(first.stream);
      if (!hasMagic(header)) {
        this.allowPlaintext(key);
        return this.inner.stream(key, range);
      }
      const keys = ObjectKeys.open(key, header, this.masters);
      const plain = this.plainSizeOf(key, first.totalSize);
      const clamped = clampRange(range, plain);
      const finalIndex = chunkCount(plain) - 1;
      if (!clamped || Math.floor(clamped.end / CHUNK_SIZE) !== finalIndex) {
        // The range stops short of the end (or starts past it): the final chunk is verified too, so
        // that an object cut short (its size still one a sealed object can have) fails here as well.
        const tail = await this.inner.stream(key, { start: HEADER_SIZE + finalIndex * SEALED_CHUNK });
        const sealed = await buffer(tail.stream);
        if (tail.etag !== first.etag) {
          if (attempt < RACE_RETRIES) continue;
          throw new Error(`stored object "${key}" was replaced ${attempt + 1} times while it was read`);
        }
        keys.open(finalIndex, true, sealed);
      }
      if (!clamped) throw new BlobRangeError(key, range.start, plain);
      const span = {
        first: Math.floor(clamped.start / CHUNK_SIZE),
        last: Math.floor(clamped.end / CHUNK_SIZE),
        plainTotal: plain,
        ...clamped,
      };
      const body = await this.inner.stream(key, {
        start: HEADER_SIZE + span.first * SEALED_CHUNK,
        end: Math.min(HEADER_SIZE + (span.last + 1) * SEALED_CHUNK, first.totalSize) - 1,
      });
      if (body.etag !== first.etag || body.totalSize !== first.totalSize) {
        body.stream.destroy();
        if (attempt < RACE_RETRIES) continue;
        throw new Error(`stored object "${key}" was replaced ${attempt + 1} times while it was read`);
      }
      return {
        stream: await openedReadable(openChunks(key, keys, ByteReader.of(body.stream), span), body.stream),
        size: clamped.end - clamped.start + 1,
        totalSize: plain,
        range: clamped,
        contentType: body.contentType,
        etag: body.etag,
      };
    }
  }

  private plainSizeOf(key: string, stored: number): number {
    const plain = plainSize(stored);
    if (plain === undefined) throw new BlobIntegrityError(key, `no sealed object is ${stored} bytes long (truncated?)`);
    return plain;
  }

  /** An object without the header: read as it is when a migration allows it, else an integrity failure. */
  private allowPlaintext(key: string): void {
    if (!this.readPlaintext)
      throw new BlobIntegrityError(
        key,
        'no encryption header (written before encryption was turned on, or planted); ' +
          'ENCRYPTION_READ_PLAINTEXT=true reads such objects during a migration',
      );
  }

  private async startsWithMagic(key: string): Promise<boolean> {
    try {
      const head = await this.inner.stream(key, { start: 0, end: MAGIC.length - 1 });
      return hasMagic(await buffer(head.stream));
    } catch (err) {
      if (err instanceof BlobRangeError) return false; // empty
      throw err;
    }
  }
}

/**
 * A Readable of `items` that also releases the store's stream when it ends early or fails. The
 * first chunk is opened before it returns: an object damaged there (a small one: anywhere) fails
 * the call itself, so the API answers a 500 instead of cutting a body it has started.
 */
async function openedReadable(items: AsyncGenerator<Buffer>, source: Readable): Promise<Readable> {
  let first: IteratorResult<Buffer>;
  try {
    first = await items.next();
  } catch (err) {
    source.destroy();
    throw err;
  }
  return Readable.from(
    (async function* () {
      try {
        if (!first.done) {
          yield first.value;
          yield* items;
        }
      } finally {
        source.destroy();
      }
    })(),
    { objectMode: false },
  );
}
