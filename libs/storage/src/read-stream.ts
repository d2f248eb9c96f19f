import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/** A file opened for the API to stream: the stream and its size, never its path. */
export interface OpenedFile {
  stream: Readable;
  size: number;
}

/**
 * Opens then stats the same descriptor, so the size belongs to the bytes streamed even when
 * an atomic rename replaces the file meanwhile. ENOENT becomes `missing()` (a NotFoundError);
 * anything else (EACCES, EISDIR...) passes through as the fault it is.
 */
export async function openForRead(path: string, missing: () => Error): Promise<OpenedFile> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw missing();
    throw err;
  }
  try {
    const { size } = await handle.stat();
    return { stream: handle.createReadStream(), size };
  } catch (err) {
    await handle.close();
    throw err;
  }
}
