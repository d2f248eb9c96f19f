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
import { checkBudgets, checkFitsData, layersIo, versionIo, type Budgets } from '@tq/ml';
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

  /** A 202 means the job can run: the worker's own fit check (checkFitsData) and budgets, applied here first. */
  async train(req: TrainRequest): Promise<void> {
    const data = await this.datasetShape(req.dataset, 'dataset');
    const train = { rows: data.rows, epochs: req.fit.epochs };
    if (req.model.from) {
      const meta = await this.model(req.model.from, 'model.from');
      checkFitsData(versionIo(meta, 'model.from'), data, req.fit);
      checkBudgets(
        { train, ...(meta.layers ? { layers: { spec: meta.layers, field: 'model.from' } } : {}) },
        this.budgets,
      );
      return;
    }
    const layers = req.model.layers ?? [];
    checkFitsData(layersIo(layers), data, req.fit);
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
