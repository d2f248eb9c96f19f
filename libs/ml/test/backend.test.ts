import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/backend';
import { fastKernelsInstalled, installFastKernels, uninstallFastKernels } from '../src/kernels';

/** The method object itself, compared by identity (never called, so `this` does not matter). */
const adamApply = (): unknown => Object.getOwnPropertyDescriptor(tf.AdamOptimizer.prototype, 'applyGradients')?.value;

describe('initBackend', () => {
  it('picks wasm here (no native tfjs), records why native was skipped, and installs the fast kernels first', async () => {
    const info = await initBackend();
    assert.equal(info.name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.deepEqual(info.skipped.map((s) => s.provider), ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
    for (const s of info.skipped) assert.equal(s.reason, 'not installed');
    for (const k of ['BatchMatMul', '_FusedMatMul', 'Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPoolGrad', 'AvgPoolGrad', 'TQFusedAdam']) {
      assert.ok(info.fastKernels.includes(k), `${k} missing from ${info.fastKernels.join(', ')}`);
    }
    assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'), 'the filter gradient stock wasm lacks is registered');
    assert.equal(await initBackend(), info, 'a second call returns the same choice');
    assert.deepEqual(installFastKernels('wasm'), info.fastKernels, 'installing twice changes nothing');
    assert.deepEqual(fastKernelsInstalled('tensorflow'), []);
  });

  it('a conv net trains on wasm (conv → maxPool → conv → avgPool → dense), loss going down', async () => {
    await initBackend();
    const model = tf.sequential({ layers: [
      tf.layers.conv2d({ inputShape: [10, 10, 1], filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 6, kernelSize: 2, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      tf.layers.averagePooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
    ] });
    // Class 1 images are bright on the left half, class 0 on the right.
    const x = tf.tidy(() => {
      const left = tf.concat([tf.ones([8, 10, 5, 1]), tf.zeros([8, 10, 5, 1])], 2);
      return tf.concat([left, tf.reverse(left, 2)], 0);
    });
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d([...Array(8).fill(1), ...Array(8).fill(0)], 'int32'), 2));
    const optimizer: tf.Optimizer = tf.train.adam(0.05);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const losses: number[] = [];
    const before = tf.memory().numTensors;
    const dataBefore = tf.engine().backend.numDataIds();
    for (let step = 0; step < 30; step++) {
      const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x) as tf.Tensor), vars);
      optimizer.applyGradients(grads);
      losses.push(value.dataSync()[0]!);
      tf.dispose([value, grads]);
    }
    assert.equal(tf.memory().numTensors, before + 2 * vars.length, 'only the Adam slots remain');
    assert.equal(tf.engine().backend.numDataIds(), dataBefore + 2 * vars.length, 'a kernel left a temporary in the wasm heap');
    assert.ok(losses[losses.length - 1]! < 0.5 * losses[0]!, `loss ${losses[0]} → ${losses[losses.length - 1]}`);
    tf.dispose([x, y]);
    optimizer.dispose();
    model.dispose();
  });

  it('uninstalling restores the stock kernels and Adam, reinstalling brings them back', async () => {
    const info = await initBackend();
    const fast = tf.getKernel('BatchMatMul', 'wasm');
    const fastAdam = adamApply();
    uninstallFastKernels('wasm');
    try {
      assert.equal(tf.getKernel('Conv2DBackpropFilter', 'wasm'), undefined, 'stock wasm has no filter gradient');
      assert.notEqual(tf.getKernel('BatchMatMul', 'wasm'), fast);
      assert.notEqual(adamApply(), fastAdam);
      assert.deepEqual(fastKernelsInstalled('wasm'), []);
    } finally {
      assert.deepEqual(installFastKernels('wasm'), info.fastKernels);
    }
    assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'));
    assert.equal(adamApply(), fastAdam);
  });

  it('says why an installed native package failed to load instead of skipping it silently', () => {
    // A fake tfjs-node whose addon fails to load, found through NODE_PATH by a child process.
    const dir = mkdtempSync(join(tmpdir(), 'tq-backend-'));
    try {
      const pkg = join(dir, '@tensorflow', 'tfjs-node');
      mkdirSync(pkg, { recursive: true });
      writeFileSync(join(pkg, 'package.json'), '{"name":"@tensorflow/tfjs-node","main":"index.js"}');
      writeFileSync(join(pkg, 'index.js'), "throw new Error('libtensorflow.so.2: cannot open shared object file');");
      const script = `require(${JSON.stringify(join(__dirname, '../src/backend/backend.js'))}).initBackend(undefined, { warn: (m) => console.log('WARN ' + m) })
        .then((i) => console.log('INFO ' + JSON.stringify(i)));`;
      const run = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, NODE_PATH: dir }, encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /WARN tfjs backend: @tensorflow\/tfjs-node is installed but unusable: libtensorflow\.so\.2: cannot open shared object file/);
      const info = JSON.parse(/INFO (.*)/.exec(run.stdout)![1]!) as { name: string; skipped: { provider: string; reason: string }[] };
      assert.equal(info.name, 'wasm');
      assert.deepEqual(info.skipped, [
        { provider: '@tensorflow/tfjs-node-gpu', reason: 'not installed' },
        { provider: '@tensorflow/tfjs-node', reason: 'libtensorflow.so.2: cannot open shared object file' },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
