import { attr, type OnnxGraph } from './onnx-graph';

/** Which axis holds the channels of a value in the graph: tfjs is channels-last, Conv/Pool need NCHW. */
export type Layout = 'nhwc' | 'nchw';
/** uint8 quantization parameters: real = scale * (q - zeroPoint). */
export interface Quant {
  scale: number;
  zeroPoint: number;
}
/**
 * A value flowing through the graph; `shape` is the tfjs shape without the batch dimension. `quant`
 * is set when the (float) value is the DequantizeLinear of a uint8 tensor with those parameters, and
 * survives only value-preserving ops (transpose, reshape, flatten, max-pool, dropout), so int8 export
 * re-quantizes with the same parameters and the runtime can keep such stretches in uint8.
 */
export interface Value {
  name: string;
  shape: number[];
  layout: Layout;
  // undefined is passed on as "a float value" (ops copy `quant` from their input or clear it).
  quant?: Quant | undefined;
}

export class UnsupportedLayerError extends Error {
  constructor(what: string) {
    super(`ONNX export: ${what}`);
  }
}

/**
 * Emits tfjs activation `name` (the identifiers of tfjs-layers/activations.ts) on `x`. Composite ones
 * (swish, mish, gelu, relu6) are built from opset-13 primitives so the file runs on any runtime at
 * that opset; ORT fuses the common patterns itself.
 */
export function emitActivation(g: OnnxGraph, x: Value, name: string): Value {
  const out = (n: string): Value => ({ ...x, name: n, quant: undefined });
  const scalar = (hint: string, v: number) => g.floats(hint, [], [v]);
  switch (name) {
    case 'linear':
      return x;
    case 'relu':
      return out(g.node('Relu', [x.name]));
    case 'relu6':
      return out(g.node('Clip', [x.name, scalar('zero', 0), scalar('six', 6)]));
    case 'elu':
      return out(g.node('Elu', [x.name], { alpha: attr.float(1) }));
    // tfjs uses the exact SELU constants; ONNX's defaults are the same values rounded to float32.
    case 'selu':
      return out(
        g.node('Selu', [x.name], { alpha: attr.float(1.6732632423543772), gamma: attr.float(1.0507009873554805) }),
      );
    case 'sigmoid':
      return out(g.node('Sigmoid', [x.name]));
    case 'tanh':
      return out(g.node('Tanh', [x.name]));
    case 'softplus':
      return out(g.node('Softplus', [x.name]));
    case 'softsign':
      return out(g.node('Softsign', [x.name]));
    // tfjs: clip(0.2x + 0.5, 0, 1), which is ONNX HardSigmoid with these alpha/beta.
    case 'hardSigmoid':
      return out(g.node('HardSigmoid', [x.name], { alpha: attr.float(0.2), beta: attr.float(0.5) }));
    case 'swish':
      return out(g.node('Mul', [x.name, g.node('Sigmoid', [x.name])]));
    case 'mish':
      return out(g.node('Mul', [x.name, g.node('Tanh', [g.node('Softplus', [x.name])])]));
    case 'gelu': {
      // tfjs: x * 0.5 * (1 + erf(x / sqrt(2))) — the exact form, not the tanh approximation.
      const erf = g.node('Erf', [g.node('Div', [x.name, scalar('sqrt2', Math.SQRT2)])]);
      const cdf = g.node('Mul', [g.node('Add', [erf, scalar('one', 1)]), scalar('half', 0.5)]);
      return out(g.node('Mul', [x.name, cdf]));
    }
    case 'gelu_new': {
      // tfjs: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
      const cube = g.node('Mul', [x.name, g.node('Mul', [x.name, x.name])]);
      const inner = g.node('Mul', [
        g.node('Add', [x.name, g.node('Mul', [cube, scalar('c', 0.044715)])]),
        scalar('k', Math.sqrt(2 / Math.PI)),
      ]);
      const half = g.node('Mul', [g.node('Add', [g.node('Tanh', [inner]), scalar('one', 1)]), scalar('half', 0.5)]);
      return out(g.node('Mul', [x.name, half]));
    }
    // tfjs normalises over the last (channel) axis; in NCHW that axis is 1.
    case 'softmax':
      return out(g.node('Softmax', [x.name], { axis: attr.int(channelAxis(x)) }));
    case 'logSoftmax':
      return out(g.node('LogSoftmax', [x.name], { axis: attr.int(channelAxis(x)) }));
    default:
      throw new UnsupportedLayerError(`activation "${name}" is not supported`);
  }
}

/** The axis of the tfjs channel (last) dimension in the graph's layout of `x`, counting the batch. */
export function channelAxis(x: Value): number {
  return x.layout === 'nchw' ? 1 : x.shape.length;
}
