import { Injectable } from '@nestjs/common';
import {
  BUILTIN_DATASET_SHAPES,
  FieldError,
  GoneError,
  type CompressRequest,
  type DatasetInfo,
  type DatasetRef,
  type InferRequest,
  type ModelRef,
  type ModelVersionMeta,
  type TrainRequest,
} from '@tq/contracts';
import { loadConfig } from '@tq/config';
import {
  checkBudgets,
  checkCompressRequest,
  checkFitsData,
  checkLossFitsTask,
  checkMonitor,
  layersIo,
  versionIo,
  type Budgets,
} from '@tq/ml';
import { DatasetNotFoundError, DatasetStore, ModelNotFoundError, ModelRegistry } from '@tq/storage';
import { notFoundAs } from '../common/not-found-as';
import { checkInferTable } from './table-infer-checks';
import { tableTrainFit } from './table-train-checks';

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

  /** Refs resolve in the submitting tenant: another tenant's model or dataset is a 404 like a missing one. */
  private scoped(tenant: string): TenantChecks {
    return new TenantChecks(this.registry.forTenant(tenant), this.datasets.forTenant(tenant), this.budgets);
  }

  train(req: TrainRequest, tenant: string): Promise<void> {
    return this.scoped(tenant).train(req);
  }

  compress(req: CompressRequest, tenant: string): Promise<void> {
    return this.scoped(tenant).compress(req);
  }

  infer(req: InferRequest, tenant: string): Promise<void> {
    return this.scoped(tenant).infer(req);
  }
}

/** The checks, over one tenant's registry and datasets. */
class TenantChecks {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly datasets: DatasetStore,
    private readonly budgets: Budgets,
  ) {}

  /** A 202 means the job can run: the worker's own fit check (checkFitsData) and budgets, applied here first. */
  async train(req: TrainRequest): Promise<void> {
    if ('id' in req.dataset) {
      const info = await this.dataset(req.dataset.id, 'dataset.id');
      // Tables are profiled by a worker; a dataset stored as matrices (before tables) has no profile.
      if (info.status !== 'ready' || info.profile) return this.trainOnTable(req, info);
    }
    // Built-in datasets are classification matrices: a table's options would be silently unused.
    const name = 'builtin' in req.dataset ? `built-in dataset ${req.dataset.builtin}` : 'this dataset';
    if (req.task === 'regression') throw new FieldError('task', `${name} is classification`);
    if (req.columns) throw new FieldError('columns', `column overrides apply to an uploaded table, not ${name}`);
    const data = await this.datasetShape(req.dataset, 'dataset');
    checkLossFitsTask('classification', req.fit);
    if (req.fit.earlyStopping) checkMonitor(req.fit.earlyStopping, 'classification', req.fit.validationSplit > 0);
    const train = { rows: data.rows, epochs: req.fit.epochs };
    const classes = { count: data.classCount, field: 'dataset' };
    if (req.model.from) {
      const meta = await this.model(req.model.from, 'model.from');
      checkFitsData(versionIo(meta, 'model.from'), data, req.fit);
      checkBudgets(
        { train, classes, ...(meta.layers ? { layers: { spec: meta.layers, field: 'model.from' } } : {}) },
        this.budgets,
      );
      return;
    }
    const layers = req.model.layers ?? [];
    checkFitsData(layersIo(layers), data, req.fit);
    checkBudgets({ layers: { spec: layers, field: 'model.layers' }, train, classes }, this.budgets);
  }

  /** An uploaded table: ready, task and label fit, output units fit; the exact width waits for the worker. */
  private async trainOnTable(req: TrainRequest, info: DatasetInfo): Promise<void> {
    const { task, data, layers } = tableTrainFit(req, info, info.profile ?? { rows: 0, columns: [] });
    const train = { rows: data.rows, epochs: req.fit.epochs };
    const io = req.model.from
      ? versionIo(await this.model(req.model.from, 'model.from'), 'model.from')
      : layersIo(layers ?? [], 'model.layers', task);
    // Unknown before fitting: the input width (a table's), and the classes when the worker re-profiles.
    const size = io.input.reduce((a, b) => a * b, 1);
    const classCount = data.classCount < 0 ? (io.output[0] ?? 0) : data.classCount;
    // The profile's classes (a request that re-profiles the label: the worker checks them).
    const classes = data.classCount > 0 ? { classes: { count: data.classCount, field: 'dataset.id' } } : {};
    if (layers) checkBudgets({ layers: { spec: layers, field: 'model.layers' }, train, ...classes }, this.budgets);
    else checkBudgets({ train, ...classes }, this.budgets);
    checkFitsData(io, { ...data, featureCount: size, classCount }, req.fit);
  }

  /** The gate fits the source's task, and the source's training data is still there to evaluate on. */
  async compress(req: CompressRequest): Promise<void> {
    const meta = await this.model(req.source, 'source');
    checkCompressRequest(req, meta);
    for (const [i, step] of (req.steps ?? []).entries()) {
      const upload = 'distill' in step ? step.distill.dataset : undefined;
      if (!upload) continue;
      if (meta.inputColumns === undefined)
        throw new FieldError(
          `steps.${i}.distill.dataset`,
          `${meta.name} v${meta.version} was not trained on a table: an upload has no preprocessing to reach its inputs`,
        );
      await this.dataset(upload.id, `steps.${i}.distill.dataset.id`);
    }
    const id = meta.lineage.dataset?.id;
    if (id === undefined || (req.steps === undefined && req.gate === undefined)) return;
    let gone = false;
    try {
      await this.datasets.get(id);
    } catch (err) {
      if (!(err instanceof DatasetNotFoundError)) throw err;
      gone = true;
    }
    if (gone)
      throw new GoneError(
        'source',
        `the dataset "${id}" ${meta.name} v${meta.version} was trained on is gone: its held-out rows cannot be evaluated on`,
      );
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
      checkInferTable(meta, await this.dataset(req.input.dataset.id, 'input.dataset.id'));
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
