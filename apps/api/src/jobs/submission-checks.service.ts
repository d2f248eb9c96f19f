import { Injectable } from '@nestjs/common';
import {
  BUILTIN_DATASET_SHAPES,
  FieldError,
  type CompressRequest,
  type DatasetInfo,
  type DatasetRef,
  type InferRequest,
  type ModelRef,
  type ModelVersionMeta,
  type TrainRequest,
} from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { checkBudgets, checkClassifierLayers, type Budgets } from '@tq/ml';
import { DatasetNotFoundError, DatasetStore, ModelNotFoundError, ModelRegistry } from '@tq/storage';
import { notFoundAs } from '../common/not-found-as';

/**
 * Checks that need the registry: referenced models and datasets exist and fit each other. They run
 * before enqueueing so a client learns of a mistake at once (the worker checks again: defence in depth).
 */
@Injectable()
export class SubmissionChecks {
  private readonly budgets: Budgets = loadConfig();

  constructor(
    private readonly registry: ModelRegistry,
    private readonly datasets: DatasetStore,
  ) {}

  /** A 202 means the job can run: the worker's own shape checks and budgets, applied here first. */
  async train(req: TrainRequest): Promise<void> {
    const data = await this.datasetShape(req.dataset, 'dataset');
    const train = { rows: data.rows, epochs: req.fit.epochs };
    if (req.model.from) {
      const meta = await this.model(req.model.from, 'model.from');
      if (meta.featureCount !== data.featureCount)
        throw new FieldError(
          'model.from',
          `model takes ${meta.featureCount} features, dataset has ${data.featureCount}`,
        );
      checkBudgets(
        { train, ...(meta.layers ? { layers: { spec: meta.layers, field: 'model.from' } } : {}) },
        this.budgets,
      );
      return;
    }
    const layers = req.model.layers ?? [];
    const inputSize = (layers[0]?.inputShape ?? []).reduce((a, b) => a * b, 1);
    if (inputSize !== data.featureCount) {
      throw new FieldError(
        'model.layers.0.inputShape',
        `holds ${inputSize} values, dataset rows have ${data.featureCount} features`,
      );
    }
    const shapes = checkClassifierLayers(layers);
    const units = shapes[shapes.length - 1]?.[0];
    if (units !== data.classCount) {
      const last = layers.length - 1;
      const field = layers[last]?.type === 'dense' ? `model.layers.${last}.units` : `model.layers.${last}`;
      throw new FieldError(field, `the model outputs ${units} values per row, dataset has ${data.classCount} classes`);
    }
    checkBudgets({ layers: { spec: layers, field: 'model.layers' }, train }, this.budgets);
  }

  async compress(req: CompressRequest): Promise<void> {
    await this.model(req.source, 'source');
  }

  async infer(req: InferRequest): Promise<void> {
    const meta = await this.model(req.model, 'model');
    if ('instances' in req.input) {
      checkBudgets({ instances: req.input.instances }, this.budgets);
      const bad = req.input.instances.findIndex((row) => row.length !== meta.featureCount);
      if (bad >= 0)
        throw new FieldError(
          `input.instances.${bad}`,
          `has ${req.input.instances[bad]?.length} values, model ${meta.name} v${meta.version} takes ${meta.featureCount} features`,
        );
    } else {
      const info = await this.dataset(req.input.dataset.id, 'input.dataset.id');
      if (info.featureColumns.length !== meta.featureCount) {
        throw new FieldError(
          'input.dataset.id',
          `dataset has ${info.featureColumns.length} features, model takes ${meta.featureCount}`,
        );
      }
    }
  }

  private async datasetShape(
    ref: DatasetRef,
    field: string,
  ): Promise<{ featureCount: number; classCount: number; rows: number }> {
    if ('builtin' in ref) return BUILTIN_DATASET_SHAPES[ref.builtin];
    const info = await this.dataset(ref.id, `${field}.id`);
    return { featureCount: info.featureColumns.length, classCount: info.classes.length, rows: info.rows };
  }

  /** Only a missing thing is a 404 naming the field; any other fault (corrupt metadata, EACCES) stays a 500. */
  private model(ref: ModelRef, field: string): Promise<ModelVersionMeta> {
    return this.registry.getVersion(ref).catch(notFoundAs(ModelNotFoundError, field));
  }

  private dataset(id: string, field: string): Promise<DatasetInfo> {
    return this.datasets.get(id).catch(notFoundAs(DatasetNotFoundError, field));
  }
}
