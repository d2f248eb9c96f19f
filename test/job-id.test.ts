import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { JobName, PUBLIC_JOB_TYPES } from '@tq/contracts';
import { isIssuedJobId, newJobId, typeOfJobId } from '../apps/api/src/jobs/job-id';

describe('job ids', () => {
  const key = randomBytes(32);

  it('carry a tag that verifies under the key that issued them, and only under it', () => {
    for (const type of PUBLIC_JOB_TYPES) {
      const id = newJobId(key, type);
      assert.match(id, new RegExp(`^${type}-[0-9a-f-]{36}-[0-9a-f]{12}$`));
      assert.equal(typeOfJobId(id), type);
      assert.ok(isIssuedJobId(key, id), id);
      assert.ok(!isIssuedJobId(randomBytes(32), id), 'another key');
    }
  });

  it('are refused when made up, retyped, truncated or tampered with', () => {
    const id = newJobId(key, JobName.Train);
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === '0' ? '1' : '0') + s.slice(i + 1);
    assert.ok(!isIssuedJobId(key, flip(id, id.length - 1)), 'tag changed');
    assert.ok(!isIssuedJobId(key, flip(id, 10)), 'body changed');
    assert.ok(!isIssuedJobId(key, id.replace(/^train/, 'infer')), 'type changed');
    assert.ok(!isIssuedJobId(key, id.slice(0, -13)), 'no tag');
    assert.ok(!isIssuedJobId(key, `train-${randomUUID()}-${randomBytes(6).toString('hex')}`), 'made up');
    assert.ok(!isIssuedJobId(key, 'train-x-0123456789ab'), 'malformed body');
  });

  it('are deterministic under an Idempotency-Key, tag included', () => {
    const a = newJobId(key, JobName.Train, 'order-42');
    assert.equal(newJobId(key, JobName.Train, 'order-42'), a);
    assert.notEqual(newJobId(key, JobName.Train, 'order-43'), a);
    assert.match(a, /^train-k[0-9a-f]{32}-[0-9a-f]{12}$/);
    assert.ok(isIssuedJobId(key, a));
  });
});
