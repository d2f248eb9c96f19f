import { Transform, type TransformCallback } from 'node:stream';
import { TooLargeError } from '@tq/contracts';

/** Passes bytes through, counting them; past the limit it fails the pipeline with a 413 naming `file`. */
export class ByteLimit extends Transform {
  bytes = 0;

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      done(new TooLargeError('file', `larger than the upload limit of ${this.maxBytes} bytes (MAX_UPLOAD_BYTES)`));
      return;
    }
    done(null, chunk);
  }
}
