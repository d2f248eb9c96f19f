import * as tf from '@tensorflow/tfjs';
import { toFloat16Bits } from './float16';

export type QuantizeDtype = 'uint8' | 'uint16' | 'float16';
type QuantizedSpec = tf.io.WeightsManifestEntry & {
  quantization: NonNullable<tf.io.WeightsManifestEntry['quantization']>;
};

/**
 * Rewrites a model's float32 weights in tfjs's standard quantized weight format, the one
 * tensorflowjs_converter --quantize_* writes and stock tf.loadLayersModel dequantizes
 * (tfjs-core io_utils decodeWeight): uint8/uint16 store q with value = q × scale + min;
 * float16 stores IEEE half bits. Affine ranges follow the converter: widened to include 0 and
 * nudged so that 0 is exactly representable (zero biases and padding stay exact). Weights that are
 * not float32 pass through unchanged; already-quantized weights are dequantized first.
 */
export function quantizeArtifacts(artifacts: tf.io.ModelArtifacts, dtype: QuantizeDtype): tf.io.ModelArtifacts {
  const specs = artifacts.weightSpecs ?? [];
  const decoded = artifacts.weightData ? tf.io.decodeWeights(artifacts.weightData, specs) : {};
  const parts: Uint8Array[] = [];
  const outSpecs: tf.io.WeightsManifestEntry[] = [];
  try {
    for (const spec of specs) {
      const tensor = decoded[spec.name];
      if (!tensor) throw new Error(`weight "${spec.name}" has no data`);
      if (spec.dtype !== 'float32') {
        parts.push(bytesOf(tensor.dataSync()));
        outSpecs.push({
          name: spec.name,
          shape: spec.shape,
          dtype: spec.dtype,
          ...(spec.group ? { group: spec.group } : {}),
        });
        continue;
      }
      const { bytes, spec: q } = quantizeValues(spec, tensor.dataSync() as Float32Array, dtype);
      parts.push(bytes);
      outSpecs.push(q);
    }
  } finally {
    tf.dispose(Object.values(decoded));
  }
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const weightData = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    weightData.set(p, offset);
    offset += p.byteLength;
  }
  return { ...artifacts, weightSpecs: outSpecs, weightData: weightData.buffer };
}

function quantizeValues(
  spec: tf.io.WeightsManifestEntry,
  values: Float32Array,
  dtype: QuantizeDtype,
): { bytes: Uint8Array; spec: QuantizedSpec } {
  const base = {
    name: spec.name,
    shape: spec.shape,
    dtype: 'float32' as const,
    ...(spec.group ? { group: spec.group } : {}),
  };
  if (dtype === 'float16') {
    const out = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = toFloat16Bits(values[i]!);
    return { bytes: bytesOf(out), spec: { ...base, quantization: { dtype } } };
  }
  const levels = dtype === 'uint8' ? 255 : 65535;
  let lo = 0;
  let hi = 0; // the range always holds 0
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  let scale = (hi - lo) / levels;
  let min = lo;
  if (scale === 0)
    scale = 1; // all zeros: q = 0 decodes to min = 0
  else {
    const zeroPoint = Math.round(-lo / scale); // nudge min so that q = zeroPoint decodes to exactly 0
    min = -zeroPoint * scale;
  }
  const out = dtype === 'uint8' ? new Uint8Array(values.length) : new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++)
    out[i] = Math.min(levels, Math.max(0, Math.round((values[i]! - min) / scale)));
  return { bytes: bytesOf(out), spec: { ...base, quantization: { dtype, scale, min } } };
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
