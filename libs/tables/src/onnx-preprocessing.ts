import type { ColumnStep, PreprocessingSpec } from '@tq/contracts';
import { attr, floatValueInfo, OnnxGraph, STRING_ELEM_TYPE } from '@tq/ml';
import { stepWidth } from './step-encoders';

/** The graph's output: [N, spec.width] float32, the model's input row. */
export const PREPROCESSING_OUTPUT = 'features';
const ML = 'ai.onnx.ml';

/**
 * The fitted preprocessing as an ONNX graph (ai.onnx.ml operators that onnxruntime runs), one
 * named input per raw column, shape [N, 1]:
 * - numeric: float32, NaN when missing → Imputer (fill) → Scaler ((x - mean) / std);
 * - datetime: float32 days since 1970-01-01 UTC (ONNX has no date parsing), NaN when missing, then as numeric;
 * - boolean: string, one of the spellings seen in training (else the fill) → LabelEncoder to 1 / 0;
 * - categorical: string (numbers as their text, trimmed) → OneHotEncoder over the training
 *   categories, then 1 - sum as the unknown / missing slot.
 * Everything is concatenated in `spec.steps` order into "features", equal to RowEncoder's output.
 */
export function preprocessingToOnnx(spec: PreprocessingSpec, opset = 17): Uint8Array {
  const g = new OnnxGraph();
  const parts = spec.steps.map((step) => emitStep(g, step));
  g.node('Concat', parts, { axis: attr.int(1) }, { output: PREPROCESSING_OUTPUT });
  return g.encode({
    opset,
    name: 'tq_preprocessing',
    input: spec.steps.map(inputInfo),
    output: floatValueInfo(PREPROCESSING_OUTPUT, ['N', spec.width]),
    domainVersions: { [ML]: 2 },
    doc: `preprocessing of ${spec.steps.length} raw columns into ${spec.width} features (see preprocessing.json)`,
    metadata: { preprocessing: JSON.stringify(spec) },
  });
}

function inputInfo(step: ColumnStep) {
  const info = floatValueInfo(step.name, ['N', 1]);
  if (step.kind === 'boolean' || step.kind === 'categorical') info.type.tensorType.elemType = STRING_ELEM_TYPE;
  return info;
}

function emitStep(g: OnnxGraph, step: ColumnStep): string {
  const x = g.reserve(step.name);
  switch (step.kind) {
    case 'numeric':
    case 'datetime': {
      const filled = g.node(
        'Imputer',
        [x],
        {
          imputed_value_floats: attr.floats([step.fill]),
          replaced_value_float: attr.float(Number.NaN),
        },
        { domain: ML },
      );
      return g.node(
        'Scaler',
        [filled],
        { offset: attr.floats([step.mean]), scale: attr.floats([1 / step.std]) },
        { domain: ML },
      );
    }
    case 'boolean': {
      const keys = [...step.trueTokens, ...step.falseTokens];
      const values = [...step.trueTokens.map(() => 1), ...step.falseTokens.map(() => 0)];
      return g.node(
        'LabelEncoder',
        [x],
        {
          keys_strings: attr.strs(keys),
          values_floats: attr.floats(values),
          default_float: attr.float(step.fill),
        },
        { domain: ML },
      );
    }
    case 'categorical': {
      const width = stepWidth(step);
      const hot = g.node(
        'OneHotEncoder',
        [x],
        { cats_strings: attr.strs(step.categories), zeros: attr.int(1) },
        { domain: ML },
      );
      const flat = g.node('Reshape', [hot, g.int64s('onehot_shape', [-1, width - 1])]);
      const sum = g.node('ReduceSum', [flat, g.int64s('axes', [1])], { keepdims: attr.int(1) });
      const unknown = g.node('Sub', [g.floats('one', [1], [1]), sum]);
      return g.node('Concat', [flat, unknown], { axis: attr.int(1) });
    }
  }
}
