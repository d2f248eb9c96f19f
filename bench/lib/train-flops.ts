import * as tf from '@tensorflow/tfjs';

/**
 * Multiply-add FLOPs (2 per MAC) of one training sample through a Sequential model of dense /
 * conv2d layers: forward, plus the weight gradient, plus the input gradient for every layer but the
 * first (backprop needs no gradient w.r.t. the data). Pooling, activations, loss and the optimizer
 * are memory-bound and left out, so this is the work a perfect GEMM would do.
 */
export function trainFlopsPerSample(model: tf.LayersModel): number {
  let total = 0;
  let first = true;
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    const out = layer.outputShape as number[];
    const kernel = layer.getWeights()[0];
    let forward = 0;
    if (cls === 'Dense' && kernel) forward = 2 * kernel.shape[0] * kernel.shape[1]!;
    if (cls === 'Conv2D' && kernel) {
      const [kh, kw, cin, cout] = kernel.shape as [number, number, number, number];
      forward = 2 * out[1]! * out[2]! * cout * kh * kw * cin;
    }
    if (forward === 0) continue;
    total += forward * (first ? 2 : 3);
    first = false;
  }
  return total;
}
