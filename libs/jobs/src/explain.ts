import * as tf from '@tensorflow/tfjs';
import {
  FieldError,
  TooLargeError,
  type ExplainBaseline,
  type ExplainRequest,
  type ExplainResponse,
  type ExplainTarget,
  type Explanation,
  type ModelVersionMeta,
  type PreprocessingSpec,
} from '@tq/contracts';
import { integratedGradients, type InferenceEngine } from '@tq/ml';
import { modelLoadHandler, type ModelRegistry } from '@tq/storage';
import { stepWidth } from '@tq/tables';
import { answersOf, requestFeatures } from './predict';

export interface ExplainDeps {
  /** The tenant's views: the version's model.json and its cached preprocessing. */
  registry: ModelRegistry;
  engine: InferenceEngine;
  /** rows × steps × features a request may cost (MAX_EXPLAIN_VALUES). */
  maxValues: number;
}

/**
 * POST .../explain of one version: the rows as predict reads them, integrated gradients on the
 * version's tfjs model (model.json: the one artifact every version has, and the one with
 * gradients), attributions summed back to a table's columns and put in the target's units.
 */
export async function explainVersion(
  deps: ExplainDeps,
  meta: ModelVersionMeta,
  body: ExplainRequest,
): Promise<ExplainResponse> {
  const ref = { name: meta.name, version: meta.version };
  const spec = await deps.engine.preprocessing(ref, meta);
  const rows = body.instances ? { instances: body.instances } : { records: body.records ?? [] };
  const input = requestFeatures(rows, meta, spec);
  const f = meta.featureCount;
  const cost = input.rows * body.steps * f;
  if (cost > deps.maxValues)
    throw new TooLargeError(
      'steps',
      `${input.rows} rows × ${body.steps} steps × ${f} features = ${cost} values exceed the limit of ` +
        `${deps.maxValues} (MAX_EXPLAIN_VALUES)`,
    );
  const { name: baseline, values: base } = baselineOf(body.baseline, meta);
  const fixedTarget = body.target === undefined ? undefined : targetIndex(body.target, meta);
  const scale = regressionScale(meta, spec);
  const names = spec ? featureNames(spec) : undefined;

  const model = await tf.loadLayersModel(modelLoadHandler(deps.registry, ref));
  try {
    // The input tensor goes with the tidy; the output is kept until read.
    const out = tf.tidy(
      () => model.predict(tf.tensor(input.features, [input.rows, ...modelShape(model)])) as tf.Tensor,
    );
    const width = out.size / input.rows;
    const scores = (await out.data()) as Float32Array;
    out.dispose();
    // A model without class names has only its output width to check a target index against.
    if (fixedTarget !== undefined && fixedTarget >= width)
      throw new FieldError('target', `class index ${fixedTarget} is out of range: the model has ${width} outputs`);
    const predictions = answersOf(scores, width, meta, spec);
    const explanations: Explanation[] = [];
    for (let row = 0; row < input.rows; row++) {
      // Between rows: the API's other requests go on (a row is one forward and backward pass).
      if (row > 0) await new Promise((resolve) => setImmediate(resolve));
      const prediction = predictions[row]!;
      const classIndex = 'classIndex' in prediction ? (fixedTarget ?? prediction.classIndex) : 0;
      const ig = integratedGradients(
        model,
        input.features.subarray(row * f, (row + 1) * f),
        base,
        body.steps,
        classIndex,
      );
      const attributions = Array.from(ig.attributions, (a) => a * scale.factor);
      explanations.push({
        prediction,
        target: targetOf(meta, classIndex),
        attributions: names ? byColumn(spec!, attributions) : attributions,
        ...(names ? { features: names.map((name, j) => ({ name, attribution: attributions[j]! })) } : {}),
        value: ig.value * scale.factor + scale.offset,
        baselineValue: ig.baselineValue * scale.factor + scale.offset,
        completenessGap: ig.completenessGap * scale.factor,
      });
    }
    return {
      model: ref,
      method: 'integrated-gradients',
      baseline,
      steps: body.steps,
      explanations,
      ...(input.unknownCategories ? { unknownCategories: input.unknownCategories } : {}),
    };
  } finally {
    model.dispose();
  }
}

/** The baseline asked for, or by default the recorded training means (else zeros). */
function baselineOf(
  asked: ExplainBaseline | undefined,
  meta: ModelVersionMeta,
): { name: ExplainBaseline; values: Float32Array } {
  const means = meta.featureMeans;
  if (asked === 'mean' && !means)
    throw new FieldError(
      'baseline',
      `${meta.name} v${meta.version} did not record its training features' means (trained before they were ` +
        `recorded, or not trained here): use "zeros"`,
    );
  if (asked !== 'zeros' && means) {
    if (means.length !== meta.featureCount)
      throw new Error(
        `${meta.name} v${meta.version} records ${means.length} feature means for ${meta.featureCount} features`,
      );
    return { name: 'mean', values: Float32Array.from(means) };
  }
  return { name: 'zeros', values: new Float32Array(meta.featureCount) };
}

/** A class index or label of the version's classes; a regression has no class to name. */
function targetIndex(target: number | string, meta: ModelVersionMeta): number {
  if (meta.task === 'regression')
    throw new FieldError('target', 'a regression model explains its value: send no target');
  const classes = meta.classes;
  if (typeof target === 'string') {
    const index = classes.indexOf(target);
    if (index < 0) throw new FieldError('target', `unknown class "${target}" (classes: ${classes.join(', ')})`);
    return index;
  }
  const count = classes.length > 0 ? classes.length : undefined;
  if (count !== undefined && target >= count)
    throw new FieldError('target', `class index ${target} is out of range: the model has ${count} classes`);
  return target;
}

function targetOf(meta: ModelVersionMeta, classIndex: number): ExplainTarget {
  if (meta.task === 'regression') return { value: true };
  const label = meta.classes[classIndex];
  return label === undefined ? { classIndex } : { classIndex, label };
}

/**
 * A regression's network learnt the standardized target: its value is `out × std + mean`, so the
 * attributions (differences of the output) scale by std and the values also shift by the mean.
 */
function regressionScale(
  meta: ModelVersionMeta,
  spec: PreprocessingSpec | undefined,
): { factor: number; offset: number } {
  const target = spec?.target;
  if (meta.task === 'regression' && target?.task === 'regression') return { factor: target.std, offset: target.mean };
  return { factor: 1, offset: 0 };
}

/** The encoded features' names in order: a numeric's column, a one-hot slot's `column=category`. */
export function featureNames(spec: PreprocessingSpec): string[] {
  return spec.steps.flatMap((step) => {
    if (step.kind !== 'categorical') return [step.name];
    return [...step.categories.map((c) => `${step.name}=${c}`), `${step.name}=(unknown)`];
  });
}

/** Each column's features summed: attributions are additive, so a column's is its features' sum. */
function byColumn(spec: PreprocessingSpec, attributions: readonly number[]): Record<string, number> {
  const out: Record<string, number> = Object.create(null) as Record<string, number>;
  let offset = 0;
  for (const step of spec.steps) {
    const width = stepWidth(step);
    let sum = 0;
    for (let j = offset; j < offset + width; j++) sum += attributions[j]!;
    out[step.name] = sum;
    offset += width;
  }
  return out;
}

function modelShape(model: tf.LayersModel): number[] {
  return model.inputs[0]!.shape.slice(1) as number[];
}
