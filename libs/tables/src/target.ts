import { FieldError, type TargetSpec } from '@tq/contracts';
import { categoryKey, isMissing, toNumber, type Cell } from './cells';

/**
 * The training target of one label cell: the class index, or the standardized value; NaN when
 * the label is missing (such rows are left out of training and validation).
 */
export function targetEncoder(target: TargetSpec): (cell: Cell, place: () => string) => number {
  if (target.task === 'classification') {
    const index = new Map(target.classes.map((c, i) => [c, i]));
    return (cell, place) => {
      if (isMissing(cell)) return Number.NaN;
      const k = index.get(categoryKey(cell));
      if (k === undefined)
        throw new FieldError(place(), `unknown class ${JSON.stringify(cell)} (classes: ${target.classes.join(', ')})`);
      return k;
    };
  }
  const { mean, std } = target;
  return (cell, place) => {
    if (isMissing(cell)) return Number.NaN;
    const y = toNumber(cell);
    if (Number.isNaN(y)) throw new FieldError(place(), `${JSON.stringify(cell)} is not a number (regression target)`);
    return (y - mean) / std;
  };
}

/** Model outputs of a regression back in the target's units. */
export function decodeRegression(
  target: Extract<TargetSpec, { task: 'regression' }>,
  outputs: ArrayLike<number>,
): number[] {
  return Array.from(outputs, (v) => v * target.std + target.mean);
}
