import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Artifacts worth compressing at rest: weight files and graphs (the JSON beside them is small). */
const ENCODABLE = /\.(bin|onnx)$/;
/** Smaller files: gzip's header and a second pass are not worth it. */
const MIN_BYTES = 4096;
/**
 * Stored gzipped only when that makes the file at least this much smaller. Dense trained weights
 * gzip about 1.1× (float32: 1.09× the MNIST MLP of bench/compress, 1.12× its CNN; uint8: 1.15× the
 * demo's digits v2): not worth a decode on every load; 90%-sparse ones gzip 5-6× (float32 5.7×,
 * uint8 5.3×: digits fine-tuned at 90% through npm start).
 */
const MIN_GAIN = 1.25;
/** Above this, a 1 MiB sample from the middle is compressed first: a dense file is not gzipped whole for nothing. */
const PROBE_ABOVE = 4 * 1024 * 1024;
const PROBE_BYTES = 1024 * 1024;

/** How a version's artifact is stored when not as its own bytes (ModelVersionMeta.storedAs). */
export interface StoredEncoding {
  encoding: 'gzip';
  /** Bytes stored. */
  bytes: number;
}

/**
 * The bytes to store for `file`: gzipped when that pays (MIN_GAIN), so unstructured sparsity shows
 * on disk and in the bucket; else the data as given. Readers decode (decodeArtifact), and the API
 * serves the stored bytes with Content-Encoding: gzip to clients that accept it.
 */
export async function encodeArtifact(
  file: string,
  data: string | Uint8Array,
): Promise<{ body: string | Uint8Array; encoded?: StoredEncoding }> {
  if (typeof data === 'string' || !ENCODABLE.test(file) || data.length < MIN_BYTES) return { body: data };
  if (data.length > PROBE_ABOVE) {
    const mid = Math.floor((data.length - PROBE_BYTES) / 2);
    const probe = await gzipAsync(data.subarray(mid, mid + PROBE_BYTES));
    if (probe.length * MIN_GAIN > PROBE_BYTES) return { body: data };
  }
  const packed = await gzipAsync(data);
  if (packed.length * MIN_GAIN > data.length) return { body: data };
  return { body: packed, encoded: { encoding: 'gzip', bytes: packed.length } };
}

/** An artifact's own bytes from what is stored (`size`: its own size, a bound on the output). */
export async function decodeArtifact(
  stored: Buffer,
  encoded: StoredEncoding | undefined,
  size: number,
): Promise<Buffer> {
  if (!encoded) return stored;
  return gunzipAsync(stored, { maxOutputLength: Math.max(1, size) });
}
