import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Real public tables from the npm package vega-datasets (a devDependency), turned into the files a
 * user would upload: the package's JSON arrays as CSV (header = the JSON keys, with their spaces and
 * parentheses; JSON null written as `NA`) or as JSON Lines. Values are never rescaled.
 */
const DATA = join(dirname(require.resolve('vega-datasets')), '..', 'data');

export type Row = Record<string, string | number | boolean | null>;

export function publicRecords(name: 'penguins' | 'cars'): Row[] {
  return JSON.parse(readFileSync(join(DATA, `${name}.json`), 'utf8')) as Row[];
}

export function publicFile(name: 'seattle-weather.csv'): Buffer {
  return readFileSync(join(DATA, name));
}

/** RFC 4180: quoted when a cell holds the separator, a quote or a line break. */
function csvCell(v: Row[string], separator: string, decimalComma = false): string {
  if (v === null) return 'NA';
  const s = decimalComma && typeof v === 'number' ? String(v).replace('.', ',') : String(v);
  return s.includes(separator) || /["\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** How a spreadsheet writes the file: its separator, line break, and a BOM (Excel's "CSV UTF-8"). */
export interface CsvStyle {
  separator?: ',' | ';' | '\t';
  eol?: '\n' | '\r\n';
  bom?: boolean;
  /** Numbers written with a decimal comma (39,1), as Excel does where that is the decimal mark. */
  decimalComma?: boolean;
}

export function toCsv(rows: Row[], style: CsvStyle = {}): string {
  const { separator = ',', eol = '\n', bom = false, decimalComma = false } = style;
  const columns = Object.keys(rows[0] ?? {});
  const lines = [columns.map((c) => csvCell(c, separator)).join(separator)];
  for (const r of rows) lines.push(columns.map((c) => csvCell(r[c] ?? null, separator, decimalComma)).join(separator));
  return `${bom ? '\uFEFF' : ''}${lines.join(eol)}${eol}`;
}

export function toJsonl(rows: Row[]): string {
  return `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;
}
