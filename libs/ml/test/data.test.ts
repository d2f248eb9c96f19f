import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { builtinDatasetInfo, loadBuiltinDataset, mulberry32, seededPermutation } from '@tq/ml';

describe('built-in datasets', () => {
  it('mnist: 10,000 digits of 784 pixels in 0..1, every class in the validation tail, cached', () => {
    const d = loadBuiltinDataset('mnist');
    assert.equal(d.rows, 10000);
    assert.equal(d.featureCount, 784);
    assert.deepEqual(d.inputShape, [28, 28, 1]);
    assert.equal(d.x.length, 10000 * 784);
    assert.deepEqual(d.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    let min = Infinity;
    let max = -Infinity;
    for (const v of d.x) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    assert.equal(min, 0);
    assert.ok(max > 0.99 && max <= 1);
    const counts = new Array<number>(10).fill(0);
    for (const c of d.y) counts[c]!++;
    assert.ok(
      counts.every((c) => c > 800),
      counts.join(','),
    );
    const tail = new Set(d.y.subarray(9000)); // the last 10% (validationSplit 0.1) holds every digit
    assert.equal(tail.size, 10);
    assert.equal(loadBuiltinDataset('mnist'), d);
  });

  it('iris: 150 rows, 4 features, 50 of each named class', () => {
    const d = loadBuiltinDataset('iris');
    assert.equal(d.rows, 150);
    assert.equal(d.featureCount, 4);
    assert.deepEqual(d.classes, ['setosa', 'versicolor', 'virginica']);
    assert.deepEqual(
      [0, 1, 2].map((c) => d.y.filter((y) => y === c).length),
      [50, 50, 50],
    );
    // The classic first row (5.1, 3.5, 1.4, 0.2) is a setosa wherever the fixed shuffle put it.
    const r = [...Array(150).keys()].find(
      (i) =>
        d.x[i * 4] === Math.fround(5.1) && d.x[i * 4 + 1] === Math.fround(3.5) && d.x[i * 4 + 2] === Math.fround(1.4),
    );
    assert.ok(r !== undefined);
    assert.equal(d.classes[d.y[r]!], 'setosa');
  });
});

describe('seeded shuffle', () => {
  it('is a permutation, the same for the same seed and different for another', () => {
    const a = seededPermutation(1000, 7);
    assert.deepEqual(
      [...a].sort((x, y) => x - y),
      [...Array(1000).keys()],
    );
    assert.deepEqual(seededPermutation(1000, 7), a);
    assert.notDeepEqual(seededPermutation(1000, 8), a);
    const r = mulberry32(1);
    const draws = Array.from({ length: 10000 }, r);
    assert.ok(draws.every((v) => v >= 0 && v < 1));
    const mean = draws.reduce((s, v) => s + v, 0) / draws.length;
    assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
  });
});

describe('builtinDatasetInfo', () => {
  it('describes each built-in dataset as loading it would, without loading it', () => {
    for (const name of ['mnist', 'iris'] as const) {
      const info = builtinDatasetInfo(name);
      const d = loadBuiltinDataset(name);
      assert.deepEqual(
        [info.status, info.rows, info.classes, info.featureColumns, info.bytes],
        ['ready', d.rows, d.classes, d.featureColumns ?? [], d.x.byteLength + d.y.byteLength],
      );
    }
  });
});
