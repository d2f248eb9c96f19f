import { Logger } from '@nestjs/common';
import type { Response } from 'express';
import { pipeline } from 'node:stream/promises';
import type { OpenedFile } from '@tq/storage';

const logger = new Logger('HTTP');

/** Streams an opened storage file; a read error after the headers went out can only cut the body. */
export function sendStream(res: Response, file: OpenedFile, contentType: string): void {
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', String(file.size));
  pipeline(file.stream, res).catch((err: unknown) => {
    // A client that hangs up mid-download is no fault of ours.
    if ((err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE')
      logger.error(err instanceof Error ? err.stack : String(err));
  });
}
