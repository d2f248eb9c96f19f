/** Node's codes for a peer that gave no answer at all: refused, reset, timed out, not resolvable. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EAI_AGAIN',
]);

/**
 * Whether `err` is a socket-level failure (no answer from the peer). The same codes come from
 * Redis's client and from the S3 SDK's HTTP handler: which peer failed is the caller's to say.
 */
export function isSocketError(err: unknown): boolean {
  const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  return code !== undefined && SOCKET_CODES.has(code);
}
