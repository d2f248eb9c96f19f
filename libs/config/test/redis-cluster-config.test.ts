import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '@tq/config';

const load = (env: Record<string, string>) => loadConfig(env);

describe('Redis Cluster settings', () => {
  it('QUEUE_PREFIX takes one non-empty hash tag', () => {
    assert.equal(load({ QUEUE_PREFIX: '{tq}' }).QUEUE_PREFIX, '{tq}');
    assert.equal(load({ QUEUE_PREFIX: 'tq{a}:x' }).QUEUE_PREFIX, 'tq{a}:x');
    assert.equal(load({}).QUEUE_PREFIX, 'tq');
    for (const bad of ['{a}{b}', '{}', 'tq{', 'tq}', '{t q}', `{${'x'.repeat(64)}}`])
      assert.throws(() => load({ QUEUE_PREFIX: bad }), /QUEUE_PREFIX: .*hash tag/, bad);
  });

  it('REDIS_CLUSTER_NODES is a comma list of host:port', () => {
    const config = load({ REDIS_CLUSTER_NODES: '127.0.0.1:7000, redis-b:7001,[::1]:7002', QUEUE_PREFIX: '{tq}' });
    assert.deepEqual(config.REDIS_CLUSTER_NODES, [
      { host: '127.0.0.1', port: 7000 },
      { host: 'redis-b', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    assert.equal(load({}).REDIS_CLUSTER_NODES, undefined, 'unset: one Redis, REDIS_URL');
    assert.equal(load({ REDIS_CLUSTER_NODES: '' }).REDIS_CLUSTER_NODES, undefined, 'empty means unset');
    for (const bad of ['127.0.0.1', 'redis://127.0.0.1:7000', 'h:0', 'h:65536', 'a:1,,b:2'])
      assert.throws(
        () => load({ REDIS_CLUSTER_NODES: bad, QUEUE_PREFIX: '{tq}' }),
        /REDIS_CLUSTER_NODES: .* is not host:port/,
        bad,
      );
  });

  it('refuses a cluster with a prefix without a hash tag, naming the fix', () => {
    assert.throws(
      () => load({ REDIS_CLUSTER_NODES: '127.0.0.1:7000' }),
      /QUEUE_PREFIX: "tq" has no hash tag, which REDIS_CLUSTER_NODES needs: use e.g. "\{tq\}"/,
    );
    assert.throws(() => load({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', QUEUE_PREFIX: 'tq-a' }), /"\{tq-a\}"/);
  });
});
