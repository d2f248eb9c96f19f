import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig, workerV8Flags } from '@tq/config';

describe('workerV8Flags', () => {
  it('defaults: the heap grows at most 2x between full collections, and V8 does not pretenure', () => {
    assert.deepEqual(workerV8Flags(loadConfig({})), ['--heap-growing-percent=100', '--no-allocation-site-pretenuring']);
  });

  it("each setting's way back to V8's own behaviour", () => {
    assert.deepEqual(workerV8Flags(loadConfig({ WORKER_V8_PRETENURING: 'on' })), ['--heap-growing-percent=100']);
    assert.deepEqual(workerV8Flags(loadConfig({ WORKER_HEAP_GROWING_PERCENT: '0', WORKER_V8_PRETENURING: 'on' })), []);
    assert.deepEqual(workerV8Flags(loadConfig({ WORKER_HEAP_GROWING_PERCENT: '50' })), [
      '--heap-growing-percent=50',
      '--no-allocation-site-pretenuring',
    ]);
  });

  it('anything but on or off is refused naming the variable', () => {
    assert.throws(() => loadConfig({ WORKER_V8_PRETENURING: 'false' }), /WORKER_V8_PRETENURING/);
  });
});
