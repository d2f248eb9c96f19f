import type { Readable } from 'node:stream';

/** An object opened for the API to stream: the stream and its size, never where it lives. */
export interface OpenedFile {
  stream: Readable;
  size: number;
}
