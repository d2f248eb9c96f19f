import type * as tf from '@tensorflow/tfjs';
import { attr, type Attr, type OnnxGraph } from './onnx-graph';
import { emitActivation, UnsupportedLayerError, type Quant, type Value } from './onnx-activations';

/**
 * How the weighted layers become ONNX: plain float (Gemm/MatMul/Conv) or int8 (see onnx-int8.ts).
 * `layer` names the tfjs layer (calibration ranges are keyed by it). Weights are row-major: dense
 * kernel [K, M] as tfjs holds it, conv weight OIHW. An op may apply the layer's activation itself
 * (int8 folds relu into the output quantization) and then says so with `activated`.
 */
export interface WeightedOut {
  name: string;
  activated: boolean;
  // undefined, like absent: the output is a float value (see Value.quant).
  quant?: Quant | undefined;
}
export interface WeightedOps {
  dense(
    g: OnnxGraph,
    x: Value,
    kernel: Float32Array,
    k: number,
    m: number,
    bias: Float32Array | undefined,
    layer: string,
    activation: string,
  ): WeightedOut;
  conv(
    g: OnnxGraph,
    x: Value,
    weight: Float32Array,
    dims: number[],
    bias: Float32Array | undefined,
    attrs: Record<string, Attr>,
    layer: string,
    activation: string,
  ): WeightedOut;
}

export const floatOps: WeightedOps = {
  dense(g, x, kernel, k, m, bias, layer) {
    const w = g.constant(`${layer}/kernel`, [k, m], kernel);
    // Gemm is one fused op for the common 2-D case; MatMul broadcasts over leading axes like tfjs Dense.
    if (x.shape.length === 1 && bias)
      return { name: g.node('Gemm', [x.name, w, g.constant(`${layer}/bias`, [m], bias)]), activated: false };
    const y = g.node('MatMul', [x.name, w]);
    return { name: bias ? g.node('Add', [y, g.constant(`${layer}/bias`, [m], bias)]) : y, activated: false };
  },
  conv(g, x, weight, dims, bias, attrs, layer) {
    const inputs = [x.name, g.constant(`${layer}/kernel`, dims, weight)];
    if (bias) inputs.push(g.constant(`${layer}/bias`, [dims[0]!], bias));
    return { name: g.node('Conv', inputs, attrs), activated: false };
  },
};

type Config = Record<string, unknown>;

/** A config field as text: strings as they are, anything else as JSON (never "[object Object]"). */
function text(value: unknown): string {
  return typeof value === 'string' ? value : String(JSON.stringify(value));
}
const IDENTITY_LAYERS = new Set([
  'Dropout',
  'SpatialDropout1D',
  'SpatialDropout2D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
  'InputLayer',
]);

