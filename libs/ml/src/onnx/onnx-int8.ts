import { attr, type Attr, type OnnxGraph } from './onnx-graph';
import type { WeightedOps } from './onnx-layers';
import type { Calibration, Range } from './onnx-calibrate';

export { calibrate } from './onnx-calibrate';

/**
 * How int8 compute is written:
 * - 'integer': QuantizeLinear(x) → MatMulInteger / ConvInteger (standard ops, int32 out) → Cast → Mul(scale) → Add(bias).
 * - 'qdq': QuantizeLinear → DequantizeLinear pairs around float MatMul/Conv; runtimes fuse them into int8 kernels.
 */
export type Int8Scheme = 'integer' | 'qdq';
export const DEFAULT_INT8_SCHEME: Int8Scheme = 'integer';

/**
 * Weights are symmetric int8 per output channel in [-WEIGHT_MAX, WEIGHT_MAX]. 7 bits, not 8, because
 * onnxruntime's AVX2 u8×s8 kernel sums pairs of products in saturating int16 (VPMADDUBSW):
 * 2 × 255 × 127 overflows, 2 × 255 × 63 does not (ORT's own quantizer calls this reduce_range).
 */
const WEIGHT_MAX = 63;

/** Activations: asymmetric uint8 over the calibrated range widened to include 0 (so 0 is exact: padding, ReLU). */
export function activationParams(r: Range): { scale: number; zeroPoint: number } {
  const lo = Math.min(r.min, 0);
  const hi = Math.max(r.max, 0);
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-lo / scale))) };
}

/** Per-output-channel symmetric quantization of `w`, whose channel of element i is channelOf(i). */
function quantizeWeights(w: Float32Array, channels: number, channelOf: (i: number) => number): { q: Int8Array; scales: Float32Array } {
  const absMax = new Float32Array(channels);
  for (let i = 0; i < w.length; i++) absMax[channelOf(i)] = Math.max(absMax[channelOf(i)]!, Math.abs(w[i]!));
  const scales = absMax.map((m) => (m > 0 ? m / WEIGHT_MAX : 1));
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.round(w[i]! / scales[channelOf(i)]!);
  return { q, scales };
}

export function int8Ops(calibration: Calibration, scheme: Int8Scheme = DEFAULT_INT8_SCHEME): WeightedOps {
  const paramsOf = (layer: string) => {
    const r = calibration.get(layer);
    if (!r) throw new Error(`no calibration range for layer ${layer}`);
    return activationParams(r);
  };
  const quantizeInput = (g: OnnxGraph, x: string, layer: string) => {
    const p = paramsOf(layer);
    const scale = g.floats(`${layer}/x_scale`, [], [p.scale]);
    const zero = g.constant(`${layer}/x_zero`, [], Uint8Array.of(p.zeroPoint));
    return { q: g.node('QuantizeLinear', [x, scale, zero]), scale, zero, p };
  };
  /** int32 accumulator → float: × (x_scale · w_scale[c]) + bias[c], broadcast over `dims`. */
  const rescale = (g: OnnxGraph, acc: string, xScale: number, wScales: Float32Array, bias: Float32Array | undefined, dims: number[], layer: string) => {
    const y = g.node('Mul', [g.node('Cast', [acc], { to: attr.int(1) }), g.constant(`${layer}/scale`, dims, wScales.map((s) => s * xScale))]);
    return bias ? g.node('Add', [y, g.constant(`${layer}/bias`, dims, bias)]) : y;
  };

  return {
    dense(g, x, kernel, k, m, bias, layer) {
      const { q, scales } = quantizeWeights(kernel, m, (i) => i % m);
      const xi = quantizeInput(g, x.name, layer);
      const wq = g.constant(`${layer}/kernel_q`, [k, m], q);
      if (scheme === 'integer') {
        const acc = g.node('MatMulInteger', [xi.q, wq, xi.zero, g.constant(`${layer}/w_zero`, [], Int8Array.of(0))]);
        return rescale(g, acc, xi.p.scale, scales, bias, [m], layer);
      }
      const xd = g.node('DequantizeLinear', [xi.q, xi.scale, xi.zero]);
      const wd = g.node('DequantizeLinear', [wq, g.constant(`${layer}/w_scale`, [m], scales), g.constant(`${layer}/w_zero`, [m], new Int8Array(m))], { axis: attr.int(1) });
      const y = g.node('MatMul', [xd, wd]);
      return bias ? g.node('Add', [y, g.constant(`${layer}/bias`, [m], bias)]) : y;
    },
    conv(g, x, weight, dims, bias, attrs: Record<string, Attr>, layer) {
      const cout = dims[0]!;
      const per = weight.length / cout;
      const { q, scales } = quantizeWeights(weight, cout, (i) => Math.floor(i / per));
      const xi = quantizeInput(g, x, layer);
      const wq = g.constant(`${layer}/kernel_q`, dims, q);
      if (scheme === 'integer') {
        const acc = g.node('ConvInteger', [xi.q, wq, xi.zero, g.constant(`${layer}/w_zero`, [], Int8Array.of(0))], attrs);
        return rescale(g, acc, xi.p.scale, scales, bias, [cout, 1, 1], layer);
      }
      const xd = g.node('DequantizeLinear', [xi.q, xi.scale, xi.zero]);
      const wd = g.node('DequantizeLinear', [wq, g.constant(`${layer}/w_scale`, [cout], scales), g.constant(`${layer}/w_zero`, [cout], new Int8Array(cout))], { axis: attr.int(0) });
      const inputs = [xd, wd];
      if (bias) inputs.push(g.constant(`${layer}/bias`, [cout], bias));
      return g.node('Conv', inputs, attrs);
    },
  };
}
