import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig, ortAllowSpinning } from '@tq/config';

describe('ORT_ALLOW_SPINNING', () => {
  it("unset: each process takes its role's default (spin in a worker, sleep where HTTP shares it)", () => {
    const config = loadConfig({});
    assert.equal(config.ORT_ALLOW_SPINNING, undefined);
    assert.equal(ortAllowSpinning(config, 'worker'), true);
    assert.equal(ortAllowSpinning(config, 'api'), false);
    assert.equal(ortAllowSpinning(config, 'serve'), false);
  });

  it('set: the same for every role; anything but on or off is refused naming it', () => {
    for (const role of ['worker', 'api', 'serve'] as const) {
      assert.equal(ortAllowSpinning(loadConfig({ ORT_ALLOW_SPINNING: 'on' }), role), true);
      assert.equal(ortAllowSpinning(loadConfig({ ORT_ALLOW_SPINNING: 'off' }), role), false);
    }
    assert.throws(() => loadConfig({ ORT_ALLOW_SPINNING: 'yes' }), /ORT_ALLOW_SPINNING/);
  });
});
