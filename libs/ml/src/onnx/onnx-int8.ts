import { attr, type Attr, type OnnxGraph } from './onnx-graph';
import type { Quant, Value } from './onnx-activations';
import { floatOps, type WeightedOps, type WeightedOut } from './onnx-layers';
import type { Calibration, LayerRanges, Range } from './onnx-calibrate';

export { calibrate } from './onnx-calibrate';

/**
 * How int8 compute is written (both use int8 per-channel weights and calibrated uint8 activations):
 * - 'qdq': the ONNX "QDQ" form that onnxruntime's own static quantizer writes: QuantizeLinear →
 *   DequantizeLinear around Gemm/MatMul/Conv, weights and int32 bias as DequantizeLinear of
 *   constants, outputs re-quantized (relu folded in: a zero point of 0 clips at 0). onnxruntime fuses
 *   these groups into QGemm / QLinearMatMul / QLinearConv; other runtimes read it as float math.
 * - 'integer': dense layers as QuantizeLinear → MatMulInteger → Cast → Mul(scale) → Add(bias), which
 *   onnxruntime fuses into MatMulIntegerToFloat. Conv layers are written as in 'qdq': ConvInteger ran
 *   ~9x slower than float Conv on onnxruntime 1.30 CPU (measured), QLinearConv faster.
 */
export type Int8Scheme = 'qdq' | 'integer';
export const DEFAULT_INT8_SCHEME: Int8Scheme = 'qdq';

/**
 * Weights are symmetric int8 per output channel in [-WEIGHT_MAX, WEIGHT_MAX]. 7 bits, not 8, because
 * onnxruntime's AVX2 (non-VNNI) u8×s8 kernel sums pairs of products in saturating int16 (VPMADDUBSW):
 * 2 × 255 × 127 overflows, 2 × 255 × 63 does not (onnxruntime's quantizer calls this reduce_range).
 */
const WEIGHT_MAX = 63;

/** Activations: asymmetric uint8 over the calibrated range widened to include 0 (so 0 is exact: padding, ReLU). */
export function activationParams(r: Range): Quant {
  const lo = Math.min(r.min, 0);
  const hi = Math.max(r.max, 0);
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-lo / scale))) };
}

/** Per-output-channel symmetric quantization of `w`, whose channel of element i is channelOf(i). */
function quantizeWeights(
  w: Float32Array,
  channels: number,
  channelOf: (i: number) => number,
): { q: Int8Array; scales: Float32Array } {
  const absMax = new Float32Array(channels);
  for (let i = 0; i < w.length; i++) absMax[channelOf(i)] = Math.max(absMax[channelOf(i)]!, Math.abs(w[i]!));
  const scales = absMax.map((m) => (m > 0 ? m / WEIGHT_MAX : 1));
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.round(w[i]! / scales[channelOf(i)]!);
  return { q, scales };
}

/**
 * Without calibration rows: dense layers quantize their input at run time (DynamicQuantizeLinear: one
 * scale per batch) → MatMulInteger, which onnxruntime fuses into DynamicQuantizeMatMul; conv layers
 * stay float (a dynamically quantized ConvInteger was slower than float Conv, see above).
 */
export const dynamicInt8Ops: WeightedOps = {
  dense(g, x, kernel, k, m, bias, layer) {
    const { q, scales } = quantizeWeights(kernel, m, (i) => i % m);
    const [xq, xScale, xZero] = g.nodeOutputs('DynamicQuantizeLinear', [x.name], 3) as [string, string, string];
    const acc = g.node('MatMulInteger', [
      xq,
      g.constant(`${layer}/kernel_q`, [k, m], q),
      xZero,
      g.constant(`${layer}/w_zero`, [], Int8Array.of(0)),
    ]);
    const y = g.node('Mul', [
      g.node('Cast', [acc], { to: attr.int(1) }),
      g.node('Mul', [xScale, g.floats(`${layer}/w_scale`, [m], scales)]),
    ]);
    return { name: bias ? g.node('Add', [y, g.floats(`${layer}/bias`, [m], bias)]) : y, activated: false };
  },
  conv: (g, x, weight, dims, bias, attrs, layer, activation) =>
    floatOps.conv(g, x, weight, dims, bias, attrs, layer, activation),
};

