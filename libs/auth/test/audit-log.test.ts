import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Redis from 'ioredis';
import { auditQuerySchema, type AuditRecord } from '@tq/contracts';
import { AuditLog } from '@tq/auth';

const redisUrl = (): string => process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DAY_MS = 86_400_000;
const record = (action: string, extra: Partial<AuditRecord> = {}): AuditRecord => ({ action, result: 202, ...extra });
const query = (q: Record<string, unknown> = {}) => auditQuerySchema.parse(q);

/** The writer and reader of the audit stream, on real Redis, with an injected clock. */
describe('AuditLog', () => {
  const prefix = `tqtest-audit-${randomUUID().slice(0, 8)}`;
  const made: string[] = [];
  let redis: Redis;
  before(() => {
    redis = new Redis(redisUrl());
  });
  after(async () => {
    if (made.length) await redis.unlink(...made);
    redis.disconnect();
  });

  /** A log of its own per test (a fresh stream), removed after the file. */
  const logOf = (name: string, retentionDays = 90, secrets: string[] = []) => {
    const log = new AuditLog(redis, `${prefix}:${name}`, { retentionDays, secrets });
    made.push(log.key);
    return log;
  };
  const streamIds = async (log: AuditLog) => (await redis.xrange(log.key, '-', '+')).map(([id]) => id);

  it('trims the entries older than the retention when it writes, and never reads them before', async () => {
    const log = logOf('retention', 90);
    const now = new Date();
    const old = await log.append(record('POST /v1/jobs/train'), new Date(now.getTime() - 91 * DAY_MS));
    const kept = await log.append(record('DELETE /v1/jobs/:id'), new Date(now.getTime() - 89 * DAY_MS));
    // Ids carry the injected clock: that is what the trim goes by.
    assert.equal(Number(old.split('-')[0]), now.getTime() - 91 * DAY_MS);
    assert.deepEqual(await streamIds(log), [old, kept]);
    // Still stored (nothing written since), but past the retention: not shown.
    assert.deepEqual(
      (await log.page(query(), now)).items.map((e) => e.id),
      [kept],
    );

    const latest = await log.append(record('POST /v1/keys'), now);
    assert.deepEqual(await streamIds(log), [kept, latest]);
  });

  it('keeps ids growing when a writer clock is behind the last entry', async () => {
    const log = logOf('skew');
    const now = new Date();
    const first = await log.append(record('POST /a'), now);
    const behind = await log.append(record('POST /b'), new Date(now.getTime() - 60_000));
    assert.deepEqual(await streamIds(log), [first, behind]);
    // The entry keeps the time its writer saw; only its id follows the stream.
    const entries = (await log.page(query(), now)).items;
    assert.deepEqual(
      entries.map((e) => [e.action, e.time]),
      [
        ['POST /b', new Date(now.getTime() - 60_000).toISOString()],
        ['POST /a', now.toISOString()],
      ],
    );
  });

  it('stores no API key secret and no configured secret, wherever a client put them', async () => {
    const adminKey = 'X'.repeat(40);
    const log = logOf('secrets', 90, [adminKey]);
    const apiKey = `tq_0123456789ab_${'s'.repeat(43)}`;
    await log.append(
      record(`POST /v1/keys/${apiKey}/x${adminKey}`, { requestId: apiKey, target: { id: apiKey, other: adminKey } }),
    );
    const raw = JSON.stringify(await redis.xrange(log.key, '-', '+'));
    assert.ok(!raw.includes('s'.repeat(43)), raw);
    assert.ok(!raw.includes(adminKey), raw);
    const [entry] = (await log.page(query())).items;
    assert.equal(entry?.requestId, 'tq_0123456789ab_[redacted]');
    assert.deepEqual(entry?.target, { id: 'tq_0123456789ab_[redacted]', other: '[redacted]' });
  });

  it('pages newest first through filters without a gap or a repeat', async () => {
    const log = logOf('paging');
    const start = Date.now() - 1000;
    const written: string[] = [];
    for (let i = 0; i < 25; i++)
      written.push(
        await log.append(
          record(i % 2 ? 'POST /v1/jobs/train' : 'DELETE /v1/jobs/:id', {
            tenant: i % 3 ? 'team-a' : 'team-b',
            result: i % 5 ? 202 : 404,
          }),
          new Date(start + i),
        ),
      );
    const all = async (q: Record<string, unknown>) => {
      const ids: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await log.page(query({ ...q, ...(cursor ? { cursor } : {}) }));
        assert.ok(page.items.length <= Number(q.limit ?? 100));
        ids.push(...page.items.map((e) => e.id));
        cursor = page.nextCursor;
      } while (cursor);
      return ids;
    };
    const newestFirst = [...written].reverse();
    assert.deepEqual(await all({ limit: 4 }), newestFirst);
    assert.deepEqual(await all({ limit: 1000 }), newestFirst);
    const pick = (f: (i: number) => boolean) => newestFirst.filter((id) => f(written.indexOf(id)));
    assert.deepEqual(
      await all({ limit: 3, tenant: 'team-b' }),
      pick((i) => i % 3 === 0),
    );
    assert.deepEqual(
      await all({ limit: 3, result: '4xx' }),
      pick((i) => i % 5 === 0),
    );
    assert.deepEqual(
      await all({ limit: 3, result: '202', action: 'delete' }),
      pick((i) => i % 5 !== 0 && i % 2 === 0),
    );
    assert.deepEqual(
      await all({ limit: 2, since: new Date(start + 10).toISOString(), until: new Date(start + 14).toISOString() }),
      pick((i) => i >= 10 && i <= 14),
    );
  });
});
