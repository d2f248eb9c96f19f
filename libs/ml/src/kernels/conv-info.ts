import * as tf from '@tensorflow/tfjs';

type Rounding = 'floor' | 'round' | 'ceil';

/**
 * The conv/pool geometry whose output shape is dy's. tfjs 4.22's Conv2D, MaxPool and AvgPool
 * gradients drop dimRoundingMode when they call the backprop kernels, so with a numeric pad and
 * 'ceil'/'round' the kernel receives attrs that describe another output size (the stock cpu kernels
 * then silently compute on the wrong grid). The given mode is tried first, then each other mode;
 * if none yields dy's shape the error names both shapes.
 */
export function infoMatchingDy(
  kernel: string,
  dyShape: number[],
  given: Rounding | undefined,
  make: (rounding: Rounding | undefined) => tf.backend_util.Conv2DInfo,
): tf.backend_util.Conv2DInfo {
  const first = make(given);
  if (tf.util.arraysEqual(first.outShape, dyShape)) return first;
  for (const mode of ['floor', 'round', 'ceil'] as const) {
    const info = make(mode);
    if (tf.util.arraysEqual(info.outShape, dyShape)) return info;
  }
  throw new Error(
    `${kernel}: dy shape [${dyShape}] does not match the forward output [${first.outShape}] for input [${first.inShape}]`,
  );
}
