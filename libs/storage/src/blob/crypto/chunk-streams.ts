import { BlobIntegrityError } from '../blob-errors';
import { CHUNK_SIZE, SEALED_CHUNK, TAG_SIZE, chunkCount, type ObjectKeys } from './object-cipher';

/**
 * Reads a byte stream in exact amounts (a header, one sealed chunk), holding no more than the
 * amount asked for plus one piece of the source.
 */
export class ByteReader {
  private pending: Buffer[] = [];
  private length = 0;
  private ended = false;

  constructor(private readonly source: AsyncIterator<unknown>) {}

  static of(stream: AsyncIterable<unknown>): ByteReader {
    return new ByteReader(stream[Symbol.asyncIterator]());
  }

  /** `n` bytes, or fewer when the stream ends first. */
  async read(n: number): Promise<Buffer> {
    while (this.length < n && !this.ended) {
      const next = await this.source.next();
      if (next.done) this.ended = true;
      else {
        const piece = toBuffer(next.value);
        if (piece.length > 0) {
          this.pending.push(piece);
          this.length += piece.length;
        }
      }
    }
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    const take = Math.min(n, all.length);
    const rest = all.subarray(take);
    this.pending = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return all.subarray(0, take);
  }

  /** `first` (bytes already read), then whatever is left, as it comes. */
  async *rest(first?: Buffer): AsyncGenerator<Buffer> {
    if (first && first.length > 0) yield first;
    for (const piece of this.pending) yield piece;
    this.pending = [];
    this.length = 0;
    if (this.ended) return;
    for (let next = await this.source.next(); !next.done; next = await this.source.next()) yield toBuffer(next.value);
  }
}

/** What openChunks decrypts: chunks `first`..`last` of an object of `plainTotal` bytes, trimmed to [start, end]. */
export interface ChunkSpan {
  first: number;
  last: number;
  plainTotal: number;
  /** Inclusive plaintext offsets to emit. */
  start: number;
  end: number;
}

/**
 * The plaintext of sealed chunks read from `reader`. Each chunk is read whole, its tag verified,
 * and only then emitted (trimmed to the range): a bad chunk yields nothing before its
 * BlobIntegrityError. A stream that ends early or runs long is an integrity failure too.
 */
export async function* openChunks(
  blobKey: string,
  keys: ObjectKeys,
  reader: ByteReader,
  span: ChunkSpan,
): AsyncGenerator<Buffer> {
  const finalIndex = chunkCount(span.plainTotal) - 1;
  for (let i = span.first; i <= span.last; i++) {
    const final = i === finalIndex;
    const expected = final ? span.plainTotal - i * CHUNK_SIZE + TAG_SIZE : SEALED_CHUNK;
    const sealed = await reader.read(expected);
    if (sealed.length < expected)
      throw new BlobIntegrityError(blobKey, `chunk ${i}: ${sealed.length} of ${expected} bytes (truncated)`);
    const plain = keys.open(i, final, sealed);
    const base = i * CHUNK_SIZE;
    const piece = plain.subarray(Math.max(0, span.start - base), Math.min(plain.length, span.end - base + 1));
    if (piece.length > 0) yield piece;
  }
  if ((await reader.read(1)).length > 0) throw new BlobIntegrityError(blobKey, 'bytes after the last chunk');
}

/**
 * Seals a plaintext stream: the header, then CHUNK_SIZE chunks. A chunk is sealed as non-final only
 * once a byte past it has arrived, so the last one (and only it) carries the final flag; memory
 * held is one chunk plus one piece of the source. `counted.size` is the plaintext's length.
 */
export async function* sealChunks(
  source: AsyncIterable<Uint8Array | string>,
  keys: ObjectKeys,
  header: Buffer,
  counted: { size: number },
): AsyncGenerator<Buffer> {
  yield header;
  let pending: Buffer[] = [];
  let length = 0;
  let index = 0;
  for await (const piece of source) {
    const bytes = toBuffer(piece);
    counted.size += bytes.length;
    pending.push(bytes);
    length += bytes.length;
    if (length <= CHUNK_SIZE) continue;
    // One copy of what is pending, then chunks by offset (a single large piece is not re-copied per chunk).
    const all = Buffer.concat(pending, length);
    let offset = 0;
    for (; all.length - offset > CHUNK_SIZE; offset += CHUNK_SIZE)
      yield keys.seal(index++, false, all.subarray(offset, offset + CHUNK_SIZE));
    pending = [all.subarray(offset)];
    length = all.length - offset;
  }
  yield keys.seal(index, true, Buffer.concat(pending, length));
}

/** Bytes in memory sealed at once: header and chunks, one buffer. */
export function sealBytes(plain: Buffer, keys: ObjectKeys, header: Buffer): Buffer {
  const parts = [header];
  const chunks = chunkCount(plain.length);
  for (let i = 0; i < chunks; i++)
    parts.push(keys.seal(i, i === chunks - 1, plain.subarray(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE)));
  return Buffer.concat(parts);
}

/** A whole stored object opened in memory (get): every chunk verified. */
export function openBytes(blobKey: string, keys: ObjectKeys, body: Buffer, plainTotal: number): Buffer {
  const chunks = chunkCount(plainTotal);
  const parts: Buffer[] = [];
  for (let i = 0; i < chunks; i++) {
    const final = i === chunks - 1;
    const sealed = body.subarray(i * SEALED_CHUNK, final ? body.length : (i + 1) * SEALED_CHUNK);
    parts.push(keys.open(i, final, sealed));
  }
  return Buffer.concat(parts, plainTotal);
}

function toBuffer(piece: unknown): Buffer {
  if (Buffer.isBuffer(piece)) return piece;
  if (typeof piece === 'string') return Buffer.from(piece);
  if (piece instanceof Uint8Array) return Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
  throw new TypeError(`a stream yielded ${typeof piece}, not bytes`);
}
