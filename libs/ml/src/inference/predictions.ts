import type { ClassPrediction } from '@tq/contracts';

/**
 * One prediction per row from a flat [rows, outputSize] score matrix: the scores, the index of the
 * highest one (first on ties), and its class name when the model has a class list.
 */
export function toPredictions(
  scores: Float32Array,
  outputSize: number,
  classes: readonly string[] = [],
): ClassPrediction[] {
  if (!Number.isInteger(outputSize) || outputSize <= 0 || scores.length % outputSize !== 0) {
    throw new RangeError(`scores (${scores.length} values) is not a whole number of rows of ${outputSize}`);
  }
  const out: ClassPrediction[] = [];
  for (let start = 0; start < scores.length; start += outputSize) {
    const row = Array.from(scores.subarray(start, start + outputSize));
    let classIndex = 0;
    for (let k = 1; k < outputSize; k++) if (row[k]! > row[classIndex]!) classIndex = k;
    const label = classes[classIndex];
    out.push(label === undefined ? { scores: row, classIndex } : { scores: row, classIndex, label });
  }
  return out;
}
