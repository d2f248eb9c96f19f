import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CancelledError, trainRequestSchema } from '@tq/contracts';
import { loadTrainingData } from '@tq/tables';
import { publicTableDatasets } from './table-fixtures';

/** Reading a table for training is a stage of its own: it reports progress and stops when cancelled. */
const ID = '7d1e3f40-5b2a-4c1d-9e8f-0a1b2c3d4e5f';

describe('loading a table for training', () => {
  const request = trainRequestSchema.parse({
    model: { name: 'w', layers: [{ type: 'dense', units: 4, activation: 'softmax' }] },
    dataset: { id: ID },
    fit: { validationSplit: 0.2 },
  });

  it('reports the share of its reads done, rising to the end', async () => {
    const datasets = await publicTableDatasets({ [ID]: { table: 'seattle-weather', labelColumn: 'weather' } });
    const seen: number[] = [];
    const data = await loadTrainingData(request, { datasets, onLoading: (f) => void seen.push(f) });
    assert.equal(data.rows, 1461);
    assert.ok(seen.length >= 1, 'at least the first batch is reported');
    assert.deepEqual(
      seen,
      [...seen].sort((a, b) => a - b),
    );
    assert.ok(seen.every((f) => f > 0 && f <= 1));
  });

  it('stops between batches with the abort reason once cancelled', async () => {
    const datasets = await publicTableDatasets({ [ID]: { table: 'seattle-weather', labelColumn: 'weather' } });
    const cancel = new AbortController();
    let reports = 0;
    await assert.rejects(
      loadTrainingData(request, {
        datasets,
        signal: cancel.signal,
        onLoading: () => {
          reports++;
          cancel.abort(new CancelledError());
        },
      }),
      CancelledError,
    );
    assert.equal(reports, 1, 'no batch is read after the cancel');
  });
});
