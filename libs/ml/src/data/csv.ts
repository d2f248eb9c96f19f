/**
 * RFC 4180 CSV: comma-separated, fields optionally in double quotes (a quote inside a quoted field
 * is doubled; quoted fields may hold commas and newlines), CRLF or LF line ends, a leading BOM
 * ignored, blank lines skipped. Hand-written because no CSV library is installed in the project and
 * this is the whole grammar we accept. Rows are handed out one at a time (`onRow`) so a large
 * upload is turned into numbers as it is read, never held as millions of cell strings.
 */
export function forEachCsvRow(text: string, onRow: (cells: string[], index: number) => void): void {
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const n = text.length;
  let row: string[] = [];
  let index = 0;
  const endRow = (): void => {
    if (!(row.length === 1 && row[0] === '')) onRow(row, index++); // a blank line is no row
    row = [];
  };
  while (i <= n) {
    if (i === n) {
      // end of text: close a last row without a line break
      if (row.length > 0) {
        row.push('');
        endRow();
      }
      break;
    }
    let value: string;
    if (text.charCodeAt(i) === 34 /* " */) {
      let out = '';
      let j = i + 1;
      for (;;) {
        const q = text.indexOf('"', j);
        if (q < 0) throw new CsvSyntaxError(index, 'a quoted field is not closed');
        out += text.slice(j, q);
        if (text.charCodeAt(q + 1) === 34) {
          out += '"';
          j = q + 2;
        } else {
          j = q + 1;
          break;
        }
      }
      value = out;
      i = j;
    } else {
      let j = i;
      while (j < n) {
        const c = text.charCodeAt(j);
        if (c === 44 || c === 10 || c === 13) break;
        j++;
      }
      value = text.slice(i, j);
      i = j;
    }
    row.push(value);
    const c = text.charCodeAt(i);
    if (c === 44) {
      i++;
      if (i === n) {
        row.push('');
        endRow();
        break;
      }
    } else if (c === 13 || c === 10) {
      i += c === 13 && text.charCodeAt(i + 1) === 10 ? 2 : 1;
      endRow();
    } else if (i < n) throw new CsvSyntaxError(index, 'text after a closing quote');
    else {
      endRow();
      break;
    }
  }
}

export class CsvSyntaxError extends Error {
  constructor(
    readonly rowIndex: number,
    reason: string,
  ) {
    super(reason);
  }
}
