import * as tf from '@tensorflow/tfjs';
import { fitSchema, type DistillSpec, type LayerSpec, type Task, type TrainProgress } from '@tq/contracts';
import type { TabularData } from '../data/tabular-data';
import { buildModel } from '../model/build-model';
import { inferShapes } from '../model/infer-shapes';
import { ModelSpecError } from '../model/model-spec-error';
import { classifierLogits } from '../train/logits';
import type { CheckpointStore } from '../train/checkpoint';
import { trainModel, type TrainOutcome } from '../train/train-loop';
import { checkStructuredPrunable, structuredPrune } from './structured';

const WEIGHTED = new Set(['Dense', 'Conv2D']);

export interface DistillRun {
  /** The source's rows (training then held-out); the student trains on the training rows. */
  data: TabularData;
  split: { validationSplit: number; seed: number };
  /** Field named when the student does not fit the teacher (`steps.<i>.distill.student`). */
  field: string;
  onProgress?: (p: TrainProgress) => void | Promise<void>;
  shouldStop?: () => boolean | Promise<boolean>;
  checkpoint?: CheckpointStore;
}

export interface DistillOutcome {
  student: tf.LayersModel;
  fineTune: Pick<TrainOutcome, 'epochs' | 'metrics' | 'samplesPerSec' | 'resumedFromEpoch'>;
}

/**
 * The student a request names, untrained: the teacher's topology at `width` × its units and filters
 * (the output layer kept), starting as the teacher with its least important units removed
 * (`init: "teacher"`, structuredPrune's ranking; a topology structured pruning cannot rewrite starts
 * fresh) or freshly initialized from the topology's seeded initializers (`"random"`); or `layers`
 * built with the split's seed. A student whose input or output shape differs from the
 * teacher's is a ModelSpecError naming `field`.
 */
export async function buildStudent(
  teacher: tf.LayersModel,
  spec: DistillSpec['student'],
  seed: number,
  field: string,
  task: Task = 'classification',
): Promise<tf.LayersModel> {
  if ('layers' in spec) {
    checkStudentLayers(spec.layers, teacherIo(teacher), `${field}.layers`);
    return buildModel(spec.layers, { seed, task, fieldPrefix: `${field}.layers` });
  }
  const width = spec.width;
  if (spec.init === 'teacher' && structurallyPrunable(teacher))
    return (await structuredPrune(teacher, 1 - width, field, (units) => Math.max(1, Math.round(units * width)))).model;
  const topology = teacher.toJSON(null, false) as unknown as {
    config: { layers: Array<{ class_name: string; config: Record<string, unknown> }> };
  };
  const layers = topology.config.layers;
  const last = layers.map((l) => WEIGHTED.has(l.class_name)).lastIndexOf(true);
  layers.forEach((layer, i) => {
    if (i === last || !WEIGHTED.has(layer.class_name)) return;
    const key = layer.class_name === 'Dense' ? 'units' : 'filters';
    layer.config[key] = Math.max(1, Math.round((layer.config[key] as number) * spec.width));
  });
  return tf.models.modelFromJSON({ modelTopology: topology as unknown as tf.io.ModelJSON['modelTopology'] });
}

