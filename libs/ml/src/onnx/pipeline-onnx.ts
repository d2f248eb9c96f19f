import type * as tf from '@tensorflow/tfjs';
import type { PreprocessingSpec } from '@tq/contracts';
import { checkedOpset, emitNetwork, networkMetadata, ONNX_OUTPUT, type ExportOnnxOptions } from './export-onnx';
import { floatValueInfo, OnnxGraph } from './onnx-graph';
import { emitPreprocessing, ML_DOMAIN, ML_DOMAIN_VERSION, preprocessingInputs } from './preprocessing-onnx';

/**
 * The whole pipeline of a model trained on a table as one ONNX graph: raw columns in (one [N, 1]
 * input per column of `spec.steps`, as preprocessingToOnnx documents), the fitted preprocessing,
 * the network, and for regression the mapping of its standardized output back to the target's
 * units. Output "output" (unless a column has that name) float32: classification [N, classes] (the network's probabilities, class k
 * is spec.target.classes[k]); regression [N, 1] in target units. One graph rather than two merged
 * files: both halves are emitted into the same OnnxGraph, which keeps tensor names unique and
 * collects the ai.onnx.ml domain import, and the network reads the features tensor directly.
 */
export function exportPipelineOnnx(
  model: tf.LayersModel,
  spec: PreprocessingSpec,
  opts: ExportOnnxOptions = {},
): Uint8Array {
  const opset = checkedOpset(opts.opset);
  const g = new OnnxGraph();
  const features = emitPreprocessing(g, spec);
  const net = emitNetwork(g, model, opts, features);
  if (net.featureCount !== spec.width)
    throw new RangeError(`the model takes ${net.featureCount} features, the preprocessing makes ${spec.width}`);
  let out = net.output;
  const target = spec.target;
  if (target.task === 'regression') {
    out = g.node('Mul', [out, g.floats('target_std', [1], [target.std])]);
    out = g.node('Add', [out, g.floats('target_mean', [1], [target.mean])]);
  }
  // "output", or "output_1" when a raw column is itself called "output".
  const outputName = g.node('Identity', [out], {}, { output: g.unusedName(ONNX_OUTPUT) });
  const classes = target.task === 'classification' ? target.classes : [];
  return g.encode({
    opset,
    name: 'tq_pipeline',
    input: preprocessingInputs(spec),
    output: floatValueInfo(outputName, ['N', net.outputSize]),
    domainVersions: { [ML_DOMAIN]: ML_DOMAIN_VERSION },
    doc:
      `tfjs model "${model.name}" with its preprocessing: ${spec.steps.length} raw columns in, ` +
      (target.task === 'regression'
        ? `"${target.column}" in its units out [N, 1]`
        : `probabilities of ${classes.length} classes of "${target.column}" out [N, ${net.outputSize}]`),
    metadata: {
      ...networkMetadata(net, opts),
      task: target.task,
      classes: JSON.stringify(classes),
      preprocessing: JSON.stringify(spec),
    },
  });
}
