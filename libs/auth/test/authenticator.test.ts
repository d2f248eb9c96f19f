import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Redis from 'ioredis';
import { UnauthorizedError } from '@tq/contracts';
import { ApiKeyStore, Authenticator, CONFIG_ADMIN, keyPrefix, newApiKey, parseApiKey } from '@tq/auth';

const redisUrl = (): string => process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The configured admin key beside stored keys, whichever form it has. */
describe('Authenticator and TQ_ADMIN_KEY', () => {
  const prefix = `tqtest-authn-${randomUUID().slice(0, 8)}`;
  let redis: Redis;
  let store: ApiKeyStore;

  before(() => {
    redis = new Redis(redisUrl());
    store = new ApiKeyStore(redis, prefix);
  });
  after(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  const bearer = (token: string) => `Bearer ${token}`;

  for (const form of ['tq_<id>_<secret>', 'any string'] as const) {
    it(`an admin key of the form ${form} is the admin; a stored member key stays a member`, async () => {
      const adminKey = form === 'any string' ? `configured-${randomUUID()}` : newApiKey().key;
      const auth = new Authenticator(store, { adminKey, cacheSeconds: 30 });
      const member = await store.create({ name: 'm', tenant: 'team-a', role: 'member' });
      assert.deepEqual(await auth.authenticate(bearer(adminKey)), CONFIG_ADMIN);
      assert.deepEqual(await auth.authenticate(bearer(member.key)), {
        keyId: member.record.id,
        tenant: 'team-a',
        role: 'member',
      });
      // One character off the admin key, and the admin key's id with another secret: refused.
      const near = adminKey.slice(0, -1) + (adminKey.endsWith('A') ? 'B' : 'A');
      await assert.rejects(auth.authenticate(bearer(near)), UnauthorizedError);
      if (form !== 'any string') {
        const sameId = `${keyPrefix(parseApiKey(adminKey)!.id)}${newApiKey().secret}`;
        await assert.rejects(auth.authenticate(bearer(sameId)), UnauthorizedError);
      }
    });
  }
});