export function int8Ops(calibration: Calibration, scheme: Int8Scheme = DEFAULT_INT8_SCHEME): WeightedOps {
  const lastLayer = [...calibration.keys()].pop();
  const rangesOf = (layer: string): LayerRanges => {
    const r = calibration.get(layer);
    if (!r) throw new Error(`no calibration range for layer ${layer}`);
    return r;
  };
  const qparams = (g: OnnxGraph, hint: string, p: Quant) => ({
    scale: g.floats(`${hint}_scale`, [], [p.scale]),
    zero: g.constant(`${hint}_zero`, [], Uint8Array.of(p.zeroPoint)),
  });
  /** uint8 of the layer input: with the producer's parameters when it is already on a grid, else calibrated ones. */
  const quantizeInput = (g: OnnxGraph, x: Value, layer: string) => {
    const p = x.quant ?? activationParams(rangesOf(layer).input);
    const t = qparams(g, `${layer}/x`, p);
    return { q: g.node('QuantizeLinear', [x.name, t.scale, t.zero]), ...t, p };
  };
  const dequantizeWeights = (
    g: OnnxGraph,
    layer: string,
    q: Int8Array,
    dims: number[],
    scales: Float32Array,
    axis: number,
  ) =>
    g.node(
      'DequantizeLinear',
      [
        g.constant(`${layer}/kernel_q`, dims, q),
        g.floats(`${layer}/w_scale`, [scales.length], scales),
        g.constant(`${layer}/w_zero`, [scales.length], new Int8Array(scales.length)),
      ],
      { axis: attr.int(axis) },
    );
  /** Bias as int32 in units of x_scale · w_scale[c] (the accumulator's), dequantized: the QDQ form of a quantized bias. */
  const dequantizeBias = (g: OnnxGraph, layer: string, bias: Float32Array, xScale: number, wScales: Float32Array) => {
    const scales = wScales.map((s) => s * xScale);
    const q = Int32Array.from(bias, (b, c) => Math.round(b / scales[c]!));
    return g.node(
      'DequantizeLinear',
      [
        g.constant(`${layer}/bias_q`, [bias.length], q),
        g.floats(`${layer}/bias_scale`, [bias.length], scales),
        g.constant(`${layer}/bias_zero`, [bias.length], new Int32Array(bias.length)),
      ],
      { axis: attr.int(0) },
    );
  };
  /**
   * Re-quantizes a layer's float output so the next int8 op reads uint8 directly: relu is folded in
   * (range [0, max], zero point 0 clips negatives), linear is exact, other activations follow in float.
   * The last weighted layer keeps a float output: nothing downstream reads uint8, and its logits stay precise.
   */
  const finish = (g: OnnxGraph, y: string, layer: string, activation: string): WeightedOut => {
    if (layer === lastLayer) return { name: y, activated: false };
    const pre = rangesOf(layer).preActivation;
    const relu = activation === 'relu';
    const p = activationParams(relu ? { min: 0, max: pre.max } : pre);
    const t = qparams(g, `${layer}/y`, p);
    const source = relu ? g.node('Relu', [y]) : y;
    const name = g.node('DequantizeLinear', [g.node('QuantizeLinear', [source, t.scale, t.zero]), t.scale, t.zero]);
    const activated = relu || activation === 'linear';
    return { name, activated, quant: activated ? p : undefined };
  };

  return {
    dense(g, x, kernel, k, m, bias, layer, activation) {
      const { q, scales } = quantizeWeights(kernel, m, (i) => i % m);
      const xi = quantizeInput(g, x, layer);
      if (scheme === 'integer') {
        const acc = g.node('MatMulInteger', [
          xi.q,
          g.constant(`${layer}/kernel_q`, [k, m], q),
          xi.zero,
          g.constant(`${layer}/w_zero`, [], Int8Array.of(0)),
        ]);
        const y = g.node('Mul', [
          g.node('Cast', [acc], { to: attr.int(1) }),
          g.floats(
            `${layer}/scale`,
            [m],
            scales.map((s) => s * xi.p.scale),
          ),
        ]);
        return { name: bias ? g.node('Add', [y, g.floats(`${layer}/bias`, [m], bias)]) : y, activated: false };
      }
      const xd = g.node('DequantizeLinear', [xi.q, xi.scale, xi.zero]);
      const wd = dequantizeWeights(g, layer, q, [k, m], scales, 1);
      let y: string;
      if (x.shape.length === 1 && bias)
        y = g.node('Gemm', [xd, wd, dequantizeBias(g, layer, bias, xi.p.scale, scales)]);
      else {
        y = g.node('MatMul', [xd, wd]);
        if (bias) y = g.node('Add', [y, g.floats(`${layer}/bias`, [m], bias)]);
      }
      return finish(g, y, layer, activation);
    },
    conv(g, x, weight, dims, bias, attrs: Record<string, Attr>, layer, activation) {
      const cout = dims[0]!;
      const per = weight.length / cout;
      const { q, scales } = quantizeWeights(weight, cout, (i) => Math.floor(i / per));
      const xi = quantizeInput(g, x, layer);
      const inputs = [
        g.node('DequantizeLinear', [xi.q, xi.scale, xi.zero]),
        dequantizeWeights(g, layer, q, dims, scales, 0),
      ];
      if (bias) inputs.push(dequantizeBias(g, layer, bias, xi.p.scale, scales));
      return finish(g, g.node('Conv', inputs, attrs), layer, activation);
    },
  };
}
