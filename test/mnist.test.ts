import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestSystem } from './support/system';

/** The README's main job: the MNIST MLP, submitted over REST, trains to >= 0.9 held-out accuracy. */
describe('MNIST MLP through the system', () => {
  let system: TestSystem;
  before(async () => {
    system = await TestSystem.start({ workers: 1 });
  });
  after(() => system.stop());

  it('reaches >= 0.9 validation accuracy and serves it through onnxruntime', async () => {
    const submitted = await system.request('POST', '/v1/jobs/train', {
      model: {
        name: 'digits',
        layers: [
          { type: 'dense', units: 128, activation: 'relu', inputShape: [784] },
          { type: 'dense', units: 10, activation: 'softmax' },
        ],
      },
      dataset: { builtin: 'mnist' },
      fit: { epochs: 5, batchSize: 128, optimizer: 'adam', learningRate: 0.001, validationSplit: 0.1, seed: 1 },
    });
    const job = await system.waitForJob(submitted.body.id);
    assert.equal(job.state, 'completed', JSON.stringify(job));
    assert.ok(job.result.metrics.valAccuracy >= 0.9, `validation accuracy ${job.result.metrics.valAccuracy}`);
    console.log(
      `# MNIST MLP: ${JSON.stringify(job.result.metrics)}, ${Math.round(job.result.samplesPerSec)} samples/s on ${job.result.backend}`,
    );
    const predicted = await system.request('POST', `/v1/models/digits/versions/${job.result.model.version}/predict`, {
      instances: [new Array(784).fill(0)],
    });
    assert.equal(predicted.status, 200, JSON.stringify(predicted.body));
    assert.equal(predicted.body.engine, 'onnxruntime');
    assert.equal(predicted.body.predictions[0].scores.length, 10);
  });
});
