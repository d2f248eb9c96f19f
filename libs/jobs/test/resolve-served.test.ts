import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NotFoundError, type AliasTarget } from '@tq/contracts';
import { pickServed, resolveServed, type AliasLookup } from '@tq/jobs';

const lookup = (aliases: Record<string, AliasTarget>): AliasLookup => ({
  get: async (tenant, name, alias) => (tenant === 't' && name === 'm' ? aliases[alias] : undefined),
});

describe('resolveServed', () => {
  const target = { version: 3, canary: { version: 4, weight: 0.25 } };

  it('draws below the weight go to the canary, the rest to the version; 0 and 1 are exact', () => {
    assert.deepEqual(pickServed(target, 0), { version: 4, canary: true });
    assert.deepEqual(pickServed(target, 0.2499), { version: 4, canary: true });
    assert.deepEqual(pickServed(target, 0.25), { version: 3, canary: false });
    assert.deepEqual(pickServed({ version: 3, canary: { version: 4, weight: 0 } }, 0), { version: 3, canary: false });
    assert.deepEqual(pickServed({ version: 3, canary: { version: 4, weight: 1 } }, 0.9999), {
      version: 4,
      canary: true,
    });
    assert.deepEqual(pickServed({ version: 3 }, 0), { version: 3, canary: false });
  });

  it('digits are a version, a name an alias of the tenant; an unknown alias is a 404 naming "alias"', async () => {
    const aliases = lookup({ prod: target });
    assert.deepEqual(await resolveServed(aliases, 't', 'm', '7', () => 0), { version: 7, canary: false });
    assert.deepEqual(await resolveServed(aliases, 't', 'm', 'prod', () => 0.1), {
      version: 4,
      canary: true,
      alias: 'prod',
    });
    assert.deepEqual(await resolveServed(aliases, 't', 'm', 'prod', () => 0.9), {
      version: 3,
      canary: false,
      alias: 'prod',
    });
    for (const [tenant, alias] of [
      ['other', 'prod'],
      ['t', 'nope'],
    ] as const)
      await assert.rejects(
        resolveServed(aliases, tenant, 'm', alias),
        (err: unknown) => err instanceof NotFoundError && err.field === 'alias',
      );
  });
});
