import type { ClientBase } from 'pg';
import type { Row } from '../delta/types';
import { copyEncoded, copyRows } from './copyRows';
import type { EncodedRows, RowBatches } from '../ports/targetTypes';
import { stageIsolating, withIsolation } from './isolateRows';
import type { StatementCounts } from './isolateRows';
import type { RejectedRow } from '../ports/targetTypes';
import type { TableRef } from '../ports/targetTypes';
import type { TargetColumn } from '../ports/targetTypes';

/**
 * How an ApplyStream stages a part and runs its statements over the staged rows:
 *  - plain (the fast path): each staging table filled by one COPY, each statement run
 *    once; the first row Postgres refuses fails the transaction.
 *  - isolating (dead letters, dry runs): COPY in chunks under a savepoint each, and each
 *    statement under a savepoint, bisecting on row-level errors; the rows the encoder or
 *    the server refuses are set aside in `rejected` and the others applied (isolateRows).
 * Both run in the stream's transaction and add no statement for empty input.
 */
export interface ApplyStrategy {
  /** COPYs rows, or COPY text already encoded for `columns`, into `table`; returns the rows staged. */
  stage(table: TableRef, columns: readonly TargetColumn[], op: RejectedRow['op'], rows: RowBatches | undefined, encoded: EncodedRows | undefined): Promise<number>;
  /**
   * Runs `stmt` over the rows staged in `staging` (not called when there are none) and
   * returns its counts and how many staged rows it refused. `stmt(where)` applies the
   * staged rows matching `where` ('' for all).
   */
  run<T extends StatementCounts>(staging: TableRef, columns: readonly TargetColumn[], op: RejectedRow['op'], stmt: (where: string) => Promise<T>, zero: T): Promise<{ counts: T; refused: number }>;
}

/** `key`: target names of the key columns, named in encoding errors. */
export function plainStrategy(client: ClientBase, key?: readonly string[]): ApplyStrategy {
  return {
    async stage(table, columns, _op, rows, encoded) {
      if (encoded) return stageEncoded(client, table, columns, encoded);
      // Each statement is a round trip that waits for this thread: skip the empty ones.
      if (!rows || (Array.isArray(rows) && rows.every((b: Row[]) => b.length === 0))) return 0;
      return copyRows(client, table, columns, rows, key ? { key } : {});
    },
    async run(_staging, _columns, _op, stmt) {
      return { counts: await stmt(''), refused: 0 };
    },
  };
}

/** Sets refused rows aside in `rejected`; `key` names the key columns reported for them. */
export function isolatingStrategy(client: ClientBase, key: readonly string[], rejected: RejectedRow[], batchRows: number): ApplyStrategy {
  return {
    async stage(table, columns, op, rows, encoded) {
      // Rows already encoded are not at hand to set aside: a line the server refuses fails the batch.
      if (encoded) return stageEncoded(client, table, columns, encoded);
      return rows ? stageIsolating(client, table, columns, key, rows, op, rejected, batchRows) : 0;
    },
    run: (staging, columns, op, stmt, zero) => withIsolation(client, staging, columns, key, op, stmt, zero, rejected),
  };
}

async function stageEncoded(client: ClientBase, table: TableRef, columns: readonly TargetColumn[], encoded: EncodedRows): Promise<number> {
  return encoded.count > 0 ? copyEncoded(client, table, columns, encoded) : 0;
}
