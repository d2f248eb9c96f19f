import { Transform, type TransformCallback } from 'node:stream';
import { isUtf8 } from 'node:buffer';

/**
 * Passes bytes through unchanged and remembers where the first invalid UTF-8 sequence starts.
 *
 * WHY not a fatal TextDecoder in front of the parser: decoding every byte to a string costs more
 * than csv-parse itself, and an error thrown mid-stream cannot say which row it was in. Instead the
 * parser decodes as usual (invalid bytes become U+FFFD) and the reader, once `badOffset` is set,
 * looks for U+FFFD in the rows that follow to name the row and column. `isUtf8` is native (simdutf).
 */
export class Utf8Guard extends Transform {
  /** Byte offset of the first invalid sequence, once seen. */
  badOffset: number | undefined;
  private seen = 0;
  private carry: Buffer | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.badOffset === undefined) this.check(chunk);
    this.seen += chunk.length;
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    // A multi-byte sequence cut off by the end of the input.
    if (this.badOffset === undefined && this.carry) this.badOffset = this.seen - this.carry.length;
    done();
  }

  private check(chunk: Buffer): void {
    const start = this.seen - (this.carry?.length ?? 0);
    const bytes = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    const end = completeLength(bytes);
    this.carry = end < bytes.length ? Buffer.from(bytes.subarray(end)) : undefined;
    const body = bytes.subarray(0, end);
    if (!isUtf8(body)) this.badOffset = start + firstInvalid(body);
  }
}

/** Length of the prefix that does not end inside a multi-byte sequence. */
export function completeLength(bytes: Buffer): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back]!;
    if (b < 0x80) return bytes.length;
    if (b >= 0xc0) {
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return need > back ? bytes.length - back : bytes.length;
    }
  }
  return bytes.length;
}

/** Offset of the first invalid sequence in `bytes` (known to contain one). */
export function firstInvalid(bytes: Buffer): number {
  let lo = 0;
  let hi = bytes.length;
  // Largest valid prefix by bisection on character boundaries (isUtf8 of a prefix cut inside a
  // character is false, so step back to a boundary before testing).
  while (hi - lo > 1) {
    const mid = boundary(bytes, (lo + hi) >> 1);
    if (mid <= lo) break;
    if (isUtf8(bytes.subarray(0, mid))) lo = mid;
    else hi = mid;
  }
  return isUtf8(bytes.subarray(0, hi)) ? hi : lo;
}

/** `i` moved back over continuation bytes to the start of a character. */
function boundary(bytes: Buffer, i: number): number {
  let k = i;
  while (k > 0 && (bytes[k]! & 0xc0) === 0x80 && i - k < 3) k--;
  return k;
}
