import { z } from 'zod';

/**
 * Tables as users upload them (issue 8): the profile the API returns for a dataset, the per-column
 * overrides a user may send, and the fitted preprocessing stored with a model version
 * (`preprocessing.json`). Produced and consumed by @tq/tables.
 */

/** What a column holds, inferred in one streaming pass (see @tq/tables profile). */
export const COLUMN_KINDS = ['numeric', 'categorical', 'boolean', 'datetime', 'text', 'constant'] as const;
export const columnKindSchema = z.enum(COLUMN_KINDS);
export type ColumnKind = z.infer<typeof columnKindSchema>;

/** A user's override per column name: force a kind, or drop the column. */
export const columnOverrideSchema = z.enum(['numeric', 'categorical', 'boolean', 'datetime', 'ignore']);
export const columnOverridesSchema = z.record(z.string().min(1).max(256), columnOverrideSchema);
export type ColumnOverrides = z.infer<typeof columnOverridesSchema>;

export const TASKS = ['classification', 'regression'] as const;
export const taskSchema = z.enum(TASKS);
export type Task = z.infer<typeof taskSchema>;

const count = z.number().int().nonnegative();
const categoryCountSchema = z.object({ value: z.string(), count });

export const columnProfileSchema = z.object({
  name: z.string(),
  kind: columnKindSchema,
  /** Cells that were empty, NA, N/A, null, NaN or JSON null. */
  missing: count,
  /** Exact up to 1,000 values; above, a HyperLogLog estimate (`distinctExact: false`). */
  distinct: count,
  distinctExact: z.boolean(),
  /** Numeric and datetime columns (datetimes as days since 1970-01-01 UTC). */
  min: z.number().optional(),
  max: z.number().optional(),
  mean: z.number().optional(),
  std: z.number().optional(),
  /** Categorical, boolean and text columns: the most frequent values, most frequent first. */
  top: z.array(categoryCountSchema).optional(),
  /** Set when the column is not used as a feature, with the reason (all missing, constant, identifier, user). */
  dropped: z.string().optional(),
  /** Set when a user override decided the kind. */
  overridden: z.boolean().optional(),
});
export type ColumnProfile = z.infer<typeof columnProfileSchema>;

export const labelProfileSchema = z.discriminatedUnion('task', [
  z.object({ column: z.string(), task: z.literal('classification'), classes: z.array(categoryCountSchema) }),
  z.object({
    column: z.string(),
    task: z.literal('regression'),
    min: z.number(),
    max: z.number(),
    mean: z.number(),
    std: z.number(),
  }),
]);
export type LabelProfile = z.infer<typeof labelProfileSchema>;

/**
 * The field separators a CSV may use, in the order a tie is settled: comma; semicolon (what Excel
 * writes where the decimal mark is a comma); tab (TSV); pipe.
 */
export const CSV_DELIMITERS = [',', ';', '\t', '|'] as const;
export type CsvDelimiter = (typeof CSV_DELIMITERS)[number];

export const tableProfileSchema = z.object({
  rows: count,
  /** A CSV's field separator, read from its header line (the one outside quotes it holds most of). */
  delimiter: z.enum(CSV_DELIMITERS).optional(),
  /**
   * A CSV separated by semicolons, tabs or pipes: the cells read as numbers with a decimal comma
   * (`1,5` as 1.5; one with a thousands mark as well, `1.234,5`, stays text). Absent when none.
   */
  decimalCommas: count.optional(),
  columns: z.array(columnProfileSchema),
  /** Present when a label column was named; its task is inferred unless the user set one. */
  label: labelProfileSchema.optional(),
  /**
   * Rows that could not be read (a CSV record with another number of cells than the header, a JSON
   * line that does not parse): counted in `rows`, left out of the column statistics. A batch infer
   * reports each one in its errors; training refuses the table, naming the first.
   */
  malformedRows: z
    .object({ count: count, first: z.object({ row: z.number().int().min(1), message: z.string() }) })
    .optional(),
});
export type TableProfile = z.infer<typeof tableProfileSchema>;

/** One input column's fitted transform; `width` output features each, in this order. */
export const columnStepSchema = z.discriminatedUnion('kind', [
  /** (x, or `fill` when missing) - mean) / std. `fill` is the training mean or median. */
  z.object({
    name: z.string(),
    kind: z.literal('numeric'),
    fill: z.number(),
    mean: z.number(),
    std: z.number().positive(),
  }),
  /** Like numeric on days since 1970-01-01 UTC (one feature; calendar parts are not expanded). */
  z.object({
    name: z.string(),
    kind: z.literal('datetime'),
    fill: z.number(),
    mean: z.number(),
    std: z.number().positive(),
  }),
  /** 1 for a token in `trueTokens`, 0 for one in `falseTokens`, `fill` (training mode) when missing. */
  z.object({
    name: z.string(),
    kind: z.literal('boolean'),
    trueTokens: z.array(z.string()),
    falseTokens: z.array(z.string()),
    fill: z.union([z.literal(0), z.literal(1)]),
  }),
  /** One-hot over `categories`, then one slot for unknown or missing values. */
  z.object({ name: z.string(), kind: z.literal('categorical'), categories: z.array(z.string()).min(1) }),
]);
export type ColumnStep = z.infer<typeof columnStepSchema>;

export const targetSpecSchema = z.discriminatedUnion('task', [
  /** Output index k is `classes[k]`. */
  z.object({ column: z.string(), task: z.literal('classification'), classes: z.array(z.string()).min(2) }),
  /** The model learns (y - mean) / std; answers are mapped back with y = out * std + mean. */
  z.object({ column: z.string(), task: z.literal('regression'), mean: z.number(), std: z.number().positive() }),
]);
export type TargetSpec = z.infer<typeof targetSpecSchema>;

/** `preprocessing.json`: everything needed to turn raw records into the model's input row. */
export const preprocessingSpecSchema = z.object({
  version: z.literal(1),
  /** Input columns in feature order. */
  steps: z.array(columnStepSchema),
  /** Columns present in the data but not used, with the reason. */
  ignored: z.array(z.object({ name: z.string(), reason: z.string() })),
  target: targetSpecSchema,
  /** Feature count of a transformed row (the first layer's input size). */
  width: z.number().int().positive(),
});
export type PreprocessingSpec = z.infer<typeof preprocessingSpecSchema>;
