import * as tf from '@tensorflow/tfjs';
import { attachOnnx } from '@tq/ml';
import { TestSystem } from '../test/support/system';
import { envInt } from './lib/env';
import { fmt, percentile } from './lib/report';
import { registerTestModel } from '../test/support/test-models';

/**
 * Predict latency with and without the version metadata cache (VERSION_META_CACHE_SIZE 0 vs the
 * default): one small ONNX model (so inference is cheap and the metadata reads show), sequential
 * batch-1 predicts over HTTP on loopback, local blob store. BENCH_PREDICTS (default 500) each.
 */
const PREDICTS = envInt(process.env.BENCH_PREDICTS, 500);
const F = 16;

async function run(cacheSize: string): Promise<number[]> {
  const system = await TestSystem.start({ workers: 0, env: { VERSION_META_CACHE_SIZE: cacheSize } });
  try {
    const model = tf.sequential();
    model.add(tf.layers.dense({ units: 8, activation: 'relu', inputShape: [F] }));
    model.add(tf.layers.dense({ units: 3, activation: 'softmax' }));
    const { registry, meta } = await registerTestModel(system, 'm', model, F);
    await attachOnnx(registry, meta, model);
    model.dispose();
    const body = { instances: [Array.from({ length: F }, (_, i) => i / F)] };
    const once = async () => {
      const t0 = performance.now();
      const res = await system.request('POST', '/v1/models/m/versions/1/predict', body);
      if (res.status !== 200) throw new Error(`predict: ${res.status} ${JSON.stringify(res.body)}`);
      return performance.now() - t0;
    };
    for (let i = 0; i < 50; i++) await once();
    const samples: number[] = [];
    for (let i = 0; i < PREDICTS; i++) samples.push(await once());
    return samples;
  } finally {
    await system.stop();
  }
}

async function main(): Promise<void> {
  const off = await run('0');
  const on = await run('1000');
  const line = (label: string, s: number[]) =>
    console.log(
      `${label.padEnd(28)} p50 ${fmt(percentile(s, 50))} ms  p90 ${fmt(percentile(s, 90))} ms  p99 ${fmt(percentile(s, 99))} ms`,
    );
  console.log(`batch-1 predicts over HTTP, ${PREDICTS} each, sequential:`);
  line('metadata read per request', off);
  line('metadata cached', on);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
