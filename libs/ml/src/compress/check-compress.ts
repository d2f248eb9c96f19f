import {
  FieldError,
  TqError,
  type CompressEvaluation,
  type CompressGate,
  type CompressRequest,
  type LayerSpec,
  type ModelVersionMeta,
} from '@tq/contracts';
import { inferShapes } from '../model/infer-shapes';
import { checkStudentLayers } from './distill';

const GATE_TASK: Record<keyof CompressGate, 'classification' | 'regression'> = {
  maxAccuracyDrop: 'classification',
  maxR2Drop: 'regression',
  maxRmseIncrease: 'regression',
};

/**
 * The checks of a compress request against its source that need no data (the API runs them before
 * enqueueing, the worker again): a gate on a metric the task has is a 400 naming the gate field; the
 * `steps` form evaluates on the source's held-out rows, so a source that records no training data is
 * refused naming `source`.
 */
export function checkCompressRequest(req: CompressRequest, source: ModelVersionMeta): void {
  (req.steps ?? []).forEach((step, i) => {
    if ('prune' in step && step.prune.structured && source.layers)
      checkStructuredLayers(source.layers, `steps.${i}.prune.structured`);
    if ('distill' in step && 'layers' in step.distill.student)
      checkStudentLayers(
        step.distill.student.layers,
        // A regression answers one value per row.
        { input: source.inputShape, output: source.task === 'regression' ? 1 : source.classes.length },
        `steps.${i}.distill.student.layers`,
      );
  });
  for (const key of Object.keys(req.gate ?? {}) as Array<keyof CompressGate>) {
    if (req.gate?.[key] === undefined || GATE_TASK[key] === source.task) continue;
    const use = source.task === 'classification' ? 'maxAccuracyDrop' : 'maxR2Drop or maxRmseIncrease';
    throw new FieldError(`gate.${key}`, `${source.name} v${source.version} is a ${source.task} model: use ${use}`);
  }
  const dataset = source.lineage.dataset;
  if ((req.steps !== undefined || req.gate !== undefined) && !dataset?.builtin && !dataset?.id)
    throw new FieldError(
      'source',
      `${source.name} v${source.version} records no training data: a compressed version is evaluated on its source's held-out rows`,
    );
}

/**
 * checkStructuredPrunable on a version's layer list (the API has no model to load): a layer
 * structured pruning cannot rewrite is refused up front, naming it.
 */
function checkStructuredLayers(layers: LayerSpec[], field: string): void {
  const shapes = inferShapes(layers);
  layers.forEach((layer, i) => {
    const name = `layer ${i} (${layer.type}${layer.name ? ` "${layer.name}"` : ''})`;
    if (layer.type === 'reshape')
      throw new FieldError(field, `${name}: structured pruning cannot rewrite a reshape layer`);
    const input = i === 0 ? (layer.inputShape ?? []) : shapes[i - 1]!;
    if (layer.type === 'dense' && input.length > 1)
      throw new FieldError(field, `${name}: structured pruning needs dense layers on flat inputs`);
  });
}

/** A compressed version outside its gate: not registered; the job fails (never retried) with the figures. */
export class GateRefusedError extends TqError {
  readonly status = 422;
  constructor(
    readonly failures: string[],
    readonly evaluation: CompressEvaluation,
  ) {
    super(`gate: ${failures.join('; ')} (nothing registered); figures: ${JSON.stringify(gateFigures(evaluation))}`);
  }
}

/** The bounds a result breaks, each with its measured figures; empty when it passes. */
export function gateFailures(gate: CompressGate | undefined, ev: CompressEvaluation): string[] {
  if (!gate) return [];
  const out: string[] = [];
  const { source: s, result: r } = ev;
  const f = (x: number | undefined): string => (x === undefined ? '?' : x.toFixed(4));
  if (gate.maxAccuracyDrop !== undefined) {
    const drop = (s.accuracy ?? Number.NaN) - (r.accuracy ?? Number.NaN);
    if (!(drop <= gate.maxAccuracyDrop))
      out.push(
        `accuracy dropped ${f(drop)} (${f(s.accuracy)} → ${f(r.accuracy)}), over maxAccuracyDrop ${gate.maxAccuracyDrop}`,
      );
  }
  if (gate.maxR2Drop !== undefined) {
    const drop = (s.r2 ?? Number.NaN) - (r.r2 ?? Number.NaN);
    if (!(drop <= gate.maxR2Drop))
      out.push(`R² dropped ${f(drop)} (${f(s.r2)} → ${f(r.r2)}), over maxR2Drop ${gate.maxR2Drop}`);
  }
  if (gate.maxRmseIncrease !== undefined) {
    const rise = (r.rmse ?? Number.NaN) - (s.rmse ?? Number.NaN);
    if (!(rise <= gate.maxRmseIncrease))
      out.push(`RMSE rose ${f(rise)} (${f(s.rmse)} → ${f(r.rmse)}), over maxRmseIncrease ${gate.maxRmseIncrease}`);
  }
  return out;
}

/** The figures a refused gate reports: quality and size of both sides. */
function gateFigures(ev: CompressEvaluation): Record<string, unknown> {
  const pick = (m: CompressEvaluation['source']): Record<string, unknown> => ({
    accuracy: m.accuracy,
    r2: m.r2,
    rmse: m.rmse,
    nonZeroParameters: m.nonZeroParameters,
    bytesGzip: m.bytesGzip,
    rowsPerSec: Math.round(m.rowsPerSec),
  });
  return { rows: ev.rows, source: pick(ev.source), result: pick(ev.result), delta: ev.delta };
}
