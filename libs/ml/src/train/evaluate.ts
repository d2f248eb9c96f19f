import * as tf from '@tensorflow/tfjs';
import type { TabularData } from '../data/tabular-data';
import { modelInputShape, rowsToTensor } from '../model/fit-data';
import { countCorrect, sparseCategoricalCrossentropy } from './gradients';

export interface Evaluation {
  loss: number;
  accuracy: number;
}

/**
 * Mean cross-entropy and accuracy of a model over all rows, in inference mode, `batchSize` rows
 * per forward pass (not tfjs's default of 32), yielding to the event loop between passes.
 */
export async function evaluate(model: tf.LayersModel, data: TabularData, batchSize = 1024): Promise<Evaluation> {
  if (data.rows === 0) return { loss: Number.NaN, accuracy: Number.NaN };
  const shape = modelInputShape(model);
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < data.rows; start += batchSize) {
    const n = Math.min(batchSize, data.rows - start);
    const [loss, right] = tf.tidy(() => {
      const probs = model.predict(rowsToTensor(data, start, n, shape), { batchSize: n }) as tf.Tensor;
      const y = tf.tensor1d(data.y.subarray(start, start + n), 'int32');
      return [sparseCategoricalCrossentropy(probs, y), countCorrect(probs, y)];
    });
    lossSum += (await loss.data())[0]! * n;
    correct += (await right.data())[0]!;
    tf.dispose([loss, right]);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return { loss: lossSum / data.rows, accuracy: correct / data.rows };
}