/** The teacher's per-row input shape and output width. */
export function teacherIo(teacher: tf.LayersModel): { input: number[]; output: number } {
  const input = teacher.inputs[0]!.shape.slice(1) as number[];
  const output = (teacher.outputs[0]!.shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  return { input, output };
}

/** A student given as layers takes the teacher's input and gives its output width (ModelSpecError naming `field` otherwise). */
export function checkStudentLayers(layers: LayerSpec[], io: { input: number[]; output: number }, field: string): void {
  const shapes = inferShapes(layers, field);
  const input = layers[0]?.inputShape ?? [];
  if (input.join(',') !== io.input.join(','))
    throw new ModelSpecError(
      `${field}.0.inputShape`,
      `the student takes [${input.join(', ')}], the teacher [${io.input.join(', ')}]`,
    );
  const out = shapes.at(-1) ?? [];
  if (out.length !== 1 || out[0] !== io.output)
    throw new ModelSpecError(
      `${field}.${layers.length - 1}`,
      `the student outputs [${out.join(', ')}], the teacher [${io.output}]`,
    );
}

/**
 * Hinton's distillation loss on logits (classifierLogits): alpha × cross-entropy with the labels +
 * (1 − alpha) × T² × KL(softmax(z_t / T) ‖ softmax(z_s / T)).
 */
export function distillationLoss(
  student: tf.Tensor,
  teacher: tf.Tensor,
  labels: tf.Tensor,
  temperature: number,
  alpha: number,
): tf.Scalar {
  return tf.tidy(() => {
    const logSoftT = tf.logSoftmax(tf.div(teacher, temperature));
    const logSoftS = tf.logSoftmax(tf.div(student, temperature));
    const kl = tf.mean(tf.sum(tf.mul(tf.exp(logSoftT), tf.sub(logSoftT, logSoftS)), -1));
    const classes = student.shape[student.shape.length - 1] ?? 1;
    const oneHot = tf.oneHot(tf.cast(tf.reshape(labels, [-1]), 'int32'), classes);
    const hard = tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(student)), -1)));
    return tf.add<tf.Scalar>(tf.mul(alpha, hard), tf.mul((1 - alpha) * temperature * temperature, kl));
  });
}

/**
 * A regression's distillation loss: alpha × MSE with the targets + (1 − alpha) × MSE with the
 * teacher's outputs (both on the standardized target the networks learn; no temperature: there is
 * no distribution to soften).
 */
export function regressionDistillationLoss(
  student: tf.Tensor,
  teacher: tf.Tensor,
  targets: tf.Tensor,
  alpha: number,
): tf.Scalar {
  return tf.tidy(() => {
    const s = tf.reshape(student, [-1]);
    const hard = tf.mean(tf.squaredDifference(s, tf.reshape(tf.cast(targets, 'float32'), [-1])));
    const soft = tf.mean(tf.squaredDifference(s, tf.reshape(teacher, [-1])));
    return tf.add<tf.Scalar>(tf.mul(alpha, hard), tf.mul(1 - alpha, soft));
  });
}

/**
 * Trains `student` on `teacher`'s outputs over the training rows (the fast loop: progress, cancel,
 * checkpoints): softened class probabilities for a classifier, its values for a regression.
 */
export async function distill(teacher: tf.LayersModel, spec: DistillSpec, run: DistillRun): Promise<DistillOutcome> {
  const regression = run.data.task === 'regression';
  const student = await buildStudent(teacher, spec.student, run.split.seed, run.field, run.data.task);
  try {
    const fit = fitSchema.parse({
      epochs: spec.epochs,
      batchSize: spec.batchSize,
      learningRate: spec.learningRate,
      optimizer: 'adam',
      validationSplit: run.split.validationSplit,
      seed: run.split.seed,
    });
    const trained = await trainModel({
      model: student,
      data: run.data,
      fit,
      modelField: `${run.field}`,
      ...(run.onProgress ? { onProgress: run.onProgress } : {}),
      ...(run.shouldStop ? { shouldStop: run.shouldStop } : {}),
      ...(run.checkpoint ? { checkpoint: run.checkpoint } : {}),
      // A classifier learns from logits, its own and the teacher's (inference mode), softened by T.
      ...(regression ? {} : { forward: (x: tf.Tensor) => classifierLogits(student, x, true) }),
      // Inside the step's variableGrads scope, which disposes the teacher's outputs with the other intermediates.
      batchLoss: (out, y, x) =>
        regression
          ? regressionDistillationLoss(out, teacher.predict(x) as tf.Tensor, y, spec.alpha)
          : distillationLoss(out, classifierLogits(teacher, x, false), y, spec.temperature, spec.alpha),
    });
    const { epochs, metrics, samplesPerSec, resumedFromEpoch } = trained;
    return {
      student,
      fineTune: { epochs, metrics, samplesPerSec, ...(resumedFromEpoch !== undefined ? { resumedFromEpoch } : {}) },
    };
  } catch (err) {
    student.dispose();
    throw err;
  }
}

/** Whether structured pruning can rewrite `model` (no reshape, dense layers on flat inputs). */
function structurallyPrunable(model: tf.LayersModel): boolean {
  try {
    checkStructuredPrunable(model, 'student');
    return true;
  } catch (err) {
    if (err instanceof ModelSpecError) return false;
    throw err;
  }
}
