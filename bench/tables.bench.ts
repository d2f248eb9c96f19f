import { createReadStream, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import type { FitSpec, LayerSpec, PreprocessingSpec, Task } from '@tq/contracts';
import { fitSchema } from '@tq/contracts';
import { buildModel, initBackend, trainModel, type TabularData } from '@tq/ml';
import { prepareTable, profileTable, readTable, type PreparedTable, type TableSource } from '@tq/tables';
import { fmt } from './lib/report';

/**
 * The validation metric reached on real public tables (vega-datasets, raw units, no hand scaling),
 * through the same path a train job takes: profile → stratified split → preprocessing fitted on
 * the training rows → MLP. Baselines on the same split, in the same run:
 *  - the trivial predictor (majority class; the training mean for regression: R² ≈ 0);
 *  - a linear model fitted in closed form on the same preprocessed features (ridge least squares;
 *    for classification one-vs-rest least squares, argmax), which says how much the MLP adds.
 */
const DATA = join(dirname(require.resolve('vega-datasets')), '..', 'data');

interface Case {
  table: string;
  open: () => Promise<TableSource>;
  label: string;
  overrides?: Record<string, 'ignore' | 'categorical'>;
  layers: (out: number) => LayerSpec[];
  fit: Partial<FitSpec>;
}

function jsonl(name: string): () => Promise<TableSource> {
  const rows = JSON.parse(readFileSync(join(DATA, `${name}.json`), 'utf8')) as unknown[];
  const bytes = Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n'));
  return () => readTable(Readable.from([bytes]), 'jsonl');
}

const mlp = (hidden: number) => (out: number) => [
  { type: 'dense' as const, units: hidden, activation: 'relu' as const },
  { type: 'dense' as const, units: out, ...(out > 1 ? { activation: 'softmax' as const } : {}) },
];

const CASES: Case[] = [
  {
    table: 'penguins (species)',
    open: jsonl('penguins'),
    label: 'Species',
    layers: mlp(16),
    fit: { epochs: 60, batchSize: 16, learningRate: 0.01 },
  },
  {
    table: 'cars (Miles_per_Gallon)',
    open: jsonl('cars'),
    label: 'Miles_per_Gallon',
    overrides: { Cylinders: 'categorical', Name: 'ignore' },
    layers: mlp(32),
    fit: { epochs: 80, batchSize: 32, learningRate: 0.01, loss: 'huber' },
  },
  {
    table: 'seattle-weather (weather)',
    open: () => readTable(createReadStream(join(DATA, 'seattle-weather.csv')), 'csv'),
    label: 'weather',
    layers: mlp(32),
    fit: { epochs: 40, batchSize: 32, learningRate: 0.005 },
  },
];

function tabular(p: PreparedTable): TabularData {
  const { spec, train, validation } = p;
  const x = new Float32Array((train.rows + validation.rows) * spec.width);
  x.set(train.features);
  x.set(validation.features, train.features.length);
  const targets = new Float32Array(train.rows + validation.rows);
  targets.set(train.targets);
  targets.set(validation.targets, train.rows);
  const task: Task = spec.target.task;
  const classes = spec.target.task === 'classification' ? spec.target.classes : [];
  return {
    x,
    y: task === 'classification' ? Int32Array.from(targets) : targets,
    rows: train.rows + validation.rows,
    featureCount: spec.width,
    inputShape: [spec.width],
    task,
    classes,
    validationRows: validation.rows,
    preprocessing: spec,
  };
}

/** Ridge least squares on [features, 1]: W = (XᵀX + λI)⁻¹ XᵀY, Y one-hot or the standardized target. */
function linearFit(p: PreparedTable): { predict: (row: Float32Array) => number[] } {
  const { spec, train } = p;
  const d = spec.width + 1;
  const k = spec.target.task === 'classification' ? spec.target.classes.length : 1;
  const xtx = Array.from({ length: d }, () => new Float64Array(d));
  const xty = Array.from({ length: d }, () => new Float64Array(k));
  for (let r = 0; r < train.rows; r++) {
    const row = [...train.features.subarray(r * spec.width, (r + 1) * spec.width), 1];
    const y = k === 1 ? [train.targets[r]!] : Array.from({ length: k }, (_, c) => (c === train.targets[r] ? 1 : 0));
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) xtx[i]![j]! += row[i]! * row[j]!;
      for (let c = 0; c < k; c++) xty[i]![c]! += row[i]! * y[c]!;
    }
  }
  for (let i = 0; i < d; i++) xtx[i]![i]! += 1e-3;
  // Gauss-Jordan on [XᵀX | XᵀY] (d is a few dozen).
  for (let col = 0; col < d; col++) {
    let pivot = col;
    for (let r = col + 1; r < d; r++) if (Math.abs(xtx[r]![col]!) > Math.abs(xtx[pivot]![col]!)) pivot = r;
    [xtx[col], xtx[pivot]] = [xtx[pivot]!, xtx[col]!];
    [xty[col], xty[pivot]] = [xty[pivot]!, xty[col]!];
    const div = xtx[col]![col]!;
    for (let j = 0; j < d; j++) xtx[col]![j]! /= div;
    for (let c = 0; c < k; c++) xty[col]![c]! /= div;
    for (let r = 0; r < d; r++) {
      if (r === col) continue;
      const f = xtx[r]![col]!;
      if (f === 0) continue;
      for (let j = 0; j < d; j++) xtx[r]![j]! -= f * xtx[col]![j]!;
      for (let c = 0; c < k; c++) xty[r]![c]! -= f * xty[col]![c]!;
    }
  }
  return {
    predict: (features) =>
      Array.from({ length: k }, (_, c) => {
        let s = xty[d - 1]![c]!;
        for (let i = 0; i < d - 1; i++) s += features[i]! * xty[i]![c]!;
        return s;
      }),
  };
}

