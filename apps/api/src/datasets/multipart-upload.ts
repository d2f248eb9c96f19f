import type { Readable } from 'node:stream';
import type { Request } from 'express';
import busboy, { type Busboy } from 'busboy';
import {
  FieldError,
  datasetUploadFieldsSchema,
  toFieldIssues,
  type DatasetInfo,
  type DatasetUploadFields,
} from '@tq/contracts';
import type { DatasetFormat, DatasetMeta, DatasetStore } from '@tq/storage';

/** A Map: a plain object would answer for "constructor" or "__proto__". */
const FORMAT_OF_EXTENSION = new Map<string, DatasetFormat>([
  ['csv', 'csv'],
  // Tab-separated: the CSV reader takes the separator its header line holds (comma, ;, tab, |).
  ['tsv', 'csv'],
  ['jsonl', 'jsonl'],
  ['ndjson', 'jsonl'],
  ['json', 'jsonl'],
]);

export interface ReceivedUpload {
  info: DatasetInfo;
  fields: DatasetUploadFields;
}

/**
 * Streams a multipart upload (`file` plus form fields, in any order) straight into the dataset
 * store: the file is never held in memory, only piped through busboy into a staging file. Form
 * fields that come after the file are validated when the request ends; a bad one (400 naming it)
 * or a file over `maxBytes` (413 naming `file`) stores nothing.
 */
export function receiveUpload(
  req: Request,
  store: DatasetStore,
  opts: { maxBytes: number; jobId: string },
): Promise<ReceivedUpload> {
  return new Promise<ReceivedUpload>((resolve, reject) => {
    let parser: Busboy;
    try {
      // A field holds at most 1 MiB (the `columns` JSON); the file's own limit is the store's.
      parser = busboy({ headers: req.headers, defParamCharset: 'utf8', limits: { fieldSize: 1 << 20, fields: 32 } });
    } catch (err) {
      reject(new FieldError('file', `a multipart/form-data body is expected (${(err as Error).message})`));
      return;
    }
    const raw = new Map<string, string>(); // a Map: "__proto__" or "constructor" are just names
    let settleFields!: (fields: DatasetUploadFields) => void;
    let failFields!: (err: unknown) => void;
    const fields = new Promise<DatasetUploadFields>((ok, fail) => ((settleFields = ok), (failFields = fail)));
    fields.catch(() => undefined); // awaited by create (or not at all when the file never came)
    let stored: Promise<DatasetInfo> | undefined;
    let storing: Readable | undefined;
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      failFields(err);
      // Ends the store's copy (it removes its staging file) when the failure is not its own.
      storing?.destroy(err instanceof Error ? err : undefined);
      // Drain the rest of the body, so the client reads the 4xx instead of a reset connection.
      req.unpipe(parser);
      req.resume();
      // The answer waits for the store to remove what it had written: once the client reads the
      // 4xx, nothing of the refused upload is left in the store.
      const cleaned = stored ? stored.then(noop, noop) : Promise.resolve();
      void cleaned.then(() => reject(err instanceof Error ? err : new Error(String(err))));
    };

    parser.on('field', (name, value, info) => {
      if (raw.has(name)) return fail(new FieldError(name, 'given more than once'));
      if (info.valueTruncated) return fail(new FieldError(name, 'longer than 1 MiB'));
      raw.set(name, value);
    });
    parser.on('file', (name, file, info) => {
      if (name !== 'file' || stored) {
        file.resume();
        return fail(new FieldError(name, stored ? 'one file per upload' : 'the file field is named "file"'));
      }
      const filename = info.filename ?? '';
      const format = FORMAT_OF_EXTENSION.get(filename.split('.').pop()?.toLowerCase() ?? '');
      if (!format) {
        file.resume();
        return fail(
          new FieldError(
            'file',
            `"${filename}" is not .csv, .tsv, .jsonl, .ndjson or .json (lines or an array of objects)`,
          ),
        );
      }
      const meta = fields.then((f): DatasetMeta => metaOf(f, filename, format, opts.jobId));
      storing = file;
      stored = store.create(meta, file, opts.maxBytes);
      stored.then((created) => fields.then((f) => resolve({ info: created, fields: f })), fail);
    });
    parser.on('fieldsLimit', () => fail(new FieldError('(body)', 'too many form fields')));
    parser.on('error', (err) => fail(new FieldError('file', `malformed multipart body: ${err.message}`)));
    parser.on('close', () => {
      if (!stored) return fail(new FieldError('file', 'a multipart file field named "file" is required'));
      const parsed = datasetUploadFieldsSchema.safeParse(Object.fromEntries(raw));
      if (parsed.success) settleFields(parsed.data);
      else fail(new FieldError(toFieldIssues(parsed.error)));
    });
    req.on('close', () => {
      // A client error (4xx), not a fault of the API: no 500 logged with a stack for every hang-up.
      if (!req.complete) fail(new FieldError('file', 'the upload was cut short (the client disconnected)'));
    });
    req.pipe(parser);
  });
}

function metaOf(fields: DatasetUploadFields, filename: string, format: DatasetFormat, jobId: string): DatasetMeta {
  return {
    name: fields.name ?? filename,
    format,
    labelColumn: fields.labelColumn,
    columns: fields.columns,
    task: fields.task,
    featureColumns: featureColumnsOf(fields),
    jobId,
  };
}

/** The comma-separated form field as names; undefined when not given. */
export function featureColumnsOf(fields: DatasetUploadFields): string[] | undefined {
  return fields.featureColumns
    ?.split(',')
    .map((c) => c.trim())
    .filter(Boolean);
}

const noop = (): void => undefined;
