import { z } from 'zod';

/** One master key of ENCRYPTION_KEYS: an id (stored with every object it seals) and 32 bytes. */
export interface EncryptionKey {
  id: string;
  key: Buffer;
}

/**
 * A key id: stored in each object's header (a fixed 32-byte field, so the header has one size and
 * a listed object's plaintext size follows from its stored size without a read).
 */
export const KEY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

/**
 * "id:base64(32 bytes),id:base64(...)": every master key the store may read with. Errors name the
 * entry by its position and id, never by the key's bytes (config errors end up in logs).
 */
export const encryptionKeys = z.string().transform((s, ctx) => {
  const keys: EncryptionKey[] = [];
  const items = s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  items.forEach((item, i) => {
    const colon = item.indexOf(':');
    const id = colon < 0 ? '' : item.slice(0, colon);
    const material = colon < 0 ? '' : item.slice(colon + 1);
    const where = `entry ${i + 1}${id ? ` ("${id}")` : ''}`;
    if (!KEY_ID_PATTERN.test(id))
      return ctx.addIssue({
        code: 'custom',
        message: `${where}: expected "id:base64key" with an id of letters, digits, "_", ".", "-" (32 at most)`,
      });
    const key = Buffer.from(material, 'base64');
    // Buffer.from skips characters that are not base64: a round trip catches a mangled value.
    if (key.length !== 32 || key.toString('base64') !== material)
      return ctx.addIssue({
        code: 'custom',
        message: `${where}: the key must be 32 bytes in base64 (44 characters; \`openssl rand -base64 32\`)`,
      });
    if (keys.some((k) => k.id === id))
      return ctx.addIssue({ code: 'custom', message: `${where}: the id "${id}" is listed twice` });
    keys.push({ id, key });
  });
  if (keys.length === 0 && items.length === 0)
    ctx.addIssue({ code: 'custom', message: 'no keys listed (unset it to store objects unencrypted)' });
  return keys;
});
