import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * An API key is `tq_<id>_<secret>`: a 12-hex-digit public id (listed, logged, used to find the
 * record) and 32 random bytes (base64url). Only sha256(secret) is stored. A slow password hash
 * (bcrypt, scrypt) buys nothing for 256 random bits — nobody can guess them — and would cost
 * every request that misses the cache milliseconds of CPU.
 */
const KEY = /^tq_([a-f0-9]{12})_([A-Za-z0-9_-]{43})$/;

export interface ParsedApiKey {
  id: string;
  secret: string;
}

export function newApiKey(): ParsedApiKey & { key: string } {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, secret, key: `tq_${id}_${secret}` };
}

/** The id and secret of a well-formed key; undefined for anything else. */
export function parseApiKey(token: string): ParsedApiKey | undefined {
  const m = KEY.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

/** How a key is shown once created: its id, never its secret. */
export const keyPrefix = (id: string): string => `tq_${id}_`;

export function secretHash(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** Constant-time comparison of two sha256 digests (hashing first makes lengths equal). */
export function sameHash(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
