import type { AppConfig } from './config.schema';

/** The bounds a table reader applies (structurally @tq/tables' TableLimits), from configuration. */
export function tableLimits(config: AppConfig): { maxColumns: number; maxRows: number; maxRecordBytes: number } {
  return {
    maxColumns: config.MAX_TABLE_COLUMNS,
    maxRows: config.MAX_TABLE_ROWS,
    maxRecordBytes: config.MAX_TABLE_RECORD_BYTES,
  };
}
