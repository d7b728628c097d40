import type { ClientBase } from 'pg';
import type { SwapBlocker } from '../ports/targetTypes';

/**
 * What makes a swap load unfaithful or impossible on an existing table (oid). A swap
 * COPYs into a new table and replaces the old one, so:
 *  - user row triggers and rules never see the loaded rows (a validation trigger would
 *    not reject anything; the trigger recreated afterwards leaves the rows as they came);
 *  - views and materialized views built on the table, foreign keys of other tables
 *    pointing at it, and any other object depending on it or its row type (a function
 *    taking the row type), keep DROP TABLE from working (only CASCADE would, dropping them).
 * Internal triggers (those of constraints) are not listed: the swap recreates their
 * constraints. Read before the snapshot is read, and again under the swap's lock.
 */
export async function findSwapBlockers(client: ClientBase, oid: number): Promise<SwapBlocker[]> {
  const r = await client.query<{ kind: SwapBlocker['kind']; name: string }>(SWAP_BLOCKERS_SQL, [oid]);
  return swapBlockersFromRows(r.rows);
}

/**
 * findSwapBlockers of the plain table `name` in `schema` (null: the current schema), as one
 * statement with its own parameters, for a caller that sends it in another statement's
 * round trip (the run lease's); no table, no rows.
 */
export function swapBlockersByNameQuery(schema: string | null, name: string): { text: string; values: unknown[] } {
  const oid = `(SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = COALESCE($1::text, current_schema()) AND c.relname = $2::text AND c.relkind = 'r')`;
  // Every use of the oid's placeholder reads the subquery (replaced in one pass: its own $1 stays).
  return { text: SWAP_BLOCKERS_SQL.replace(/\$1::oid/g, () => oid), values: [schema, name] };
}

/** findSwapBlockers's rows, in its order. */
export function swapBlockersFromRows(rows: ReadonlyArray<{ kind: SwapBlocker['kind']; name: string }>): SwapBlocker[] {
  const order: SwapBlocker['kind'][] = ['trigger', 'rule', 'view', 'materialized view', 'foreign key', 'dependent'];
  return rows
    .map((x) => ({ kind: x.kind, name: x.name }))
    .sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind) || a.name.localeCompare(b.name));
}

const SWAP_BLOCKERS_SQL = `SELECT 'trigger' AS kind, tgname::text AS name FROM pg_trigger WHERE tgrelid = $1::oid AND NOT tgisinternal
     UNION ALL
     SELECT 'rule', rulename::text FROM pg_rewrite WHERE ev_class = $1::oid AND rulename <> '_RETURN'
     UNION ALL
     SELECT DISTINCT CASE v.relkind WHEN 'm' THEN 'materialized view' ELSE 'view' END, format('%I.%I', vn.nspname, v.relname)
       FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid JOIN pg_class v ON v.oid = w.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace
      WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::oid AND v.oid <> $1::oid
     UNION ALL
     SELECT 'foreign key', format('%I of %I.%I', con.conname, rn.nspname, r.relname)
       FROM pg_constraint con JOIN pg_class r ON r.oid = con.conrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
      WHERE con.confrelid = $1::oid AND con.contype = 'f' AND con.conrelid <> $1::oid
     UNION ALL
     SELECT 'dependent', pg_describe_object(d.classid, d.objid, d.objsubid) FROM pg_depend d
      WHERE d.deptype = 'n' AND d.classid NOT IN ('pg_rewrite'::regclass, 'pg_constraint'::regclass)
        AND ((d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::oid)
          OR (d.refclassid = 'pg_type'::regclass AND d.refobjid = (SELECT reltype FROM pg_class WHERE oid = $1::oid)))`;
