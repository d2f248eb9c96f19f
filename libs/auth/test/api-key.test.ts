import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { bearerToken, keyPrefix, newApiKey, parseApiKey, sameHash, secretHash } from '@tq/auth';

describe('API key format', () => {
  it('a new key is tq_<12 hex>_<43 base64url>, parses back to its id and secret, and is never the same twice', () => {
    const keys = Array.from({ length: 50 }, () => newApiKey());
    for (const { id, secret, key } of keys) {
      assert.match(key, /^tq_[a-f0-9]{12}_[A-Za-z0-9_-]{43}$/);
      assert.deepEqual(parseApiKey(key), { id, secret });
      assert.ok(key.startsWith(keyPrefix(id)));
    }
    assert.equal(new Set(keys.map((k) => k.key)).size, keys.length);
    assert.equal(new Set(keys.map((k) => k.id)).size, keys.length);
  });

  it('parseApiKey refuses anything else', () => {
    const good = newApiKey().key;
    for (const bad of [
      '',
      'tq_',
      good.slice(0, -1), // a secret one character short
      `${good}A`, // one too long
      good.replace(/^tq_/, 'TQ_'),
      good.replace(/^tq_([a-f0-9])/, 'tq_G'), // not hex
      good.toUpperCase(),
      ` ${good}`,
      `${good}\n`,
      good.replace(/_([^_]*)$/, '.$1'),
      `tq_0123456789ab_${'A'.repeat(42)}=`, // padded base64, not base64url
    ])
      assert.equal(parseApiKey(bad), undefined, JSON.stringify(bad));
  });
});

describe('sameHash: the constant-time comparison of two digests', () => {
  const a = secretHash('the secret');

  it('is sha256 of the secret, 32 bytes', () => {
    assert.equal(a.length, 32);
    assert.deepEqual(a, createHash('sha256').update('the secret').digest());
  });

  it('is true only for the same digest', () => {
    assert.equal(sameHash(a, secretHash('the secret')), true);
    assert.equal(sameHash(a, Buffer.from(a)), true);
    assert.equal(sameHash(a, secretHash('the secreT')), false);
    // Every single-bit change, at the start, in the middle and at the end: timingSafeEqual compares them all.
    for (let byte = 0; byte < a.length; byte++)
      for (let bit = 0; bit < 8; bit++) {
        const b = Buffer.from(a);
        b[byte]! ^= 1 << bit;
        assert.equal(sameHash(a, b), false, `byte ${byte} bit ${bit}`);
      }
  });

  it('different lengths are false, not an exception (timingSafeEqual throws on them)', () => {
    assert.equal(sameHash(a, a.subarray(0, 31)), false);
    assert.equal(sameHash(a, Buffer.alloc(0)), false);
    assert.equal(sameHash(Buffer.alloc(0), Buffer.alloc(0)), true);
  });

  it('a stored hex hash read back compares equal to the secret it was made from', () => {
    const { secret } = newApiKey();
    const stored = secretHash(secret).toString('hex');
    assert.equal(sameHash(secretHash(secret), Buffer.from(stored, 'hex')), true);
    assert.equal(sameHash(secretHash(`${secret}x`), Buffer.from(stored, 'hex')), false);
  });
});

describe('bearerToken: the key out of an Authorization header', () => {
  it('takes Bearer (any case) and the password of Basic', () => {
    assert.equal(bearerToken('Bearer abc'), 'abc');
    assert.equal(bearerToken('bearer   abc '), 'abc');
    assert.equal(bearerToken(`Basic ${Buffer.from('anyone:tq_x_y').toString('base64')}`), 'tq_x_y');
    assert.equal(bearerToken(`Basic ${Buffer.from(':a:b').toString('base64')}`), 'a:b');
  });

  it('refuses the rest with a 401 naming Authorization', () => {
    for (const header of [
      undefined,
      '',
      'Bearer',
      'Token abc',
      'Basic',
      `Basic ${Buffer.from('nocolon').toString('base64')}`,
    ])
      assert.throws(
        () => bearerToken(header),
        (err: Error & { status?: number }) => err.status === 401 && /^Authorization: /.test(err.message),
        String(header),
      );
  });
});
