import { BlobKeyError } from './blob-errors';

/**
 * One segment of a key, after `safeSegment` (which turns ':' into '_'): a safe alphabet, no dot at
 * the start, no "..". The local store maps a key to a path one segment per folder, so this is what
 * keeps every key inside its root; S3 gets the same keys, so both stores hold the same layout.
 */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** S3's limit is 1,024 bytes of UTF-8 (our alphabet is ASCII); the S3 key prefix takes some of it. */
export const MAX_BLOB_KEY_LENGTH = 768;

/** Names made from ids: one segment, no dots at the start, nothing but a safe alphabet (':' becomes '_'). */
export function safeSegment(id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_:.-]{0,127}$/.test(id) || id.includes('..'))
    throw new Error(`unsafe path segment "${id}"`);
  return id.replace(/:/g, '_');
}

/** Builds a key from ids (`blobKey('models', name, String(version), 'model.onnx')`): each one a safe segment. */
export function blobKey(...segments: string[]): string {
  if (segments.length === 0) throw new BlobKeyError('', 'no segments');
  const parts = segments.map((s) => {
    try {
      return safeSegment(s);
    } catch {
      throw new BlobKeyError(segments.join('/'), `segment ${JSON.stringify(s)} is not a safe name`);
    }
  });
  return assertBlobKey(parts.join('/'));
}

/** Builds a prefix for list/deletePrefix: `blobPrefix('models', name)` is "models/<name>/". */
export function blobPrefix(...segments: string[]): string {
  return segments.length === 0 ? '' : `${blobKey(...segments)}/`;
}

/** A key as the stores take it: safe segments joined by '/', nothing else (no '..', no '/' at the start, no NUL). */
export function assertBlobKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0) throw new BlobKeyError(String(key), 'empty');
  if (key.length > MAX_BLOB_KEY_LENGTH) throw new BlobKeyError(key, `longer than ${MAX_BLOB_KEY_LENGTH}`);
  for (const segment of key.split('/'))
    if (!SEGMENT.test(segment) || segment.includes('..'))
      throw new BlobKeyError(key, `segment ${JSON.stringify(segment)} is not a safe name`);
  return key;
}

/** A prefix: '' (everything) or a key followed by '/' (a "folder"; partial names are not prefixes here). */
export function assertBlobPrefix(prefix: string): string {
  if (prefix === '') return prefix;
  if (!prefix.endsWith('/')) throw new BlobKeyError(prefix, 'a prefix is empty or ends with "/"');
  assertBlobKey(prefix.slice(0, -1));
  return prefix;
}

/** Whether a listed name is a key this lib could have made (foreign or temporary objects are skipped). */
export function isBlobKey(key: string): boolean {
  try {
    assertBlobKey(key);
    return true;
  } catch {
    return false;
  }
}

/** The content type a key gets when put without one: both stores agree, and the local one keeps no metadata. */
export function contentTypeFor(key: string): string {
  const dot = key.lastIndexOf('.');
  const ext = dot > key.lastIndexOf('/') ? key.slice(dot + 1).toLowerCase() : '';
  return CONTENT_TYPES[ext] ?? 'application/octet-stream';
}

const CONTENT_TYPES: Record<string, string> = {
  json: 'application/json',
  jsonl: 'application/x-ndjson',
  csv: 'text/csv',
  txt: 'text/plain; charset=utf-8',
};
