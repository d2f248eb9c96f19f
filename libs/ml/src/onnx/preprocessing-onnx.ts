import type { ColumnStep, PreprocessingSpec } from '@tq/contracts';
import { attr, floatValueInfo, OnnxGraph } from './onnx-graph';
import { STRING_ELEM_TYPE, type ValueInfoMsg } from './onnx-proto';

/** The preprocessing graph's output: [N, spec.width] float32, the network's input row. */
export const PREPROCESSING_OUTPUT = 'features';
/** ai.onnx.ml opset 2: LabelEncoder's float values start there. */
export const ML_DOMAIN = 'ai.onnx.ml';
export const ML_DOMAIN_VERSION = 2;

/**
 * The fitted preprocessing (preprocessing.json) as an ONNX graph of ai.onnx.ml operators that
 * onnxruntime runs, one named input per raw column, shape [N, 1]:
 * - numeric: float32, NaN when missing → Imputer (fill) → Scaler ((x - mean) / std);
 * - datetime: float32 days since 1970-01-01 UTC (ONNX has no date parsing), NaN when missing, then as numeric;
 * - boolean: string, one of the spellings seen in training (else the fill) → LabelEncoder to 1 / 0;
 * - categorical: string (numbers as their text, trimmed) → OneHotEncoder over the training
 *   categories, then 1 - sum as the unknown / missing slot.
 * Everything is concatenated in `spec.steps` order into "features", equal to @tq/tables' RowEncoder.
 * It lives here rather than in @tq/tables so that the whole-pipeline export (pipeline-onnx.ts) can
 * build it without @tq/ml depending on @tq/tables (which depends on @tq/ml).
 */
export function preprocessingToOnnx(spec: PreprocessingSpec, opset = 17): Uint8Array {
  const g = new OnnxGraph();
  emitPreprocessing(g, spec, PREPROCESSING_OUTPUT);
  return g.encode({
    opset,
    name: 'tq_preprocessing',
    input: preprocessingInputs(spec),
    output: floatValueInfo(PREPROCESSING_OUTPUT, ['N', spec.width]),
    domainVersions: { [ML_DOMAIN]: ML_DOMAIN_VERSION },
    doc: `preprocessing of ${spec.steps.length} raw columns into ${spec.width} features (see preprocessing.json)`,
    metadata: { preprocessing: JSON.stringify(spec) },
  });
}

/** The graph inputs: one [N, 1] tensor per raw column, float32 or string by kind. */
export function preprocessingInputs(spec: PreprocessingSpec): ValueInfoMsg[] {
  return spec.steps.map((step) => {
    const info = floatValueInfo(step.name, ['N', 1]);
    if (step.kind === 'boolean' || step.kind === 'categorical') info.type.tensorType.elemType = STRING_ELEM_TYPE;
    return info;
  });
}

/** Adds the preprocessing nodes to `g` (inputs named by column); returns the features tensor's name. */
export function emitPreprocessing(g: OnnxGraph, spec: PreprocessingSpec, output?: string): string {
  // Every column name first: a later column named like a helper tensor ("one", "axes") must keep its name.
  const inputs = spec.steps.map((step) => g.reserve(step.name));
  const parts = spec.steps.map((step, i) => emitStep(g, step, inputs[i]!));
  return g.node('Concat', parts, { axis: attr.int(1) }, output === undefined ? {} : { output });
}

function emitStep(g: OnnxGraph, step: ColumnStep, x: string): string {
  const ml = { domain: ML_DOMAIN };
  switch (step.kind) {
    case 'numeric':
    case 'datetime': {
      const fill = { imputed_value_floats: attr.floats([step.fill]), replaced_value_float: attr.float(Number.NaN) };
      const filled = g.node('Imputer', [x], fill, ml);
      return g.node('Scaler', [filled], { offset: attr.floats([step.mean]), scale: attr.floats([1 / step.std]) }, ml);
    }
    case 'boolean': {
      const keys = [...step.trueTokens, ...step.falseTokens];
      const values = [...step.trueTokens.map(() => 1), ...step.falseTokens.map(() => 0)];
      const encode = {
        keys_strings: attr.strs(keys),
        values_floats: attr.floats(values),
        default_float: attr.float(step.fill),
      };
      return g.node('LabelEncoder', [x], encode, ml);
    }
    case 'categorical': {
      const known = step.categories.length;
      const hot = g.node('OneHotEncoder', [x], { cats_strings: attr.strs(step.categories), zeros: attr.int(1) }, ml);
      const flat = g.node('Reshape', [hot, g.int64s('onehot_shape', [-1, known])]);
      const sum = g.node('ReduceSum', [flat, g.int64s('axes', [1])], { keepdims: attr.int(1) });
      const unknown = g.node('Sub', [g.floats('one', [1], [1]), sum]);
      return g.node('Concat', [flat, unknown], { axis: attr.int(1) });
    }
  }
}
