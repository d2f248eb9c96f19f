import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { isSocketError } from '@tq/contracts';
import {
  BlobExistsError,
  BlobKeyError,
  BlobNotFoundError,
  BlobRangeError,
  BlobStoreConfigError,
  BlobStoreUnavailableError,
} from './blob-errors';
import { assertBlobKey, assertBlobPrefix, contentTypeFor, isBlobKey } from './blob-key';
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
} from './blob-store';

export interface S3BlobStoreOptions {
  bucket: string;
  /** Put before every key ("tq/" keeps this system's objects apart in a shared bucket); '' for none. */
  prefix?: string;
  /** An S3-compatible endpoint (MinIO, a test server); AWS's own when unset. */
  endpoint?: string;
  region?: string;
  /** Path-style URLs (endpoint/bucket/key), which MinIO and most S3-compatible servers need. */
  forcePathStyle?: boolean;
  /** Static credentials; the SDK's default chain (instance role, ~/.aws) when unset. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Bytes per part of a streamed upload (S3's minimum is 5 MiB). */
  partSizeBytes?: number;
  /** Parts uploaded at once: memory held by one streamed put is about partSizeBytes × (queueSize + 1). */
  queueSize?: number;
}

/** S3's minimum part (all but the last); also the default, so a streamed put holds ~15 MiB at most. */
const MIN_PART_SIZE = 5 * 1024 * 1024;
/** ConditionalRequestConflict (409): S3 saw concurrent conditional writes and asks for a retry. */
const CONFLICT_RETRIES = 3;