/** Emits one tfjs layer (inference semantics) on `x`; returns the value it produces. */
export function emitLayer(g: OnnxGraph, ops: WeightedOps, layer: tf.layers.Layer, x: Value): Value {
  const cls = layer.getClassName();
  const cfg = layer.getConfig() as Config;
  const outShape = outputShapeOf(layer);
  if (IDENTITY_LAYERS.has(cls)) return x; // dropout & noise layers are the identity at inference
  if (cfg.dataFormat !== undefined && cfg.dataFormat !== 'channelsLast')
    throw new UnsupportedLayerError(`${layer.name}: dataFormat ${text(cfg.dataFormat)}`);
  switch (cls) {
    case 'Dense': {
      const v = toNhwc(g, x);
      const { kernel, bias } = kernelAndBias(layer);
      const [k, m] = kernel.shape;
      const act = text(cfg.activation ?? 'linear');
      const y = ops.dense(g, v, kernel.data, k!, m!, bias, layer.name, act);
      const out: Value = { name: y.name, shape: outShape, layout: 'nhwc', quant: y.quant };
      return y.activated ? out : emitActivation(g, out, act);
    }
    case 'Conv2D': {
      const v = toNchw(g, x);
      const { kernel, bias } = kernelAndBias(layer);
      const [kh, kw, cin, cout] = kernel.shape as [number, number, number, number];
      const strides = pair(cfg.strides, 1);
      const dilations = pair(cfg.dilationRate, 1);
      const attrs = {
        kernel_shape: attr.ints([kh, kw]),
        strides: attr.ints(strides),
        dilations: attr.ints(dilations),
        group: attr.int(1),
        pads: attr.ints(pads(x.shape, [kh, kw], strides, dilations, text(cfg.padding ?? 'valid'))),
      };
      const act = text(cfg.activation ?? 'linear');
      const y = ops.conv(
        g,
        v,
        hwioToOihw(kernel.data, kh, kw, cin, cout),
        [cout, cin, kh, kw],
        bias,
        attrs,
        layer.name,
        act,
      );
      const out: Value = { name: y.name, shape: outShape, layout: 'nchw', quant: y.quant };
      return y.activated ? out : emitActivation(g, out, act);
    }
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      const v = toNchw(g, x);
      const size = pair(cfg.poolSize, 2);
      const strides = cfg.strides == null ? size : pair(cfg.strides, 1);
      const attrs: Record<string, Attr> = {
        kernel_shape: attr.ints(size),
        strides: attr.ints(strides),
        pads: attr.ints(pads(x.shape, size, strides, [1, 1], text(cfg.padding ?? 'valid'))),
      };
      // TF's 'same' average pooling divides by the number of real (unpadded) cells.
      if (cls === 'AveragePooling2D') attrs.count_include_pad = attr.int(0);
      // A max of values on a uint8 grid stays on it; an average does not.
      const quant = cls === 'MaxPooling2D' ? v.quant : undefined;
      return {
        name: g.node(cls === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool', [v.name], attrs),
        shape: outShape,
        layout: 'nchw',
        quant,
      };
    }
    case 'Flatten': {
      // Flatten in tfjs order (H, W, C): go back to channels-last first.
      const v = toNhwc(g, x);
      return {
        name: g.node('Flatten', [v.name], { axis: attr.int(1) }),
        shape: outShape,
        layout: 'nhwc',
        quant: v.quant,
      };
    }
    case 'Reshape': {
      const v = toNhwc(g, x);
      return {
        name: g.node('Reshape', [v.name, g.int64s('shape', [0, ...outShape])]),
        shape: outShape,
        layout: 'nhwc',
        quant: v.quant,
      };
    }
    case 'BatchNormalization':
      return emitBatchNorm(g, layer, cfg, x);
    case 'Activation':
      return emitActivation(g, x, text(cfg.activation));
    case 'ReLU': {
      if (cfg.maxValue == null) return emitActivation(g, x, 'relu');
      return floatValue(
        x,
        g.node('Clip', [x.name, g.floats('zero', [], [0]), g.floats('max', [], [Number(cfg.maxValue)])]),
      );
    }
    case 'LeakyReLU':
      return floatValue(x, g.node('LeakyRelu', [x.name], { alpha: attr.float(Number(cfg.alpha ?? 0.3)) }));
    case 'ELU':
      return floatValue(x, g.node('Elu', [x.name], { alpha: attr.float(Number(cfg.alpha ?? 1)) }));
    case 'Softmax': {
      if (cfg.axis !== undefined && cfg.axis !== -1 && cfg.axis !== x.shape.length)
        throw new UnsupportedLayerError(`${layer.name}: softmax axis ${text(cfg.axis)}`);
      return emitActivation(g, x, 'softmax');
    }
    default:
      throw new UnsupportedLayerError(`layer ${layer.name} of class ${cls} is not supported`);
  }
}

/** Inference form: y = x * gamma / sqrt(var + eps) + (beta - mean * gamma / sqrt(var + eps)), folded in float64. */
function emitBatchNorm(g: OnnxGraph, layer: tf.layers.Layer, cfg: Config, x: Value): Value {
  const axis = Array.isArray(cfg.axis) ? cfg.axis : [cfg.axis ?? -1];
  if (axis.length !== 1 || (axis[0] !== -1 && axis[0] !== x.shape.length))
    throw new UnsupportedLayerError(
      `${layer.name}: batchNormalization over axis ${JSON.stringify(cfg.axis)} (only the last axis)`,
    );
  const byRole = new Map(weightsOf(layer).map((w) => [w.role, w.data]));
  const mean = byRole.get('moving_mean')!;
  const variance = byRole.get('moving_variance')!;
  const c = mean.length;
  const gamma = byRole.get('gamma') ?? new Float32Array(c).fill(1);
  const beta = byRole.get('beta') ?? new Float32Array(c);
  const eps = Number(cfg.epsilon ?? 1e-3);
  const scale = new Float32Array(c);
  const shift = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    const s = gamma[i]! / Math.sqrt(variance[i]! + eps);
    scale[i] = s;
    shift[i] = beta[i]! - mean[i]! * s;
  }
  // Broadcast over the channel axis: [C] when channels are last, [C, 1, 1] in NCHW.
  const dims = x.layout === 'nchw' ? [c, 1, 1] : [c];
  const y = g.node('Add', [
    g.node('Mul', [x.name, g.constant(`${layer.name}/scale`, dims, scale)]),
    g.constant(`${layer.name}/shift`, dims, shift),
  ]);
  return floatValue(x, y);
}

