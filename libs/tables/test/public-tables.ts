import { createReadStream, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { readTable, type Cell, type TableSource } from '@tq/tables';

/**
 * Real public tables shipped in the npm package vega-datasets (a devDependency), read as they
 * come: penguins.json and cars.json are JSON arrays, streamed here as JSON Lines (one record per
 * line, same values) or as the files they are (jsonFileStream); seattle-weather.csv is read as the
 * CSV file it is.
 */
const DATA = join(dirname(require.resolve('vega-datasets')), '..', 'data');

export type PublicJson = 'penguins' | 'cars';

export function records(name: PublicJson): Array<Record<string, unknown>> {
  return JSON.parse(readFileSync(join(DATA, `${name}.json`), 'utf8')) as Array<Record<string, unknown>>;
}

/** The JSON array as a JSONL byte stream, in 4 KiB chunks so lines cross chunk boundaries. */
export function jsonlStream(name: PublicJson): Readable {
  const bytes = Buffer.from(
    records(name)
      .map((r) => JSON.stringify(r))
      .join('\n'),
  );
  return Readable.from(chunks(bytes, 4096));
}

/** The file as it ships: a pretty-printed JSON array, read from disk. */
export function jsonFileStream(name: PublicJson): Readable {
  return createReadStream(join(DATA, `${name}.json`));
}

export function openPublic(name: PublicJson | 'seattle-weather'): Promise<TableSource> {
  return name === 'seattle-weather'
    ? readTable(createReadStream(join(DATA, 'seattle-weather.csv')), 'csv')
    : readTable(jsonlStream(name), 'jsonl');
}

export function* chunks(bytes: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

/** All rows of a table (small tables only). */
export async function collect(table: TableSource): Promise<Cell[][]> {
  const out: Cell[][] = [];
  for await (const batch of table.batches) out.push(...batch);
  return out;
}
