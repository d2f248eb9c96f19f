import * as tf from '@tensorflow/tfjs';

/** The CNN the benches time (bench/compress's layers): two 3x3 convolutions over a 28x28x1 image. */
export function digitsCnn(): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ filters: 16, kernelSize: 3, activation: 'relu', inputShape: [28, 28, 1] }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10, activation: 'softmax' }),
    ],
  });
}

/** A ReLU MLP of `inputs` features through `hidden` units to a 10-way softmax. */
export function mlp(inputs: number, hidden: readonly number[]): tf.Sequential {
  return tf.sequential({
    layers: [
      ...hidden.map((units, i) =>
        tf.layers.dense({ units, activation: 'relu', ...(i === 0 ? { inputShape: [inputs] } : {}) }),
      ),
      tf.layers.dense({ units: 10, activation: 'softmax' }),
    ],
  });
}
