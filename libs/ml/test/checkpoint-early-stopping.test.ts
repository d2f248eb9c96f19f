import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ArtifactStore } from '@tq/storage';
import { storedCheckpoint } from '@tq/ml';

const none = () => ({ specs: [], data: new ArrayBuffer(0) });

/**
 * Early stopping's state goes through the checkpoint's JSON header: a best value still NaN (no
 * epoch measured yet, or only NaN so far) must come back NaN, not null: null compares as 0, and a
 * resumed run would then never see a loss improve on it.
 */
describe('checkpoint: early stopping state', () => {
  it('keeps a NaN best value NaN across save and load', async () => {
    const root = await mkdtemp(join(tmpdir(), 'tq-ckpt-'));
    try {
      const store = storedCheckpoint(new ArtifactStore(root), 'job-nan');
      const state = { bestEpoch: 0, bestValue: Number.NaN, wait: 1, stopped: false };
      await store.save({
        epoch: 1,
        history: [],
        weights: none(),
        optimizer: none(),
        optimizerExtra: {},
        trainSamples: 0,
        trainMs: 0,
        fingerprint: 'f',
        earlyStopping: { state, best: none() },
      });
      const loaded = await store.load();
      assert.ok(Number.isNaN(loaded?.earlyStopping?.state.bestValue), JSON.stringify(loaded?.earlyStopping?.state));
      assert.equal(loaded?.earlyStopping?.state.wait, 1);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