/**
 * The blob store in an S3 bucket (or any S3-compatible server: MinIO, Ceph, R2). Keys are the same
 * as the local store's, under an optional prefix. Conditional creates send `If-None-Match: *`,
 * which AWS S3 (since 2024-08) and MinIO honour on PutObject and CompleteMultipartUpload: the
 * create is atomic on the server. check() refuses an endpoint that ignores it (it would let two
 * writers both "win" a commit marker).
 */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3';
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(private readonly options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    this.prefix = normalizePrefix(options.prefix ?? '');
    this.partSize = Math.max(MIN_PART_SIZE, options.partSizeBytes ?? MIN_PART_SIZE);
    this.queueSize = Math.max(1, options.queueSize ?? 2);
    this.client = new S3Client({
      region: options.region ?? 'us-east-1',
      forcePathStyle: options.forcePathStyle ?? false,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      // The SDK's default (CRC32 on every request, aws-chunked bodies) is not understood by every
      // S3-compatible server (s3rver stores the chunk framing as the object); checksums are still
      // sent where S3 requires them (DeleteObjects). TLS guards the bytes on the wire.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    // Every command (paginators and multipart uploads included): a store that does not answer is
    // a BlobStoreUnavailableError naming it, not a bare ECONNREFUSED that reads as Redis's.
    this.client.middlewareStack.add(
      (next) => async (args) => {
        try {
          return await next(args);
        } catch (err) {
          throw unreachable(err) ? new BlobStoreUnavailableError(this.location, String(err), { cause: err }) : err;
        }
      },
      { step: 'initialize', name: 'tqBlobStoreUnavailable' },
    );
  }

  get location(): string {
    return `s3://${this.bucket}/${this.prefix}${this.options.endpoint ? ` at ${this.options.endpoint}` : ''}`;
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      throw this.configError(err);
    }
    // A probe of conditional writes: the second create of the same key must be refused. Beside the
    // prefix, not under a shared ".tq-probe/" folder: s3rver (the tests' S3) removes a folder its
    // last object leaves, and a process starting at the same moment then failed to write its own
    // probe there (ENOENT, which crashed s3rver: CI, the fleet test).
    const probe = `${this.prefix}.tq-probe-${randomUUID()}`;
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: probe, Body: 'probe', IfNoneMatch: '*' }),
      );
      let honoured = false;
      try {
        await this.client.send(
          new PutObjectCommand({ Bucket: this.bucket, Key: probe, Body: 'probe', IfNoneMatch: '*' }),
        );
      } catch (err) {
        if (!isStatus(err, 412)) throw err;
        honoured = true;
      }
      if (!honoured)
        throw new BlobStoreConfigError(
          'S3_ENDPOINT',
          `${this.endpointName()} ignores If-None-Match on PutObject, so commit markers would not be atomic`,
        );
    } catch (err) {
      throw err instanceof BlobStoreConfigError ? err : this.configError(err);
    } finally {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: probe })).catch(() => {});
    }
  }

  async put(key: string, body: BlobBody, options: PutOptions = {}): Promise<BlobHead> {
    const Key = this.objectKey(key);
    const contentType = options.contentType ?? contentTypeFor(key);
    const encoding = options.contentEncoding ? { ContentEncoding: options.contentEncoding } : {};
    const conditional = options.ifNoneMatch === '*' ? { IfNoneMatch: '*' } : {};
    if (typeof body === 'string' || body instanceof Uint8Array) {
      const bytes = Buffer.from(body);
      await options.beforeCommit?.();
      for (let attempt = 0; ; attempt++) {
        try {
          const res = await this.client.send(
            new PutObjectCommand({
              Bucket: this.bucket,
              Key,
              Body: bytes,
              ContentType: contentType,
              ...encoding,
              ...conditional,
            }),
          );
          return { size: bytes.length, etag: res.ETag ?? '', contentType };
        } catch (err) {
          if (isStatus(err, 412)) throw new BlobExistsError(key);
          if (!isStatus(err, 409) || attempt >= CONFLICT_RETRIES) throw err;
          await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
        }
      }
    }
    // A stream goes up in parts of partSize (one PutObject when it fits in one), queueSize at a
    // time, so memory stays bounded whatever the object's size. lib-storage passes IfNoneMatch on
    // to CompleteMultipartUpload (or the single PutObject), where S3 applies it.
    let size = 0;
    // The source's own failure, kept: when it breaks a multipart upload, lib-storage aborts the
    // upload and, if that abort fails too (s3rver has no AbortMultipartUpload), throws the abort's
    // error instead, so the caller would never see why its write failed.
    let sourceError: { error: unknown } | undefined;
    const beforeCommit = options.beforeCommit;
    const counted = Readable.from(
      (async function* () {
        try {
          for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
            const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
            size += bytes.length;
            yield bytes;
          }
          // The source is done; lib-storage still holds the last part and has completed nothing.
          await beforeCommit?.();
        } catch (error) {
          sourceError = { error };
          throw error;
        }
      })(),
    );
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key, Body: counted, ContentType: contentType, ...encoding, ...conditional },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    try {
      const res = await upload.done();
      return { size, etag: res.ETag ?? '', contentType };
    } catch (err) {
      if (sourceError) throw sourceError.error;
      if (isStatus(err, 412)) throw new BlobExistsError(key);
      throw err;
    }
  }

  async get(key: string): Promise<Buffer> {
    const res = await this.getObject(key);
    const bytes = await res.Body!.transformToByteArray();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async stream(key: string, range?: ByteRange): Promise<BlobStream> {
    if (range) clampRange(range, Number.MAX_SAFE_INTEGER); // validates before the request
    let res;
    try {
      res = await this.getObject(key, range);
    } catch (err) {
      if (range && isStatus(err, 416)) {
        const head = await this.head(key);
        if (!head) throw new BlobNotFoundError(key);
        throw new BlobRangeError(key, range.start, head.size);
      }
      throw err;
    }
    const size = res.ContentLength ?? 0;
    const parsed = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.ContentRange ?? '');
    const base = {
      stream: res.Body as Readable,
      size,
      contentType: res.ContentType ?? contentTypeFor(key),
      etag: res.ETag ?? '',
    };
    if (!range || !parsed) return { ...base, totalSize: size };
    return { ...base, totalSize: Number(parsed[3]), range: { start: Number(parsed[1]), end: Number(parsed[2]) } };
  }

  async head(key: string): Promise<BlobHead | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return {
        size: res.ContentLength ?? 0,
        etag: res.ETag ?? '',
        contentType: res.ContentType ?? contentTypeFor(key),
      };
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<BlobEntry> {
    assertBlobPrefix(prefix);
    const pages = paginateListObjectsV2(
      { client: this.client, pageSize: Math.min(1000, Math.max(1, options.pageSize ?? 1000)) },
      { Bucket: this.bucket, Prefix: this.prefix + prefix },
    );
    for await (const page of pages)
      for (const object of page.Contents ?? []) {
        const key = object.Key?.slice(this.prefix.length) ?? '';
        if (isBlobKey(key)) yield { key, size: object.Size ?? 0, modified: object.LastModified?.getTime() ?? 0 };
      }
  }

  async folders(prefix: string): Promise<string[]> {
    assertBlobPrefix(prefix);
    const names: string[] = [];
    const from = this.prefix + prefix;
    const pages = paginateListObjectsV2({ client: this.client }, { Bucket: this.bucket, Prefix: from, Delimiter: '/' });
    for await (const page of pages)
      for (const common of page.CommonPrefixes ?? []) {
        const name = common.Prefix?.slice(from.length, -1) ?? '';
        if (isBlobKey(name)) names.push(name);
      }
    return names;
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  async deletePrefix(prefix: string): Promise<void> {
    if (assertBlobPrefix(prefix) === '') throw new BlobKeyError(prefix, 'deletePrefix needs a non-empty prefix');
    // One DeleteObjects per listed page (at most 1,000 keys, S3's limit for both).
    const pages = paginateListObjectsV2({ client: this.client }, { Bucket: this.bucket, Prefix: this.prefix + prefix });
    for await (const page of pages) {
      const objects = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
      if (objects.length === 0) continue;
      const res = await this.client.send(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: objects, Quiet: true } }),
      );
      const failed = res.Errors ?? [];
      if (failed.length > 0)
        throw new Error(
          `deleting ${prefix}: ${failed.length} objects not deleted, e.g. ${failed[0]?.Key}: ${failed[0]?.Message}`,
        );
    }
  }

  async serve(key: string, options: ServeOptions = {}): Promise<BlobServe> {
    if (options.redirectSeconds === undefined) return { kind: 'stream', ...(await this.stream(key, options.range)) };
    const head = await this.head(key);
    if (!head) throw new BlobNotFoundError(key);
    const url = await getSignedUrl(
      this.client,
      new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }),
      { expiresIn: options.redirectSeconds },
    );
    return { kind: 'redirect', url, head };
  }

  close(): void {
    this.client.destroy();
  }

  private async getObject(key: string, range?: ByteRange) {
    const Range = range ? `bytes=${range.start}-${range.end ?? ''}` : undefined;
    try {
      return await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), ...(Range ? { Range } : {}) }),
      );
    } catch (err) {
      if (isStatus(err, 404)) throw new BlobNotFoundError(key);
      throw err;
    }
  }

  private objectKey(key: string): string {
    return this.prefix + assertBlobKey(key);
  }

  private endpointName(): string {
    return this.options.endpoint ?? `AWS S3 (${this.options.region ?? 'us-east-1'})`;
  }

  /** What a failed HeadBucket (or probe) means, as the setting to fix. */
  private configError(err: unknown): BlobStoreConfigError {
    const where = `bucket "${this.bucket}" at ${this.endpointName()}`;
    if (isStatus(err, 404)) return new BlobStoreConfigError('S3_BUCKET', `${where} does not exist`, { cause: err });
    if (isStatus(err, 403) || isStatus(err, 401))
      return new BlobStoreConfigError(
        'S3_BUCKET',
        `access to ${where} is denied: check S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY and the bucket's policy`,
        { cause: err },
      );
    if (isStatus(err, 301) || isStatus(err, 400))
      return new BlobStoreConfigError('S3_REGION', `${where} is not in region ${this.options.region ?? 'us-east-1'}`, {
        cause: err,
      });
    if (err instanceof S3ServiceException)
      return new BlobStoreConfigError('S3_BUCKET', `${where}: ${err.name}: ${err.message}`, { cause: err });
    return new BlobStoreConfigError('S3_ENDPOINT', `cannot reach ${where}: ${String(err)}`, { cause: err });
  }
}

/** No HTTP answer at all (socket-level), as Node and the SDK's HTTP handler report it. */
function unreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  // An answer came (any status): the store is there.
  if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode) return false;
  return isSocketError(err) || err.name === 'TimeoutError';
}

/** The HTTP status an S3 error came with (the SDK names errors per operation; the status is stable). */
function isStatus(err: unknown, status: number): boolean {
  const meta = (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata;
  return meta?.httpStatusCode === status;
}

/** '' or safe segments ending in '/', so the prefix can never merge with a key into a new segment. */
function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  try {
    assertBlobKey(trimmed);
  } catch {
    throw new BlobStoreConfigError('S3_PREFIX', `"${prefix}" is not made of safe segments joined by "/"`);
  }
  return `${trimmed}/`;
}