/** Validation accuracy (classification) or R² in the target's units (regression) of a predictor. */
function score(p: PreparedTable, predict: (row: Float32Array) => number[]): number {
  const { spec, validation } = p;
  let right = 0;
  let ss = 0;
  let total = 0;
  const mean = validation.targets.reduce((a, b) => a + b, 0) / validation.rows;
  for (let r = 0; r < validation.rows; r++) {
    const out = predict(validation.features.subarray(r * spec.width, (r + 1) * spec.width));
    const y = validation.targets[r]!;
    if (spec.target.task === 'classification') right += out.indexOf(Math.max(...out)) === y ? 1 : 0;
    else {
      ss += (out[0]! - y) ** 2;
      total += (y - mean) ** 2;
    }
  }
  return spec.target.task === 'classification' ? right / validation.rows : 1 - ss / total;
}

function trivial(p: PreparedTable): (row: Float32Array) => number[] {
  const { spec, train } = p;
  if (spec.target.task === 'regression') {
    const mean = train.targets.reduce((a, b) => a + b, 0) / train.rows;
    return () => [mean];
  }
  const counts = spec.target.classes.map((_, c) => train.targets.filter((t) => t === c).length);
  return () => counts;
}

async function main(): Promise<void> {
  const backend = await initBackend();
  console.log(`tables bench: backend ${backend.name}; metric on the validation split (25%, stratified)`);
  const lines: string[][] = [['table', 'rows', 'width', 'metric', 'MLP', 'linear', 'trivial', 'MLP − linear']];
  for (const c of CASES) {
    const profile = await profileTable(await c.open(), {
      label: c.label,
      ...(c.overrides ? { overrides: c.overrides } : {}),
    });
    const prepared = await prepareTable(c.open, { profile, validationSplit: 0.25, seed: 1 });
    const spec: PreprocessingSpec = prepared.spec;
    const data = tabular(prepared);
    const out = spec.target.task === 'classification' ? spec.target.classes.length : 1;
    const model = buildModel(
      c.layers(out).map((l, i) => (i === 0 ? { ...l, inputShape: [spec.width] } : l)),
      { seed: 1, task: spec.target.task },
    );
    const fit = fitSchema.parse({ ...c.fit, validationSplit: 0.25 });
    const trained = await trainModel({ model, data, fit });
    model.dispose();
    const metric = spec.target.task === 'classification' ? 'valAccuracy' : 'valR2';
    const mlpScore = trained.metrics[metric] ?? Number.NaN;
    const linear = score(prepared, linearFit(prepared).predict);
    const base = score(prepared, trivial(prepared));
    lines.push([
      c.table,
      String(profile.rows),
      String(spec.width),
      metric,
      fmt(mlpScore),
      fmt(linear),
      fmt(base),
      fmt(mlpScore - linear),
    ]);
  }
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  for (const l of lines) console.log(l.map((cell, i) => cell.padEnd(widths[i]!)).join('  '));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
