import * as tf from '@tensorflow/tfjs';
import type { Lineage, ModelVersionMeta, PreprocessingSpec, TableRecord } from '@tq/contracts';
import { writeModelArtifacts } from '@tq/ml';
import type { ModelRegistry } from '@tq/storage';
import { prepareTable, profileTable, type PreparedTable } from '@tq/tables';
import { collect, openPublic, records, type PublicJson } from '../../tables/test/public-tables';

export const LABELS: Record<PublicJson, string> = { penguins: 'Species', cars: 'Miles_per_Gallon' };

export interface TableModel {
  spec: PreprocessingSpec;
  model: tf.LayersModel;
  /** Every row of the public table, raw, in file order, and its header. */
  columns: string[];
  rows: Array<Array<string | number | boolean | null>>;
  /** The same rows by column name (the JSON file's objects), as predict requests send them. */
  records: TableRecord[];
  prepared: PreparedTable;
}

/**
 * A small network fitted on a real public table (vega-datasets) in raw units: preprocessing by
 * prepareTable (fitted on its training split), then a few tfjs epochs. Penguins → 3-class
 * classification (categories and missing cells), cars → regression on the standardized target.
 */
export async function fitTableModel(name: PublicJson, seed = 7): Promise<TableModel> {
  const profile = await profileTable(await openPublic(name), { label: LABELS[name] });
  const prepared = await prepareTable(() => openPublic(name), { profile, validationSplit: 0.2, seed });
  const { spec, train } = prepared;
  const regression = spec.target.task === 'regression';
  const outputs = spec.target.task === 'classification' ? spec.target.classes.length : 1;
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        units: 8,
        activation: 'relu',
        inputShape: [spec.width],
        kernelInitializer: tf.initializers.glorotUniform({ seed }),
      }),
      tf.layers.dense({
        units: outputs,
        activation: regression ? 'linear' : 'softmax',
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
      }),
    ],
  });
  model.compile({
    optimizer: tf.train.adam(regression ? 0.01 : 0.05),
    loss: regression ? 'meanSquaredError' : 'categoricalCrossentropy',
  });
  const x = tf.tensor2d(train.features, [train.rows, spec.width]);
  const y = regression
    ? tf.tensor2d(train.targets, [train.rows, 1])
    : tf.oneHot(tf.tensor1d(Int32Array.from(train.targets), 'int32'), outputs).toFloat();
  try {
    await model.fit(x, y, { epochs: regression ? 80 : 30, batchSize: 32, shuffle: false, verbose: 0 });
  } finally {
    x.dispose();
    y.dispose();
  }
  const table = await openPublic(name);
  const rows = (await collect(table)) as TableModel['rows'];
  return { spec, model, columns: [...table.columns], rows, records: records(name) as TableRecord[], prepared };
}

/** The network's outputs for feature rows [n, width] (the TS path's second half). */
export function networkOutputs(model: tf.LayersModel, features: Float32Array, n: number, width: number): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor2d(features, [n, width])) as tf.Tensor).dataSync() as Float32Array);
}

/** Registers `t` as the train job registers a version trained on a table: artifacts, preprocessing.json, task, columns. */
export function registerTableModel(
  registry: ModelRegistry,
  name: string,
  t: TableModel,
  lineage: Lineage = { kind: 'trained' },
): Promise<ModelVersionMeta> {
  const target = t.spec.target;
  return registry.register(
    name,
    {
      inputShape: [t.spec.width],
      featureCount: t.spec.width,
      classes: target.task === 'classification' ? target.classes : [],
      task: target.task,
      inputColumns: t.spec.steps.map((s) => s.name),
      lineage,
      weightDtype: 'float32',
    },
    (out) => writeModelArtifacts(t.model, out, () => undefined, { preprocessing: t.spec }),
  );
}
