import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Readable } from 'node:stream';
import * as ort from 'onnxruntime-node';
import {
  fitPreprocessing,
  PREPROCESSING_OUTPUT,
  preprocessingToOnnx,
  profileTable,
  readTable,
  RowEncoder,
  TRAIN,
  VALIDATION,
  type TableSource,
} from '@tq/tables';
import { feeds } from './onnx-feeds';
import { collect, openPublic } from './public-tables';

/** Max |onnxruntime - RowEncoder| over every row of the table. */
interface Compared {
  diff: number;
  rows: number;
  width: number;
  unknown: Record<string, number>;
}

async function maxDiff(open: () => Promise<TableSource>, label: string, roles?: Uint8Array): Promise<Compared> {
  const profile = await profileTable(await open(), { label });
  const spec = await fitPreprocessing(await open(), roles ? { profile, roles } : { profile });
  const table = await open();
  const rows = await collect(table);
  const want = new Float32Array(rows.length * spec.width);
  const encoder = new RowEncoder(spec, table.columns);
  rows.forEach((r, i) => encoder.encode(r, want, i * spec.width, i + 1));
  const session = await ort.InferenceSession.create(preprocessingToOnnx(spec));
  try {
    const result = await session.run(feeds(spec, table.columns, rows));
    const got = result[PREPROCESSING_OUTPUT]!;
    assert.deepEqual(got.dims, [rows.length, spec.width]);
    const data = got.data as Float32Array;
    let diff = 0;
    for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(data[i]! - want[i]!));
    return { diff, rows: rows.length, width: spec.width, unknown: encoder.unknown };
  } finally {
    await session.release();
  }
}

describe('preprocessing as ONNX (onnxruntime-node)', () => {
  it('penguins: categories with missing and "." cells, numbers with nulls: equal to the TypeScript transform to 1e-5', async () => {
    const r = await maxDiff(() => openPublic('penguins'), 'Species');
    assert.equal(r.rows, 344);
    assert.ok(r.diff <= 1e-5, `max diff ${r.diff}`);
  });

  it('cars: dates as days, an identifier left out: equal to 1e-5', async () => {
    const r = await maxDiff(() => openPublic('cars'), 'Origin');
    assert.ok(r.diff <= 1e-5, `max diff ${r.diff}`);
  });

  it('booleans (any spelling seen), NA tokens and unseen categories: equal to 1e-5', async () => {
    const text = 'flag,x,c,y\nyes,1.5,u,a\nNo,N/A,v,b\nYES,NaN,u,a\n,2,v,b\nno,7,u,a\nyes,3,NA,b\nno,4,w,a\n';
    const open = () => readTable(Readable.from([Buffer.from(text)]), 'csv');
    // Fitted on the first 6 rows: "w" in row 7 is a category unseen in training.
    const r = await maxDiff(open, 'y', Uint8Array.from([TRAIN, TRAIN, TRAIN, TRAIN, TRAIN, TRAIN, VALIDATION]));
    assert.equal(r.width, 1 + 1 + 3);
    assert.deepEqual(r.unknown, { c: 1 });
    assert.ok(r.diff <= 1e-5, `max diff ${r.diff}`);
  });
});
