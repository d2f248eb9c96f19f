import { Logger } from '@nestjs/common';
import type { Response } from 'express';
import { pipeline } from 'node:stream/promises';
import type { BlobServe, OpenedFile } from '@tq/storage';

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

/**
 * Answers a stored object: streamed through the API, or a 302 to a presigned URL of the bucket
 * (DOWNLOAD_REDIRECT_SECONDS with BLOB_STORE=s3), so the bytes skip the API.
 */
export function sendServed(res: Response, served: BlobServe, contentType: string): void {
  if (served.kind === 'redirect') {
    res.setHeader('Cache-Control', 'no-store'); // the URL expires
    res.redirect(302, served.url);
    return;
  }
  sendStream(res, served, contentType);
}

/** What to ask the store for: a redirect only when configured (the local store streams regardless). */
export function serveOptions(redirectSeconds: number): { redirectSeconds?: number } {
  return redirectSeconds > 0 ? { redirectSeconds } : {};
}
