import { Injectable } from '@nestjs/common';
import { BUILTIN_DATASET_SHAPES, type CompressRequest, type DatasetRef, type InferRequest, type ModelRef, type TrainRequest } from '@tq/contracts';
import { DatasetStore, ModelRegistry } from '@tq/storage';
import { badRequest, notFound } from '../common/http-issues';

/**
 * Checks that need the registry: referenced models and datasets exist and fit each other. They run
 * before enqueueing so a client learns of a mistake at once (the worker checks again: defence in depth).
 */
@Injectable()
export class SubmissionChecks {
  constructor(private readonly registry: ModelRegistry, private readonly datasets: DatasetStore) {}

  async train(req: TrainRequest): Promise<void> {
    const data = await this.datasetShape(req.dataset, 'dataset');
    if (req.model.from) {
      const meta = await this.model(req.model.from, 'model.from');
      if (meta.featureCount !== data.featureCount) throw badRequest([{ field: 'model.from', reason: `model takes ${meta.featureCount} features, dataset has ${data.featureCount}` }]);
      return;
    }
    const layers = req.model.layers ?? [];
    const inputSize = (layers[0]?.inputShape ?? []).reduce((a, b) => a * b, 1);
    if (inputSize !== data.featureCount) {
      throw badRequest([{ field: 'model.layers.0.inputShape', reason: `holds ${inputSize} values, dataset rows have ${data.featureCount} features` }]);
    }
    const last = layers[layers.length - 1];
    if (last?.type === 'dense' && last.units !== data.classCount) {
      throw badRequest([{ field: `model.layers.${layers.length - 1}.units`, reason: `is ${last.units}, dataset has ${data.classCount} classes` }]);
    }
  }

  async compress(req: CompressRequest): Promise<void> {
    await this.model(req.source, 'source');
  }

  async infer(req: InferRequest): Promise<void> {
    const meta = await this.model(req.model, 'model');
    if ('instances' in req.input) {
      const bad = req.input.instances.findIndex((row) => row.length !== meta.featureCount);
      if (bad >= 0) throw badRequest([{ field: `input.instances.${bad}`, reason: `has ${req.input.instances[bad]?.length} values, model ${meta.name} v${meta.version} takes ${meta.featureCount} features` }]);
    } else {
      const info = await this.dataset(req.input.dataset.id, 'input.dataset.id');
      if (info.featureColumns.length !== meta.featureCount) {
        throw badRequest([{ field: 'input.dataset.id', reason: `dataset has ${info.featureColumns.length} features, model takes ${meta.featureCount}` }]);
      }
    }
  }

  private async datasetShape(ref: DatasetRef, field: string): Promise<{ featureCount: number; classCount: number }> {
    if ('builtin' in ref) return BUILTIN_DATASET_SHAPES[ref.builtin];
    const info = await this.dataset(ref.id, `${field}.id`);
    return { featureCount: info.featureColumns.length, classCount: info.classes.length };
  }

  private async model(ref: ModelRef, field: string) {
    try {
      return await this.registry.getVersion(ref);
    } catch {
      throw notFound(field, `model "${ref.name}" version ${ref.version} does not exist`);
    }
  }

  private async dataset(id: string, field: string) {
    try {
      return await this.datasets.get(id);
    } catch {
      throw notFound(field, `dataset "${id}" does not exist`);
    }
  }
}
