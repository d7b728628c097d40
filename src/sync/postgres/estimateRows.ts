import type { SoftDeleteMarker, TableRef } from '../ports/targetTypes';
import { qualifiedRef } from './quoteIdent';
import { isLiveSql } from './softDeleteMarker';

/** Below this many rows (by reltuples) the target is counted, up to one more. */
export const ESTIMATE_EXACT_UP_TO = 100_000;

/**
 * The target's size for the delete guard in one statement: reltuples is -1 until the table
 * is first analyzed (or vacuumed); a large estimate is trusted, a small or unknown one is
 * counted, never reading more than exactUpTo + 1 rows (the CASE runs the count only then).
 * Its parameter $1 is the table's qualified name (to_regclass). Read by
 * PostgresTarget.estimateRows on its own, or in the apply's opening (ApplyRequest.estimateRows).
 */
export function estimateRowsSql(table: TableRef, marker: SoftDeleteMarker | undefined, exactUpTo: number): string {
  const live = marker ? ` WHERE ${isLiveSql('', marker)}` : '';
  return `SELECT e.n AS estimate, CASE WHEN e.n > ${exactUpTo} THEN NULL ELSE (SELECT count(*) FROM (SELECT 1 FROM ${qualifiedRef(table)}${live} LIMIT ${exactUpTo + 1}) s) END AS counted
                   FROM (SELECT c.reltuples::float8 AS n FROM pg_class c WHERE c.oid = to_regclass($1)) e`;
}

/** estimateRowsSql's row read (no row: the table does not exist, 0). */
export function estimateFromRow(row: { estimate?: unknown; counted?: unknown } | undefined, exactUpTo: number): number {
  if (!row) return 0;
  const estimate = Number(row.estimate);
  if (row.counted === null || row.counted === undefined) return Math.round(estimate);
  const n = Number(row.counted);
  return n > exactUpTo ? Math.max(n, Math.round(estimate)) : n;
}
