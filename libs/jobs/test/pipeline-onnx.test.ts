import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import type { PreprocessingSpec } from '@tq/contracts';
import { exportOnnx, exportPipelineOnnx } from '@tq/ml';
import { decodeRegression, RowEncoder, type Cell } from '@tq/tables';
import { feeds } from '../../tables/test/onnx-feeds';
import { fitTableModel, networkOutputs, type TableModel } from './table-models';

/** What a consumer of model.onnx gets: raw columns in, the graph's one output. */
async function runPipeline(bytes: Uint8Array, spec: PreprocessingSpec, columns: string[], rows: Cell[][]) {
  const session = await ort.InferenceSession.create(bytes);
  try {
    assert.deepEqual([...session.inputNames].sort(), spec.steps.map((s) => s.name).sort());
    const out = (await session.run(feeds(spec, columns, rows)))[session.outputNames[0]!]!;
    return { names: session.outputNames, dims: out.dims, data: out.data as Float32Array };
  } finally {
    await session.release();
  }
}

/** The TypeScript path (what /predict does): RowEncoder, the tfjs network, target units. */
function tsPath(t: TableModel, rows: Cell[][]): { out: Float32Array; unknown: Record<string, number> } {
  const encoder = new RowEncoder(t.spec, t.columns);
  const features = new Float32Array(rows.length * t.spec.width);
  rows.forEach((r, i) => encoder.encode(r, features, i * t.spec.width, i + 1));
  const out = networkOutputs(t.model, features, rows.length, t.spec.width);
  const target = t.spec.target;
  return {
    out: target.task === 'regression' ? Float32Array.from(decodeRegression(target, out)) : out,
    unknown: encoder.unknown,
  };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>, relative = false): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!) / (relative ? Math.max(1, Math.abs(b[i]!)) : 1);
    diff = Math.max(diff, d);
  }
  return diff;
}

const argmax = (row: ArrayLike<number>): number => Array.from(row).indexOf(Math.max(...Array.from(row)));

/** A row the table does not have: an unseen island, and missing cells of every kind. */
function oddPenguin(columns: string[]): Cell[] {
  const odd: Record<string, Cell> = { Species: null, Island: 'Atlantis', 'Beak Length (mm)': null, Sex: null };
  return columns.map((c, i) => (c in odd ? odd[c]! : i === columns.indexOf('Body Mass (g)') ? '4200' : 190));
}

describe('whole-pipeline ONNX (model.onnx): raw columns in onnxruntime-node = RowEncoder + network', () => {
  it('penguins classification (categories, NA cells, an unseen island): probabilities equal to 1e-5', async () => {
    const t = await fitTableModel('penguins');
    const rows = [...t.rows, oddPenguin(t.columns)];
    const want = tsPath(t, rows);
    assert.deepEqual(want.unknown, { Island: 1 }, 'the unseen island is counted, not an error');
    const got = await runPipeline(exportPipelineOnnx(t.model, t.spec), t.spec, t.columns, rows);
    assert.deepEqual(got.names, ['output']);
    assert.deepEqual(got.dims, [rows.length, 3]);
    const diff = maxDiff(got.data, want.out);
    assert.ok(diff <= 1e-5, `max |onnx - ts| ${diff}`);
    // Not a constant model: the figure this small network reaches on the whole table (raw units in).
    const classes = t.spec.target.task === 'classification' ? t.spec.target.classes : [];
    const species = t.columns.indexOf('Species');
    const right = t.rows.filter((r, i) => classes[argmax(got.data.subarray(i * 3, i * 3 + 3))] === r[species]);
    assert.ok(right.length / t.rows.length >= 0.95, `accuracy ${right.length / t.rows.length}`);
    t.model.dispose();
  });

  it('cars regression (a date, an identifier left out): miles per gallon equal to 1e-5 (relative)', async () => {
    const t = await fitTableModel('cars');
    const want = tsPath(t, t.rows);
    const got = await runPipeline(exportPipelineOnnx(t.model, t.spec), t.spec, t.columns, t.rows);
    assert.deepEqual(got.dims, [t.rows.length, 1]);
    const diff = maxDiff(got.data, want.out, true);
    assert.ok(diff <= 1e-5, `max relative |onnx - ts| ${diff}`);
    // In target units, not standardized: R² over the labelled rows against a stated floor.
    const mpg = t.columns.indexOf('Miles_per_Gallon');
    const pairs = t.rows
      .map((r, i) => [r[mpg] === null ? Number.NaN : Number(r[mpg]), got.data[i]!] as const)
      .filter(([y]) => Number.isFinite(y));
    const mean = pairs.reduce((s, [y]) => s + y, 0) / pairs.length;
    const ssRes = pairs.reduce((s, [y, p]) => s + (y - p) ** 2, 0);
    const ssTot = pairs.reduce((s, [y]) => s + (y - mean) ** 2, 0);
    assert.ok(1 - ssRes / ssTot >= 0.75, `R² ${1 - ssRes / ssTot}`);
    t.model.dispose();
  });

  it('int8: the quantized pipeline answers as the quantized network on RowEncoder features', async () => {
    const t = await fitTableModel('penguins');
    const calibration = t.prepared.train.features;
    const pipeline = await runPipeline(
      exportPipelineOnnx(t.model, t.spec, { quantize: 'int8', calibration }),
      t.spec,
      t.columns,
      t.rows,
    );
    const encoder = new RowEncoder(t.spec, t.columns);
    const features = new Float32Array(t.rows.length * t.spec.width);
    t.rows.forEach((r, i) => encoder.encode(r, features, i * t.spec.width, i + 1));
    const session = await ort.InferenceSession.create(exportOnnx(t.model, { quantize: 'int8', calibration }));
    const network = (await session.run({ input: new ort.Tensor('float32', features, [t.rows.length, t.spec.width]) }))
      .output!.data as Float32Array;
    await session.release();
    // Features from the graph and from RowEncoder differ by float rounding, which can move one
    // activation across a quantization step: close, not bit-equal.
    assert.ok(maxDiff(pipeline.data, network) <= 0.02, `max diff ${maxDiff(pipeline.data, network)}`);
    t.model.dispose();
  });
});
