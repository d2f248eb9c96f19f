import type { Readable } from 'node:stream';
import { FieldError } from '@tq/contracts';

/**
 * Where the system keeps its bytes (models, datasets, outputs, checkpoints): a local folder (the
 * embedded default) or S3-compatible object storage, behind one interface so nothing outside
 * libs/storage knows a path or a bucket. Keys are built by this lib from safe segments
 * (`blobKey(...)`, e.g. "models/<name>/<version>/model.onnx"); every method refuses any other
 * string with a BlobKeyError. Missing objects are BlobNotFoundError (a NotFoundError naming the key).
 */
export interface BlobStore {
  /** 'local' or 's3', for logs and /health. */
  readonly kind: 'local' | 's3';
  /** Where it stores, for logs: a folder or s3://bucket/prefix (never credentials). */
  readonly location: string;
  /**
   * The start-up check: the folder is writable, or the bucket exists, is reachable and allowed,
   * and honours conditional writes. Throws BlobStoreConfigError naming the setting to fix.
   */
  check(): Promise<void>;
  /**
   * Stores `body` under `key`, replacing what was there; readers see the old object or the new
   * one, never part of one. A stream is written as it comes, in bounded memory. With
   * `ifNoneMatch: '*'` it is a create: when an object is already there (or another writer's create
   * wins a race) it throws BlobExistsError and leaves the object as it was (commit markers).
   */
  put(key: string, body: BlobBody, options?: PutOptions): Promise<BlobHead>;
  /** The whole object in memory: for small objects (metadata, markers). */
  get(key: string): Promise<Buffer>;
  /** The object (or a byte range of it) as a stream, with its size, for copying or serving. */
  stream(key: string, range?: ByteRange): Promise<BlobStream>;
  /** Size, etag and type, or undefined when there is no object. */
  head(key: string): Promise<BlobHead | undefined>;
  /**
   * Every key under `prefix` ('' or "a/b/") once, fetched page by page. No order is promised: the
   * local store and S3's general-purpose buckets give ascending key order, S3 directory buckets
   * (and s3rver) do not.
   */
  list(prefix: string, options?: ListOptions): AsyncIterable<BlobEntry>;
  /**
   * The names of the "folders" right under `prefix` ('' or "a/b/"): the segments that follow it in
   * some key, each once ("a/b/x/1" and "a/b/x/2" give "x"), without listing what is below them (S3:
   * ListObjectsV2 with a delimiter, one request per 1,000 names; local: one readdir). A name that
   * cannot be a key segment is left out. No order is promised.
   */
  folders(prefix: string): Promise<string[]>;
  /** Removes the object; nothing there is not an error. */
  delete(key: string): Promise<void>;
  /** Removes every object under `prefix` ("a/b/"; '' is refused: no store-wide wipe by mistake). */
  deletePrefix(prefix: string): Promise<void>;
  /**
   * What the API needs to answer a GET: a stream with its size and type, or (S3, when a redirect
   * is asked for) a presigned GET URL the client fetches itself. Missing: BlobNotFoundError.
   */
  serve(key: string, options?: ServeOptions): Promise<BlobServe>;
  /** Releases sockets (S3); the store is unusable afterwards. */
  close(): void;
}

/** Bytes, text (UTF-8), or a stream of chunks (written as they come, never all held at once). */
export type BlobBody = Uint8Array | string | Readable | AsyncIterable<Uint8Array | string>;

export interface PutOptions {
  /** Stored with the object on S3; the local store derives the type from the key's extension. */
  contentType?: string;
  /**
   * Stored with the object on S3 (Content-Encoding: a presigned download is decoded by the client);
   * the local store keeps no headers (the registry records the encoding in the version's metadata).
   */
  contentEncoding?: 'gzip';
  /** '*': create only, BlobExistsError when the key is taken. */
  ifNoneMatch?: '*';
  /**
   * Runs once every byte is written and before the object becomes visible (a job's fence: an
   * attempt that lost its job throws here and nothing is stored). Local: before the rename. S3:
   * before the PutObject of a byte body; for a stream, when the source ends, before its last part
   * and the CompleteMultipartUpload (or single PutObject) that makes it visible.
   */
  beforeCommit?: () => Promise<void>;
}

/** Inclusive byte offsets, like HTTP's Range: {start: 0, end: 99} is the first 100 bytes; no end: to the end. */
export interface ByteRange {
  start: number;
  end?: number;
}

export interface BlobHead {
  size: number;
  /** Opaque; changes when the object is replaced. */
  etag: string;
  contentType: string;
}

export interface BlobStream {
  stream: Readable;
  /** Bytes this stream yields (the range's length when a range was asked for). */
  size: number;
  /** The whole object's size (for Content-Range). */
  totalSize: number;
  /** The inclusive range streamed, when one was asked for (clamped to the object). */
  range?: { start: number; end: number };
  contentType: string;
  etag: string;
}

export interface BlobEntry {
  key: string;
  size: number;
  /** Last written, ms since the epoch (S3's LastModified, the file's mtime). */
  modified: number;
}

export interface ListOptions {
  /** Keys per request to the store (S3's MaxKeys, at most 1000); the local store walks folders. */
  pageSize?: number;
}

export interface ServeOptions {
  range?: ByteRange;
  /** Ask for a presigned GET URL valid this long instead of a stream; only S3 gives one. */
  redirectSeconds?: number;
}

export type BlobServe = ({ kind: 'stream' } & BlobStream) | { kind: 'redirect'; url: string; head: BlobHead };

/** A range clamped to an object of `size` bytes, or undefined when it starts past the end. */
export function clampRange(range: ByteRange, size: number): { start: number; end: number } | undefined {
  if (!Number.isSafeInteger(range.start) || range.start < 0) throw new FieldError('range', `bad start ${range.start}`);
  if (range.end !== undefined && (!Number.isSafeInteger(range.end) || range.end < range.start))
    throw new FieldError('range', `bad end ${range.end}`);
  if (range.start >= size) return undefined;
  return { start: range.start, end: Math.min(range.end ?? size - 1, size - 1) };
}
