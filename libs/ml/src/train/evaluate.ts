import * as tf from '@tensorflow/tfjs';
import type { TabularData } from '../data/tabular-data';
import { modelInputShape, rowsToTensor } from '../model/fit-data';
import { countCorrect, errorSums, sparseCategoricalCrossentropy } from './gradients';
import { lossValue, type LossSpec } from './losses';

export interface Evaluation {
  loss: number;
  /** Classification. */
  accuracy: number;
  /** Regression, in the target's units (preprocessing.target's std), and R². */
  mae?: number;
  rmse?: number;
  r2?: number;
}

/**
 * Mean loss and accuracy (classification) or mae / rmse / r2 (regression) of a model over all
 * rows, in inference mode, `batchSize` rows per forward pass (not tfjs's default of 32), yielding
 * to the event loop between passes. The loss is `loss` (default: unweighted cross-entropy).
 */
export async function evaluate(
  model: tf.LayersModel,
  data: TabularData,
  batchSize = 1024,
  loss?: LossSpec,
): Promise<Evaluation> {
  if (data.rows === 0) return { loss: Number.NaN, accuracy: Number.NaN };
  const regression = data.task === 'regression';
  const shape = modelInputShape(model);
  let lossSum = 0;
  let correct = 0;
  let absSum = 0;
  let sqSum = 0;
  for (let start = 0; start < data.rows; start += batchSize) {
    const n = Math.min(batchSize, data.rows - start);
    const [l, right] = tf.tidy(() => {
      const out = model.predict(rowsToTensor(data, start, n, shape), { batchSize: n }) as tf.Tensor;
      const y = tf.tensor1d(data.y.subarray(start, start + n), regression ? 'float32' : 'int32');
      const value = loss ? lossValue(loss, out, y) : sparseCategoricalCrossentropy(out, y);
      return [value, regression ? errorSums(out, y) : countCorrect(out, y)];
    });
    lossSum += (await l.data())[0]! * n;
    const r = await right.data();
    if (regression) {
      absSum += r[0]!;
      sqSum += r[1]!;
    } else correct += r[0]!;
    tf.dispose([l, right]);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (!regression) return { loss: lossSum / data.rows, accuracy: correct / data.rows };
  return { loss: lossSum / data.rows, accuracy: Number.NaN, ...regressionMetrics(data, absSum, sqSum) };
}

/**
 * mae and rmse in the target's units (errors are on the standardized target: × std) and R² =
 * 1 - SSE / SST, which the standardization does not change (SST about the rows' own mean).
 */
export function regressionMetrics(
  data: Pick<TabularData, 'y' | 'rows' | 'preprocessing'>,
  absSum: number,
  sqSum: number,
): { mae: number; rmse: number; r2: number } {
  const target = data.preprocessing?.target;
  const std = target?.task === 'regression' ? target.std : 1;
  let mean = 0;
  for (let i = 0; i < data.rows; i++) mean += data.y[i]!;
  mean /= data.rows;
  let sst = 0;
  for (let i = 0; i < data.rows; i++) sst += (data.y[i]! - mean) ** 2;
  return {
    mae: (absSum / data.rows) * std,
    rmse: Math.sqrt(sqSum / data.rows) * std,
    r2: sst > 0 ? 1 - sqSum / sst : Number.NaN,
  };
}
