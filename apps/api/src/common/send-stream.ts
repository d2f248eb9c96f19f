import { Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { BlobServe, OpenedFile, ServedArtifact } from '@tq/storage';

const logger = new Logger('HTTP');

/**
 * Streams an opened storage file (through gunzip when `gunzip`: `file.size` is then the decoded
 * size); a read error after the headers went out can only cut the body.
 */
export function sendStream(res: Response, file: OpenedFile, contentType: string, gunzip = false): void {
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', String(file.size));
  const sent = gunzip ? pipeline(file.stream, createGunzip(), res) : pipeline(file.stream, res);
  sent.catch((err: unknown) => {
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

/**
 * A model artifact. One stored gzipped (a pruned version's weights) goes out as stored, with
 * Content-Encoding: gzip, to a client that accepts it (fetch, browsers, stock tf.loadLayersModel,
 * curl --compressed), and is decoded on the way to one that does not; a presigned redirect leads to
 * the bucket object, stored with the same Content-Encoding.
 */
export function sendArtifact(req: Request, res: Response, served: ServedArtifact, contentType: string): void {
  if (!served.encoding || served.kind === 'redirect') return sendServed(res, served, contentType);
  res.setHeader('Vary', 'Accept-Encoding');
  if (req.acceptsEncodings('gzip') === 'gzip') {
    res.setHeader('Content-Encoding', 'gzip');
    return sendStream(res, served, contentType);
  }
  sendStream(res, { stream: served.stream, size: served.decodedSize ?? served.size }, contentType, true);
}
