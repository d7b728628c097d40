import type { ChangeType, DeltaField, Row } from '../../../src/sync/delta/types';

/** One DESCRIBE HISTORY row. */
export interface HistoryEntry {
  version: number;
  /** Commit time, milliseconds since the epoch. */
  timestamp: number;
  operation?: string;
  engineInfo?: string;
}

/** One table_changes() row before projection. */
export interface WarehouseChange {
  values: Row;
  changeType: ChangeType;
  commitVersion: number;
  /** Milliseconds since the epoch. */
  commitTimestamp: number;
}

/**
 * A table the fake warehouse can serve without the project's Delta reader (a catalog entry
 * that is not a folder path). Errors it throws as `WarehouseTableError` reach the driver as
 * Databricks errors with that class and SQLSTATE.
 */
export interface WarehouseTable {
  readonly label: string;
  /** Columns at the latest version (getColumns, and the projection of every query). */
  schema(): DeltaField[];
  latestVersion(): number;
  /** Newest first, like DESCRIBE HISTORY. */
  history(): HistoryEntry[];
  /** SHOW TBLPROPERTIES: the table configuration at the latest version plus the protocol. */
  properties(): Record<string, string>;
  cdfEnabled(version: number): boolean;
  /** The rows of `SELECT ... VERSION AS OF version`. */
  rows(version: number): Row[];
  /** The rows of `table_changes(t, start, end)`, `end` already capped at the latest version. */
  changes(start: number, end: number): WarehouseChange[];
}

export class WarehouseTableError extends Error {
  constructor(
    readonly errorClass: string,
    readonly sqlState: string,
    message: string,
  ) {
    super(message);
  }
}
