import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
// Registered up front so the wasm kernel tests run on wasm even where a native backend wins.
import '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../src/backend/backend';
import { fastKernelsInstalled, installFastKernels, uninstallFastKernels } from '../src/kernels';

/** The method object itself, compared by identity (never called, so `this` does not matter). */
const adamApply = (): unknown => Object.getOwnPropertyDescriptor(tf.AdamOptimizer.prototype, 'applyGradients')?.value;

const NATIVE = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;
const WASM_FAST_KERNELS = [
  'BatchMatMul',
  '_FusedMatMul',
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'MaxPoolGrad',
  'AvgPoolGrad',
  'TQFusedAdam',
];

/**
 * What this machine has, found apart from initBackend: whether each native package is installed
 * (CPU images: neither; the GPU image: tfjs-node-gpu) and, if so, whether it loads (in a child, so
 * that this process loads nothing before initBackend does).
 */
function probe(pkg: string): 'absent' | 'loads' | 'fails' {
  try {
    require.resolve(pkg);
  } catch {
    return 'absent';
  }
  return spawnSync(process.execPath, ['-e', `require(${JSON.stringify(pkg)})`]).status === 0 ? 'loads' : 'fails';
}

/** The wasm backend with its fast kernels, whichever backend initBackend chose for this process. */
async function onWasm(): Promise<string[]> {
  await initBackend();
  assert.ok(await tf.setBackend('wasm'));
  return installFastKernels('wasm');
}

describe('initBackend', () => {
  it('picks the first native package that loads, else wasm with the fast kernels, and records why each was skipped', async () => {
    const native = NATIVE.map((pkg) => ({ pkg, state: probe(pkg) }));
    const chosen = native.findIndex((n) => n.state === 'loads');
    const info = await initBackend();
    const tried = chosen === -1 ? native : native.slice(0, chosen);
    assert.deepEqual(
      info.skipped.map((s) => s.provider),
      tried.map((n) => n.pkg),
    );
    for (const [i, n] of tried.entries()) {
      const reason = info.skipped[i]!.reason;
      if (n.state === 'absent') assert.equal(reason, 'not installed');
      else assert.notEqual(reason, 'not installed', `${n.pkg} is installed`);
    }
    if (chosen === -1) {
      assert.equal(info.name, 'wasm');
      for (const k of WASM_FAST_KERNELS)
        assert.ok(info.fastKernels.includes(k), `${k} missing from ${info.fastKernels.join(', ')}`);
      assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'), 'the filter gradient stock wasm lacks is registered');
      assert.deepEqual(installFastKernels('wasm'), info.fastKernels, 'installing twice changes nothing');
    } else {
      assert.deepEqual(
        [info.name, info.provider, info.gpu],
        ['tensorflow', native[chosen]!.pkg, native[chosen]!.pkg.endsWith('-gpu')],
      );
      assert.deepEqual(info.fastKernels, [], 'native backends keep their own kernels');
    }
    assert.equal(tf.getBackend(), info.name);
    assert.equal(await initBackend(), info, 'a second call returns the same choice');
    assert.deepEqual(fastKernelsInstalled('tensorflow'), []);
  });

  it('a conv net trains on wasm (conv → maxPool → conv → avgPool → dense), loss going down', async () => {
    await onWasm();
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({
          inputShape: [10, 10, 1],
          filters: 4,
          kernelSize: 3,
          activation: 'relu',
          kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
        }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        tf.layers.conv2d({
          filters: 6,
          kernelSize: 2,
          strides: 2,
          padding: 'same',
          activation: 'relu',
          kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
        }),
        tf.layers.averagePooling2d({ poolSize: 2 }),
        tf.layers.flatten(),
        tf.layers.dense({
          units: 2,
          activation: 'softmax',
          kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
        }),
      ],
    });
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
      const { value, grads } = tf.variableGrads(
        () => tf.losses.softmaxCrossEntropy(y, model.apply(x) as tf.Tensor),
        vars,
      );
      optimizer.applyGradients(grads);
      losses.push(value.dataSync()[0]!);
      tf.dispose([value, grads]);
    }
    assert.equal(tf.memory().numTensors, before + 2 * vars.length, 'only the Adam slots remain');
    assert.equal(
      tf.engine().backend.numDataIds(),
      dataBefore + 2 * vars.length,
      'a kernel left a temporary in the wasm heap',
    );
    assert.ok(losses[losses.length - 1]! < 0.5 * losses[0]!, `loss ${losses[0]} → ${losses[losses.length - 1]}`);
    tf.dispose([x, y]);
    optimizer.dispose();
    model.dispose();
  });

  it('uninstalling restores the stock kernels and Adam, reinstalling brings them back', async () => {
    const installed = await onWasm();
    for (const k of WASM_FAST_KERNELS) assert.ok(installed.includes(k), `${k} missing from ${installed.join(', ')}`);
    const fast = tf.getKernel('BatchMatMul', 'wasm');
    const fastAdam = adamApply();
    uninstallFastKernels('wasm');
    try {
      assert.equal(tf.getKernel('Conv2DBackpropFilter', 'wasm'), undefined, 'stock wasm has no filter gradient');
      assert.notEqual(tf.getKernel('BatchMatMul', 'wasm'), fast);
      assert.notEqual(adamApply(), fastAdam);
      assert.deepEqual(fastKernelsInstalled('wasm'), []);
    } finally {
      assert.deepEqual(installFastKernels('wasm'), installed);
    }
    assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'));
    assert.equal(adamApply(), fastAdam);
  });

  it('says why an installed native package failed to load instead of skipping it silently', () => {
    // A child that sees no tfjs-node-gpu and a tfjs-node whose addon fails to load, whatever this
    // machine has installed: a preloaded hook answers their resolution.
    const dir = mkdtempSync(join(tmpdir(), 'tq-backend-'));
    try {
      const broken = join(dir, 'tfjs-node.js');
      writeFileSync(broken, "throw new Error('libtensorflow.so.2: cannot open shared object file');");
      const hook = join(dir, 'hook.js');
      writeFileSync(
        hook,
        `const Module = require('node:module');
        const resolve = Module._resolveFilename;
        Module._resolveFilename = function (request, ...rest) {
          if (request === '@tensorflow/tfjs-node-gpu') {
            throw Object.assign(new Error("Cannot find module '" + request + "'"), { code: 'MODULE_NOT_FOUND' });
          }
          if (request === '@tensorflow/tfjs-node') return ${JSON.stringify(broken)};
          return resolve.call(this, request, ...rest);
        };`,
      );
      const script = `require(${JSON.stringify(join(__dirname, '../src/backend/backend.js'))}).initBackend(undefined, { warn: (m) => console.log('WARN ' + m) })
        .then((i) => console.log('INFO ' + JSON.stringify(i)));`;
      const run = spawnSync(process.execPath, ['--require', hook, '-e', script], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      assert.match(
        run.stdout,
        /WARN tfjs backend: @tensorflow\/tfjs-node is installed but unusable: libtensorflow\.so\.2: cannot open shared object file/,
      );
      const info = JSON.parse(/INFO (.*)/.exec(run.stdout)![1]!) as {
        name: string;
        skipped: { provider: string; reason: string }[];
      };
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
