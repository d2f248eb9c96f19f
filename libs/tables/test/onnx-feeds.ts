import * as ort from 'onnxruntime-node';
import type { PreprocessingSpec } from '@tq/contracts';
import { isMissing, toDays, toNumber, type Cell } from '@tq/tables';

/**
 * Raw rows as onnxruntime inputs ([N, 1] per input column), as a consumer of the exported graph
 * builds them (libs/tables README, "The ONNX graph"): numbers and days as float32 with NaN when
 * missing, booleans and categories as their trimmed text.
 */
export function feeds(spec: PreprocessingSpec, columns: readonly string[], rows: Cell[][]): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const step of spec.steps) {
    const k = columns.indexOf(step.name);
    const cells = rows.map((r) => r[k] ?? null);
    if (step.kind === 'numeric' || step.kind === 'datetime') {
      const parse = step.kind === 'numeric' ? toNumber : toDays;
      out[step.name] = new ort.Tensor(
        'float32',
        Float32Array.from(cells, (c) => (isMissing(c) ? Number.NaN : parse(c))),
        [rows.length, 1],
      );
    } else {
      out[step.name] = new ort.Tensor(
        'string',
        cells.map((c) => (c === null ? '' : String(c).trim())),
        [rows.length, 1],
      );
    }
  }
  return out;
}
