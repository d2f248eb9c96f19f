import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ModelVersionMeta } from '@tq/contracts';
import { LocalVersionMetas } from '@tq/storage';

const meta = (version: number) => ({ name: 'm', version }) as unknown as ModelVersionMeta;

describe('LocalVersionMetas', () => {
  it('forgets a version, or a whole model by prefix, and nothing of another model', () => {
    const c = new LocalVersionMetas(10);
    for (const key of ['t/m/1/', 't/m/10/', 't/m2/1/']) c.set(key, meta(1), c.generation());
    c.forget('t/m/1/');
    assert.equal(c.get('t/m/1/'), undefined);
    assert.ok(c.get('t/m/10/'), 'version 10 is not version 1');
    c.forget('t/m/');
    assert.equal(c.get('t/m/10/'), undefined);
    assert.ok(c.get('t/m2/1/'), 'model m2 is not model m');
  });

  it('does not cache a read that started before an invalidation', () => {
    const c = new LocalVersionMetas(10);
    const started = c.generation();
    c.forget('t/m/1/'); // arrives while the read is in flight: what it read may be the old metadata
    c.set('t/m/1/', meta(1), started);
    assert.equal(c.get('t/m/1/'), undefined);
  });

  it('keeps at most its bound, least recently used out first', () => {
    const c = new LocalVersionMetas(2);
    c.set('a/', meta(1), 0);
    c.set('b/', meta(2), 0);
    c.get('a/');
    c.set('c/', meta(3), 0);
    assert.deepEqual([c.get('a/')?.version, c.get('b/'), c.get('c/')?.version], [1, undefined, 3]);
    assert.equal(c.size, 2);
  });
});