/** `x`'s shape and layout under a new name, no longer on a uint8 grid. */
function floatValue(x: Value, name: string): Value {
  return { ...x, name, quant: undefined };
}

export function toNchw(g: OnnxGraph, x: Value): Value {
  if (x.shape.length !== 3)
    throw new UnsupportedLayerError(`2-D convolution/pooling needs a [H, W, C] input, got [${x.shape.join(', ')}]`);
  if (x.layout === 'nchw') return x;
  return { ...x, name: g.node('Transpose', [x.name], { perm: attr.ints([0, 3, 1, 2]) }), layout: 'nchw' };
}

export function toNhwc(g: OnnxGraph, x: Value): Value {
  if (x.layout === 'nhwc') return x;
  return { ...x, name: g.node('Transpose', [x.name], { perm: attr.ints([0, 2, 3, 1]) }), layout: 'nhwc' };
}

/** ONNX pads [top, left, bottom, right] for TF padding; 'same' puts the odd cell at the end like TF. */
function pads(inShape: number[], kernel: number[], strides: number[], dilations: number[], padding: string): number[] {
  if (padding === 'valid') return [0, 0, 0, 0];
  if (padding !== 'same') throw new UnsupportedLayerError(`padding "${padding}"`);
  const begin: number[] = [];
  const end: number[] = [];
  for (let d = 0; d < 2; d++) {
    const size = inShape[d]!;
    const effective = (kernel[d]! - 1) * dilations[d]! + 1;
    const total = Math.max((Math.ceil(size / strides[d]!) - 1) * strides[d]! + effective - size, 0);
    begin.push(Math.floor(total / 2));
    end.push(total - Math.floor(total / 2));
  }
  return [...begin, ...end];
}

function pair(v: unknown, dflt: number): [number, number] {
  if (v == null) return [dflt, dflt];
  if (typeof v === 'number') return [v, v];
  const a = v as number[];
  return [a[0]!, a[1] ?? a[0]!];
}

function hwioToOihw(src: Float32Array, kh: number, kw: number, cin: number, cout: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let h = 0; h < kh; h++)
    for (let w = 0; w < kw; w++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++) {
          out[((o * cin + i) * kh + h) * kw + w] = src[((h * kw + w) * cin + i) * cout + o]!;
        }
  return out;
}

/** The layer's weights as copies with their role ("kernel", "bias", "gamma", ...). Never disposes: they are the model's variables. */
function weightsOf(layer: tf.layers.Layer): Array<{ role: string; shape: number[]; data: Float32Array }> {
  return layer.weights.map((w) => {
    const t = w.read();
    return { role: w.originalName.split('/').pop()!, shape: t.shape, data: Float32Array.from(t.dataSync()) };
  });
}

function kernelAndBias(layer: tf.layers.Layer): {
  kernel: { shape: number[]; data: Float32Array };
  bias?: Float32Array;
} {
  const ws = weightsOf(layer);
  const kernel = ws.find((w) => w.role === 'kernel');
  if (!kernel) throw new UnsupportedLayerError(`layer ${layer.name} has no kernel weight`);
  const bias = ws.find((w) => w.role === 'bias')?.data;
  return bias ? { kernel, bias } : { kernel };
}

export function outputShapeOf(layer: tf.layers.Layer): number[] {
  const s = layer.outputShape;
  if (Array.isArray(s[0])) throw new UnsupportedLayerError(`layer ${layer.name} has several outputs`);
  const dims = (s as Array<number | null>).slice(1);
  if (dims.some((d) => d == null))
    throw new UnsupportedLayerError(`layer ${layer.name} has a dynamic output shape [${dims.join(', ')}]`);
  return dims as number[];
}
