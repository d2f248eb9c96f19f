import { ConflictError, FieldError, NotFoundError, TqError } from '@tq/contracts';

/** No object under this key (never written, deleted, or deleted from under a version). 404 naming the key. */
export class BlobNotFoundError extends NotFoundError {
  constructor(
    readonly key: string,
    field = 'key',
  ) {
    super(field, `no stored object "${key}"`);
  }
}

/**
 * Something the store did not write sits at the key: a symlink (in the file's place or any folder
 * on its way) or a hard-linked file, planted in the local folder. Not followed, not read, not
 * listed: to a client it is no stored object (404, the same message as a missing one, so nothing
 * about the folder leaks), and a worker fails the job at once instead of retrying. `why` is for logs.
 */
export class BlobUnsafeFileError extends BlobNotFoundError {
  constructor(
    key: string,
    readonly why: string,
  ) {
    super(key);
  }
}

/** A conditional create (`ifNoneMatch: '*'`) met an object already there: another writer won. 409. */
export class BlobExistsError extends ConflictError {
  constructor(readonly key: string) {
    super('key', `object "${key}" already exists`);
  }
}

/** A key or prefix that is not built from safe segments, or that resolves outside the store. 400. */
export class BlobKeyError extends FieldError {
  constructor(key: string, reason: string) {
    super('key', `unsafe blob key ${JSON.stringify(key)}: ${reason}`);
  }
}

/** A byte range that starts past the end of the object. 416, like HTTP's Range Not Satisfiable. */
export class BlobRangeError extends FieldError {
  override readonly status: number = 416;

  constructor(key: string, start: number, size: number) {
    super('range', `range starts at byte ${start} but "${key}" has ${size} bytes`);
  }
}

/**
 * The store as configured cannot work (a bucket that does not exist, denied access, an endpoint
 * that does not answer or ignores conditional writes). A start-up error, never a request's fault:
 * it names the setting to fix.
 */
export class BlobStoreConfigError extends Error {
  constructor(
    readonly setting: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`${setting}: ${reason}`, options);
    this.name = 'BlobStoreConfigError';
  }
}

/**
 * The blob store did not answer (connection refused or reset, a timeout, a name that does not
 * resolve): a passing fault, so not a TqError (a job hitting it is retried); the API answers 503
 * with Retry-After naming the store, never a Redis outage (its socket codes are the same ones).
 */
export class BlobStoreUnavailableError extends Error {
  readonly retryAfterSeconds = 5;

  constructor(location: string, reason: string, options?: ErrorOptions) {
    super(`the blob store ${location} is unreachable: ${reason}`, options);
    this.name = 'BlobStoreUnavailableError';
  }
}

/**
 * A stored object is not what this system wrote: a flipped byte, a truncation, chunks reordered,
 * another object's bytes, or (with encryption on) no encryption header at all. Its bytes are never
 * used. A server fault, not the client's: the API answers 500 with this message (the key, no
 * cryptographic detail; `detail` is for the log), and a job hitting it fails at once (a TqError:
 * retrying reads the same bytes).
 */
export class BlobIntegrityError extends TqError {
  readonly status = 500;

  constructor(
    readonly key: string,
    /** What failed, for the log (which chunk, which check). */
    readonly detail: string,
  ) {
    super(`stored object "${key}" failed its integrity check (tampered, truncated or corrupted) and was not used`);
  }
}

/**
 * An encrypted object names a master key id that ENCRYPTION_KEYS does not list (a key rotated out
 * before its objects were re-encrypted). A configuration problem, named like a start-up error.
 */
export class BlobKeyUnavailableError extends BlobStoreConfigError {
  constructor(
    readonly key: string,
    readonly keyId: string,
  ) {
    super(
      'ENCRYPTION_KEYS',
      `stored object "${key}" is encrypted under key id "${keyId}", which is not listed: ` +
        `add "${keyId}:<base64 key>" back to ENCRYPTION_KEYS to read it`,
    );
    this.name = 'BlobKeyUnavailableError';
  }
}
