import type * as tf from '@tensorflow/tfjs';
import { UnsupportedLayerError, type Value } from './onnx-activations';
import { attr, floatValueInfo, MAX_OPSET, MIN_OPSET, OnnxGraph } from './onnx-graph';
import { emitLayer, floatOps, toNhwc, type WeightedOps } from './onnx-layers';
import { calibrate, dynamicInt8Ops, int8Ops, type Int8Scheme } from './onnx-int8';

export interface ExportOnnxOptions {
  /** ONNX default-domain opset, 13..21 (default 17). */
  opset?: number;
  /**
   * 'int8': int8 weights (per output channel) and uint8 activations, computed by int8 kernels. With
   * `calibration`, activation scales are fixed from those rows (static); without, dense layers
   * quantize their input per batch at run time (dynamic) and conv layers stay float.
   */
  quantize?: 'int8';
  /** Calibration rows, flat [rows, featureCount] like the graph input (a few hundred typical rows suffice). */
  calibration?: Float32Array | undefined;
  /** How int8 compute is written (default: the faster one measured on onnxruntime 1.30 CPU; see onnx-int8.ts). */
  int8Scheme?: Int8Scheme;
}

/** The graph's contract, also stored in the model's metadata_props. */
export const ONNX_INPUT = 'input';
export const ONNX_OUTPUT = 'output';

/**
 * Exports a trained tfjs Layers model (a linear stack) to ONNX bytes.
 *
 * Graph contract: input "input" float32 [N, featureCount] (rows flattened in tfjs order, i.e. H, W, C),
 * reshaped inside to the model's input shape; output "output" float32 [N, outputSize] (a model whose
 * last layer is not flat is flattened in tfjs order). Inside, conv/pool stacks run NCHW: one Transpose
 * enters a stack and one leaves it before flatten/dense/reshape, so flatten order matches tfjs.
 * Dropout-like layers are the identity; batchNormalization uses its moving statistics.
 */
export function exportOnnx(model: tf.LayersModel, opts: ExportOnnxOptions = {}): Uint8Array {
  const opset = checkedOpset(opts.opset);
  const g = new OnnxGraph();
  const net = emitNetwork(g, model, opts, g.reserve(ONNX_INPUT));
  g.node('Identity', [net.output], {}, { output: ONNX_OUTPUT });
  const { featureCount, inputShape, outputSize } = net;
  return g.encode({
    opset,
    input: floatValueInfo(ONNX_INPUT, ['N', featureCount]),
    output: floatValueInfo(ONNX_OUTPUT, ['N', outputSize]),
    doc: `tfjs model "${model.name}": input [N, ${featureCount}] flattened from [${inputShape.join(', ')}] (channels last), output [N, ${outputSize}]`,
    metadata: networkMetadata(net, opts),
  });
}

export function checkedOpset(opset = 17): number {
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET)
    throw new RangeError(`opset must be an integer in ${MIN_OPSET}..${MAX_OPSET}, got ${opset}`);
  return opset;
}

/** What emitNetwork added: its output tensor [N, outputSize] and the input it reads [N, featureCount]. */
export interface EmittedNetwork {
  output: string;
  inputShape: number[];
  featureCount: number;
  outputSize: number;
}

export function networkMetadata(net: EmittedNetwork, opts: ExportOnnxOptions): Record<string, string> {
  return {
    inputShape: JSON.stringify(net.inputShape),
    featureCount: String(net.featureCount),
    outputSize: String(net.outputSize),
    quantize: opts.quantize === undefined ? 'none' : opts.calibration ? 'int8-static' : 'int8-dynamic',
  };
}

/**
 * Adds the model's layers to `g`, reading the float32 tensor `input` [N, featureCount]; the caller
 * names the graph input (exportOnnx) or feeds it from other nodes (the whole-pipeline export).
 */
export function emitNetwork(
  g: OnnxGraph,
  model: tf.LayersModel,
  opts: ExportOnnxOptions,
  input: string,
): EmittedNetwork {
  const layers = linearLayers(model);
  const inputShape = staticInputShape(model);
  const featureCount = inputShape.reduce((a, b) => a * b, 1);

  let ops: WeightedOps = floatOps;
  if (opts.quantize === 'int8' && !opts.calibration) ops = dynamicInt8Ops;
  else if (opts.quantize === 'int8' && opts.calibration) {
    if (opts.calibration.length === 0 || opts.calibration.length % featureCount !== 0) {
      throw new RangeError(
        `calibration must be a non-empty Float32Array whose length is a multiple of featureCount ${featureCount}, got ${opts.calibration.length}`,
      );
    }
    ops = int8Ops(calibrate(model, layers, opts.calibration, featureCount), opts.int8Scheme);
  } else if (opts.quantize !== undefined) throw new RangeError(`unknown quantize "${String(opts.quantize)}"`);

  let x: Value = { name: input, shape: [featureCount], layout: 'nhwc' };
  if (inputShape.length !== 1)
    x = {
      name: g.node('Reshape', [x.name, g.int64s('input_shape', [0, ...inputShape])]),
      shape: inputShape,
      layout: 'nhwc',
    };
  for (const layer of layers) x = emitLayer(g, ops, layer, x);
  x = toNhwc(g, x);
  if (x.shape.length > 1)
    x = {
      name: g.node('Flatten', [x.name], { axis: attr.int(1) }),
      shape: [x.shape.reduce((a, b) => a * b, 1)],
      layout: 'nhwc',
    };
  return { output: x.name, inputShape, featureCount, outputSize: x.shape[0]! };
}

/** The model's layers in order, checked to form one chain from the single input to the single output. */
export function linearLayers(model: tf.LayersModel): tf.layers.Layer[] {
  if (model.inputs.length !== 1 || model.outputs.length !== 1)
    throw new UnsupportedLayerError('only single-input, single-output models are exported');
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  let previous: tf.SymbolicTensor = model.inputs[0]!;
  for (const layer of layers) {
    if (layer.inboundNodes.length !== 1 || layer.input !== previous)
      throw new UnsupportedLayerError(
        `layer ${layer.name} is not part of a single chain (branches and shared layers are not exported)`,
      );
    previous = layer.output as tf.SymbolicTensor;
  }
  if (previous !== model.outputs[0])
    throw new UnsupportedLayerError('the model output is not the end of its layer chain');
  return layers;
}

function staticInputShape(model: tf.LayersModel): number[] {
  const dims = model.inputs[0]!.shape.slice(1);
  if (dims.length === 0 || dims.some((d) => d == null || d <= 0))
    throw new UnsupportedLayerError(`the input shape [${dims.join(', ')}] must be fully known`);
  return dims as number[];
}
