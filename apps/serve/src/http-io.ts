import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { FieldError, OverloadedError, QuotaExceededError, TooLargeError, TqError } from '@tq/contracts';

/**
 * The body's bytes, refused (413) past maxBytes as soon as the declared length or the bytes read
 * pass it: the rest is read and dropped (never buffered), so the answer reaches the client and
 * the connection stays usable, as express's body parser does it in the API.
 */
export function readBody(req: IncomingMessage, limit: { bytes: number; setting: string }): Promise<Buffer> {
  const maxBytes = limit.bytes;
  const tooLarge = () =>
    new TooLargeError('(body)', `larger than the body limit of ${maxBytes} bytes (${limit.setting})`);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = Number(req.headers['content-length']) > maxBytes;
    if (refused) reject(tooLarge());
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      refused = true;
      chunks.length = 0;
      reject(tooLarge());
    });
    req.once('error', reject);
    req.once('end', () => {
      if (!refused) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
  });
}

/** The API's error body: status, its name, the message, and the issues naming each field. */
export function errorBody(status: number, field: string, reason: string): object {
  return {
    statusCode: status,
    error: STATUS_CODES[status],
    message: `${field}: ${reason}`,
    issues: [{ field, reason }],
  };
}

/**
 * TqErrors answer their status (429 and 503 with Retry-After); anything else a 500 saying nothing
 * of the cause, which `log` gets. Returns the status sent.
 */
export function sendError(res: ServerResponse, err: unknown, log: (message: string) => void): number {
  if (err instanceof OverloadedError || err instanceof QuotaExceededError)
    res.setHeader('Retry-After', String(err.retryAfterSeconds));
  if (err instanceof FieldError) {
    send(res, err.status, {
      statusCode: err.status,
      error: STATUS_CODES[err.status],
      message: err.message,
      issues: err.issues,
    });
    return err.status;
  }
  if (err instanceof TqError) {
    send(res, err.status, { statusCode: err.status, error: STATUS_CODES[err.status], message: err.message });
    return err.status;
  }
  log(`request failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  send(res, 500, { statusCode: 500, error: 'Internal Server Error', message: 'internal error' });
  return 500;
}

export function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
}
