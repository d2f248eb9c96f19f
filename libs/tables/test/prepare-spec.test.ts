import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FieldError } from '@tq/contracts';
import { prepareTable, profileTable, tabularOf } from '@tq/tables';
import { openPublic } from './public-tables';

/** prepareTable with a given spec (fine-tuning a version that has preprocessing.json): encode only, no refit. */
describe('prepareTable with a given spec', () => {
  it('encodes with the spec as it is, deterministically, and refuses a spec for another label', async () => {
    const profile = await profileTable(await openPublic('cars'), { label: 'Miles_per_Gallon' });
    const fitted = await prepareTable(() => openPublic('cars'), { profile, validationSplit: 0.2, seed: 1 });
    const again = await prepareTable(() => openPublic('cars'), { profile, validationSplit: 0.2, seed: 1 });
    assert.deepEqual(again, fitted);
    // Training takes both splits as one matrix: the same memory, not a copy of it.
    const data = tabularOf(fitted);
    assert.equal(data.x.buffer, fitted.train.features.buffer);
    assert.deepEqual(data.x.subarray(fitted.train.features.length), fitted.validation.features);
    // Another split would fit other statistics; with the spec given the numbers stay the version's.
    const reused = await prepareTable(() => openPublic('cars'), {
      profile,
      validationSplit: 0.5,
      seed: 9,
      spec: fitted.spec,
    });
    assert.equal(reused.spec, fitted.spec);
    assert.equal(reused.train.rows + reused.validation.rows, fitted.train.rows + fitted.validation.rows);
    const refit = await prepareTable(() => openPublic('cars'), { profile, validationSplit: 0.5, seed: 9 });
    assert.notDeepEqual(refit.spec, fitted.spec);

    const other = await profileTable(await openPublic('cars'), { label: 'Horsepower' });
    await assert.rejects(
      prepareTable(() => openPublic('cars'), { profile: other, validationSplit: 0.2, spec: fitted.spec }),
      (e: unknown) => e instanceof FieldError && e.field === 'model.from',
    );
  });
});
