import { gzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs';
import type { ModelFigures } from '@tq/contracts';
import { encodeArtifact } from '@tq/storage';
import type { TabularData } from '../data/tabular-data';
import { TFJS_ARTIFACT } from '../inference/artifact-names';
import { loadOrtRunner, loadTfjsRunner, type ModelRunner, type OrtSessionOptions } from '../inference/model-runners';
import { evaluate } from '../train/evaluate';
import type { LossSpec } from '../train/losses';

/** A version's files by artifact name: at least model.json and weights.bin, and the artifact served. */
export type VersionFiles = ReadonlyMap<string, Uint8Array>;

export interface SpeedOptions {
  /** Timed passes of 1024 rows (after one untimed pass); rows/s is the fastest one's. */
  batchPasses?: number;
  /** Timed single-row runs (after one untimed run); their median is p50LatencyMs. */
  latencyRuns?: number;
}

export interface FigureInputs {
  /** The model as tfjs loads it from `files` (quantized weights dequantized, as a client would see them). */
  model: tf.LayersModel;
  heldOut: TabularData;
  files: VersionFiles;
  /** The artifact the inference engine serves (servedArtifact), timed through the engine's own runner. */
  artifact: string;
  ort: OrtSessionOptions;
  loss?: LossSpec;
  speed?: SpeedOptions;
}

const BATCH = 1024;

/** Quality on the held-out rows, size, FLOPs and speed of one version: one side of a compress evaluation. */
export async function modelFigures(input: FigureInputs): Promise<ModelFigures> {
  const { model, heldOut, files } = input;
  const quality = await evaluate(model, heldOut, BATCH, input.loss);
  const tfjsNames = [TFJS_ARTIFACT, 'weights.bin'];
  const tfjsFiles = tfjsNames.map((f) => files.get(f) ?? new Uint8Array());
  const runner = await loadRunner(files, input.artifact, heldOut.featureCount, input.ort);
  try {
    const speed = await timeRunner(runner, heldOut, input.speed);
    return {
      ...(heldOut.task === 'regression' ? { r2: quality.r2!, rmse: quality.rmse! } : { accuracy: quality.accuracy }),
      loss: quality.loss,
      ...parameterCounts(model),
      bytesRaw: tfjsFiles.reduce((n, b) => n + b.byteLength, 0),
      bytesGzip: tfjsFiles.reduce((n, b) => n + gzipSync(b, { level: 9 }).byteLength, 0),
      bytesStored: await storedBytes(tfjsNames, tfjsFiles),
      flopsPerRow: flopsPerRow(model),
      ...speed,
      artifact: input.artifact,
      engine: runner.engine,
    };
  } finally {
    await runner.release();
  }
}

/** Bytes the registry stores for these files (@tq/storage's encodeArtifact: gzip where it pays). */
async function storedBytes(names: string[], files: Uint8Array[]): Promise<number> {
  let bytes = 0;
  for (const [i, file] of files.entries()) {
    const { body } = await encodeArtifact(names[i]!, file);
    bytes += typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  }
  return bytes;
}

/** All weights, and those not exactly zero. */
export function parameterCounts(model: tf.LayersModel): { parameters: number; nonZeroParameters: number } {
  let parameters = 0;
  let nonZeroParameters = 0;
  for (const w of model.weights) {
    const values = w.read().dataSync();
    parameters += values.length;
    for (const v of values) if (v !== 0) nonZeroParameters++;
  }
  return { parameters, nonZeroParameters };
}

/**
 * 2 × multiply-adds of the dense and conv2d layers for one row (the bulk of the work; pooling,
 * activations and normalization are left out). Zero weights still count: dense kernels multiply them.
 */
export function flopsPerRow(model: tf.LayersModel): number {
  let flops = 0;
  for (const layer of model.layers) {
    const kernel = layer.weights.find((w) => w.originalName.endsWith('/kernel'));
    if (!kernel) continue;
    const out = (layer.outputShape as Array<number | null>).slice(1).map((d) => d ?? 1);
    const kind = layer.getClassName();
    if (kind === 'Dense') {
      const [inputs, units] = kernel.shape as [number, number];
      flops += 2 * inputs * units * (out.slice(0, -1).reduce((a, b) => a * b, 1) || 1);
    } else if (kind === 'Conv2D') {
      const [kh, kw, cin, cout] = kernel.shape as [number, number, number, number];
      flops += 2 * kh * kw * cin * cout * (out[0] ?? 1) * (out[1] ?? 1);
    }
  }
  return flops;
}

/** The runner the inference engine would load for `artifact`: onnxruntime for a graph, tfjs for model.json. */
async function loadRunner(
  files: VersionFiles,
  artifact: string,
  featureCount: number,
  ort: OrtSessionOptions,
): Promise<ModelRunner> {
  if (artifact !== TFJS_ARTIFACT) {
    const bytes = files.get(artifact);
    if (!bytes) throw new Error(`no "${artifact}" among the version's files`);
    return loadOrtRunner(bytes, featureCount, ort);
  }
  return loadTfjsRunner({ load: async () => tfjsArtifacts(files) });
}

/** model.json + weights.bin as tfjs ModelArtifacts (what the registry's load handler reads). */
export function tfjsArtifacts(files: VersionFiles): tf.io.ModelArtifacts {
  const json = files.get(TFJS_ARTIFACT);
  const weights = files.get('weights.bin');
  if (!json || !weights) throw new Error('model.json and weights.bin are both needed');
  const modelJson = JSON.parse(Buffer.from(json).toString('utf8')) as tf.io.ModelJSON;
  return {
    modelTopology: modelJson.modelTopology,
    weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights),
    weightData: weights.slice().buffer,
  };
}

/** rows/s at batch 1024 (held-out rows, cycled to fill the batch) and the median single-row latency. */
async function timeRunner(
  runner: ModelRunner,
  data: TabularData,
  opts: SpeedOptions = {},
): Promise<{ rowsPerSec: number; p50LatencyMs: number }> {
  const f = data.featureCount;
  const block = new Float32Array(BATCH * f);
  for (let r = 0; r < BATCH; r++) {
    const from = (r % data.rows) * f;
    block.set(data.x.subarray(from, from + f), r * f);
  }
  const passes = opts.batchPasses ?? 8;
  await runner.run(block, BATCH);
  // The best pass: other processes' load only ever slows a pass down, so the fastest is the model's own speed.
  let seconds = Number.POSITIVE_INFINITY;
  for (let p = 0; p < passes; p++) {
    const start = performance.now();
    await runner.run(block, BATCH);
    seconds = Math.min(seconds, (performance.now() - start) / 1000);
  }
  const one = block.slice(0, f);
  await runner.run(one, 1);
  const times: number[] = [];
  for (let i = 0; i < (opts.latencyRuns ?? 101); i++) {
    const t0 = performance.now();
    await runner.run(one, 1);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return {
    rowsPerSec: seconds > 0 && Number.isFinite(seconds) ? BATCH / seconds : 0,
    p50LatencyMs: times[Math.floor(times.length / 2)] ?? 0,
  };
}
