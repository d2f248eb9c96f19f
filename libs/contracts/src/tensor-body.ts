import { FieldError } from './errors';
import type { PredictRequest } from './infer.schema';

/**
 * A predict body sent as bytes instead of JSON (`Content-Type: application/octet-stream`): the
 * rows of `instances` as float32, little-endian, row-major, featureCount values per row and no
 * header (the version's metadata says how many features a row has). Triton's binary tensor
 * extension and TF Serving's tensor protos exist for the same reason: a 784-value row is ~14 KB of
 * JSON that costs more to parse and check than a small model costs to run; as bytes it is 3,136
 * bytes, read as they are.
 */
export const TENSOR_CONTENT_TYPE = 'application/octet-stream';

/** A binary predict body, decoded (tensorRowsOf): rows × featureCount values, not yet split into rows. */
export interface TensorRows {
  tensor: Float32Array;
}

/** What a predict takes: a JSON body (instances or records) or binary rows. */
export type PredictInput = PredictRequest | TensorRows;

/** Whether a Content-Type header names the binary body (parameters after `;` ignored, any case). */
export function isTensorContentType(header: string | undefined): boolean {
  return header?.split(';')[0]?.trim().toLowerCase() === TENSOR_CONTENT_TYPE;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The float32 values of a binary body (copied: a Buffer from Node's pool is not 4-byte aligned).
 * Refused naming `(body)`: empty, a length that is not whole float32 values, a NaN or infinite
 * value (JSON cannot carry one either, so both bodies take the same rows).
 */
export function tensorRowsOf(bytes: Uint8Array): TensorRows {
  if (bytes.byteLength === 0) throw new FieldError('(body)', 'empty: send at least one row of float32 values');
  if (bytes.byteLength % 4 !== 0)
    throw new FieldError('(body)', `${bytes.byteLength} bytes are not whole float32 values (4 bytes each)`);
  const tensor = new Float32Array(bytes.byteLength / 4);
  if (LITTLE_ENDIAN) new Uint8Array(tensor.buffer).set(bytes);
  else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < tensor.length; i++) tensor[i] = view.getFloat32(i * 4, true);
  }
  for (let i = 0; i < tensor.length; i++)
    if (!Number.isFinite(tensor[i]!))
      throw new FieldError('(body)', `value ${i} is ${tensor[i]}: every value must be a finite number`);
  return { tensor };
}

/** The bytes of a binary body for `rows` (little-endian, as tensorRowsOf reads them). */
export function tensorBytesOf(rows: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength);
  const out = Buffer.alloc(rows.length * 4);
  rows.forEach((v, i) => out.writeFloatLE(v, i * 4));
  return out;
}
