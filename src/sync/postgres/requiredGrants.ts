import type { ClientBase } from 'pg';
import type { RequiredRight, RightsOptions, RightsPurpose, RightsReport } from '../ports/rights';
import type { TableRef } from '../ports/targetTypes';
import { qualified, quoteIdent } from './quoteIdent';
import { STATE_SCHEMA, STATE_TABLES, stateShapeColumns } from './stateTables';
import type { StateTable } from './stateTables';

/**
 * The rights a role needs on the target to run a mapping, read from the catalogs, with
 * the statements that grant them. Every statement the engine sends was checked for what
 * it needs (stateTables, runGuard, initialLoad, applyChanges, previewChanges,
 * loadDeadLetters, isolateRows):
 *  - every run: CONNECT; the state schema (USAGE, and CREATE while a state table is
 *    missing; an admin may create the schema, the engine then creates its tables, or
 *    rights on state tables another role created); USAGE on the table's schema;
 *  - initial load (swap and merge): CREATE on the table's schema, for the staging table the
 *    snapshot is COPYed into beside the table (not a temp table: a swap renames it into place);
 *  - swap: ownership of an existing table (DROP TABLE, then the rename); REFERENCES on the
 *    tables its foreign keys point at (the swap adds them to the new table);
 *  - merge: SELECT, INSERT, UPDATE and DELETE (soft delete: no DELETE) on the table, and
 *    USAGE on the sequences of its column defaults; LOCK ... SHARE ROW EXCLUSIVE is
 *    covered by UPDATE;
 *  - incremental (and dry run): SELECT, INSERT, UPDATE, DELETE (only with deletes "delete")
 *    on the table, the sequences, and TEMP on the database for the staging tables;
 *  - preview and verify: SELECT on the table and TEMP;
 *  - adding a column (soft-delete marker missing, schemaDrift add-columns): ownership.
 * The run lock (advisory locks), the lock-holder lookups (pg_locks, pg_stat_activity) and
 * the catalog reads need no grant. Identity columns (the state tables' ids) need no
 * sequence grant.
 */

/** What privilege check says whether the role holds a right (has_*_privilege, pg_has_role). */
interface Check {
  kind: 'database' | 'schema' | 'table' | 'sequence' | 'member';
  object: string;
  privilege: string;
}

interface Right extends Omit<RequiredRight, 'held'> {
  check: Check;
  /** Statements grouped into one line of the script share this (e.g. one GRANT ... ON TABLE x). */
  group?: { head: string; privilege: string; tail: string };
}

/** Facts about the target read once. */
interface TargetFacts {
  database: string;
  schema: string;
  name: string;
  schemaExists: boolean;
  table: { owner: string; columns: Set<string>; sequences: string[]; references: Array<{ sql: string; label: string; constraint: string }> } | undefined;
  state: { schema: boolean; tables: Map<StateTable, string>; current: boolean };
}

const STATE_TABLE_PRIVILEGES: Record<StateTable, readonly string[]> = {
  checkpoints: ['SELECT', 'INSERT', 'UPDATE'],
  runs: ['SELECT', 'INSERT', 'UPDATE'],
  dead_letters: ['INSERT'],
  // The run lease: taken (INSERT), renewed and taken over (UPDATE), released (DELETE), read.
  run_leases: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
};

const ALL_RUNS: RightsPurpose[] = ['state', 'initial-swap', 'initial-merge', 'incremental', 'preview'];

/**
 * The rights `role` (default: the connection's user) needs for `purposes` on `table`,
 * which of them it holds, and the script that grants them all.
 */
export async function requiredRights(client: ClientBase, table: TableRef, opts: RightsRequest): Promise<RightsReport> {
  const q = rightsFactsQuery(table, opts.role);
  const r = await client.query<FactsRow>(q.text, q.values);
  return rightsFromFacts(client, table, opts, r.rows[0] as FactsRow);
}

/** What requiredRights is asked. */
export interface RightsRequest {
  role?: string;
  purposes: readonly RightsPurpose[];
  options: RightsOptions;
  onStateShape?: (complete: boolean) => void;
}

/**
 * The report from the facts statement's row (rightsFactsQuery), read in whatever round trip
 * carried it (the run lease's: PostgresTarget.acquireRun). A check the row does not answer
 * is asked for on `client` (one more round trip, rare).
 */
export async function rightsFromFacts(client: ClientBase, table: TableRef, opts: RightsRequest, row: unknown): Promise<RightsReport> {
  const { me, roleExists, facts, privileges } = factsFromRow(table, row as FactsRow);
  opts.onStateShape?.(facts.state.schema && facts.state.tables.size === STATE_TABLES.length && facts.state.current);
  const role = opts.role ?? me;
  const rights = rightsFor(facts, role, opts.options).filter((r) => r.purposes.some((p) => opts.purposes.includes(p)));
  const checks = rights.map((r) => r.check);
  // Read with the facts (one round trip); a check they do not cover is asked for on its own.
  const known = roleExists && privileges ? heldFrom(privileges, facts, checks) : undefined;
  const held = known ?? (roleExists ? await evaluate(client, role, checks) : rights.map(() => undefined));
  // Rights on state tables the role owns are held and need no statement.
  const out: Array<Right & { held: boolean | undefined }> = rights.map((r, i) => ({ ...r, held: held[i] }));
  const label = `${facts.schema}.${table.name}`;
  return {
    role,
    roleExists,
    database: facts.database,
    table: label,
    tableExists: facts.table !== undefined,
    rights: out.map(({ check: _c, group: _g, ...r }) => r),
    sql: renderScript(out, { role, roleExists, database: facts.database, table: label, tableExists: facts.table !== undefined, purposes: opts.purposes }),
  };
}

interface FactsRow {
  me: string;
  role_exists: boolean;
  db: string;
  schema: string;
  schema_exists: boolean;
  table_owner: string | null;
  columns: string[];
  sequences: string[];
  refs: Array<{ sql: string; label: string; constraint: string }>;
  state_schema: boolean;
  state_tables: string[];
  state_current: boolean;
  state_owners: Record<string, string>;
  privileges: PrivilegesRow | null;
}

/**
 * What the role holds, read with the facts (null when the role does not exist): on the
 * database, on the table's schema and the state schema, on the table, the state tables
 * and the tables its foreign keys reference (by schema and name), on the sequences of its
 * column defaults (by format('%I.%I')), and membership in their owners' roles.
 */
interface PrivilegesRow {
  database: Record<string, boolean>;
  schemas: Record<string, Record<string, boolean>> | null;
  tables: Array<{ schema: string; name: string; sql: string; p: Record<string, boolean> }> | null;
  sequences: Record<string, boolean> | null;
  members: Record<string, boolean> | null;
}

/**
 * Everything the rights check reads from the catalogs, in one statement (one round trip):
 * the role, the database and schema, the table (owner, columns, the sequences its column
 * defaults draw from, the tables its foreign keys reference) and the state tables (which
 * exist, whether current, their owners).
 */
export function rightsFactsQuery(table: TableRef, role: string | undefined): { text: string; values: unknown[] } {
  return {
    text: `WITH base AS (SELECT current_database()::text AS db, COALESCE($2::text, current_schema())::text AS schema),
          t AS (SELECT c.oid, pg_get_userbyid(c.relowner)::text AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, base
                 WHERE n.nspname = base.schema AND c.relname = $3 AND c.relkind IN ('r', 'p') LIMIT 1)
     SELECT current_user::text AS me,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = COALESCE($1::text, current_user)) AS role_exists,
            base.db, base.schema,
            EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = base.schema) AS schema_exists,
            (SELECT owner FROM t) AS table_owner,
            ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = (SELECT oid FROM t) AND attnum > 0 AND NOT attisdropped) AS columns,
            ARRAY(SELECT DISTINCT format('%I.%I', sn.nspname, s.relname) AS sql FROM pg_attrdef ad
                    JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass
                    JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S' JOIN pg_namespace sn ON sn.oid = s.relnamespace
                   WHERE ad.adrelid = (SELECT oid FROM t) ORDER BY 1) AS sequences,
            (SELECT COALESCE(json_agg(json_build_object('sql', format('%I.%I', rn.nspname, r.relname), 'label', rn.nspname || '.' || r.relname, 'constraint', con.conname::text) ORDER BY con.conname::text), '[]'::json)
               FROM pg_constraint con JOIN pg_class r ON r.oid = con.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
              WHERE con.conrelid = (SELECT oid FROM t) AND con.contype = 'f' AND con.confrelid <> con.conrelid) AS refs,
            ${stateShapeColumns('$4', '$5')},
            (SELECT COALESCE(json_object_agg(c.relname::text, pg_get_userbyid(c.relowner)::text), '{}'::json) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $4 AND c.relname = ANY($5::text[])) AS state_owners,
            ${PRIVILEGES_SQL} AS privileges
       FROM base`,
    values: [role ?? null, table.schema ?? null, table.name, STATE_SCHEMA, [...STATE_TABLES]],
  };
}

/** The facts statement's row, as requiredRights reads it. */
function factsFromRow(table: TableRef, row: FactsRow): { me: string; roleExists: boolean; facts: TargetFacts; privileges: PrivilegesRow | null } {
    const info: TargetFacts['table'] = row.table_owner === null
    ? undefined
    : { owner: row.table_owner, columns: new Set(row.columns), sequences: row.sequences, references: row.refs };
  const present = new Set(row.state_tables);
  const tables = new Map<StateTable, string>();
  for (const [relname, owner] of Object.entries(row.state_owners)) {
    if (present.has(relname) && (STATE_TABLES as readonly string[]).includes(relname)) tables.set(relname as StateTable, owner);
  }
  return {
    me: row.me,
    roleExists: row.role_exists === true,
    privileges: row.privileges,
    facts: { database: row.db, schema: row.schema, name: table.name, schemaExists: row.schema_exists, table: info, state: { schema: row.state_schema, tables, current: row.state_current } },
  };
}

/** Every right the mapping's runs can need on this target, with the purposes that need it. */
function rightsFor(f: TargetFacts, role: string, o: RightsOptions): Right[] {
  const r = quoteIdent(role);
  const db = quoteIdent(f.database);
  const out: Right[] = [];
  const dbRight = (privilege: 'CONNECT' | 'TEMPORARY', why: string, purposes: RightsPurpose[]): Right => ({
    what: `${privilege === 'TEMPORARY' ? 'TEMP' : privilege} on database ${f.database}`, why, purposes,
    sql: `GRANT ${privilege} ON DATABASE ${db} TO ${r};`,
    check: { kind: 'database', object: f.database, privilege },
    group: { head: 'GRANT', privilege, tail: ` ON DATABASE ${db} TO ${r};` },
  });
  const schemaRight = (schema: string, exists: boolean, privilege: 'USAGE' | 'CREATE', why: string, purposes: RightsPurpose[]): Right => {
    const s = quoteIdent(schema);
    const grant = `GRANT ${privilege} ON SCHEMA ${s} TO ${r};`;
    return {
      what: `${privilege} on schema ${schema}${exists ? '' : ' (which does not exist yet)'}`, why, purposes,
      // A missing schema is created by the admin first (the role could only with CREATE on the database).
      sql: exists ? grant : `CREATE SCHEMA IF NOT EXISTS ${s}; ${grant}`,
      check: exists ? { kind: 'schema', object: schema, privilege } : { kind: 'database', object: f.database, privilege: 'CREATE' },
      group: { head: exists ? 'GRANT' : `CREATE SCHEMA IF NOT EXISTS ${s};\nGRANT`, privilege, tail: ` ON SCHEMA ${s} TO ${r};` },
    };
  };
  const tableRight = (sql: string, label: string, privilege: string, why: string, purposes: RightsPurpose[]): Right => ({
    what: `${privilege} on table ${label}`, why, purposes,
    sql: `GRANT ${privilege} ON TABLE ${sql} TO ${r};`,
    check: { kind: 'table', object: sql, privilege },
    group: { head: 'GRANT', privilege, tail: ` ON TABLE ${sql} TO ${r};` },
  });

  out.push(dbRight('CONNECT', 'every command: connecting', ALL_RUNS));
  // The engine's state: created by the role when missing (the schema by an admin, or by the
  // role with CREATE on the database), else used with rights on the tables another role made.
  const st = f.state;
  const stateWhy = `the engine's state (${STATE_SCHEMA}: checkpoints, run log, dead letters)`;
  const stateComplete = st.schema && st.tables.size === STATE_TABLES.length && st.current;
  out.push(schemaRight(STATE_SCHEMA, st.schema, 'USAGE', stateWhy, ALL_RUNS));
  if (!stateComplete) out.push(schemaRight(STATE_SCHEMA, st.schema, 'CREATE', `creating the missing state tables in ${STATE_SCHEMA} (the first run does)`, ALL_RUNS));
  for (const [t, owner] of st.tables) {
    if (owner === role) continue;
    const sql = qualified(STATE_SCHEMA, t);
    const privileges = t === 'dead_letters' && !o.deadLetter ? [] : STATE_TABLE_PRIVILEGES[t];
    for (const p of privileges) out.push(tableRight(sql, `${STATE_SCHEMA}.${t}`, p, t === 'dead_letters' ? 'setting refused rows aside (deadLetter)' : stateWhy, ALL_RUNS));
    if (t === 'runs' && !st.current) {
      out.push(ownership(sql, `${STATE_SCHEMA}.runs`, owner, r, 'adding the columns this version records failures and mode auto\'s choices in (error_kind, error_retry, error_hint, auto_path, auto_reason)', ALL_RUNS));
    }
  }

  out.push(schemaRight(f.schema, f.schemaExists, 'USAGE', `reaching the table in schema ${f.schema}`, ALL_RUNS));
  out.push(schemaRight(f.schema, f.schemaExists, 'CREATE', 'the staging table an initial load COPYs the snapshot into, beside the table', ['initial-swap', 'initial-merge']));
  out.push(dbRight('TEMPORARY', 'the staging tables of incremental syncs, preview, verify and dry run', ['incremental', 'preview']));
  const t = f.table;
  if (t) {
    const sql = qualified(f.schema, f.name);
    const label = `${f.schema}.${f.name}`;
    out.push(ownership(sql, label, t.owner, r, 'an initial load by swap, which drops the old table and renames the loaded one into its place', ['initial-swap'], true));
    out.push(tableRight(sql, label, 'SELECT', 'comparing rows (merge, incremental syncs, preview, verify)', ['initial-merge', 'incremental', 'preview']));
    out.push(tableRight(sql, label, 'INSERT', 'inserting rows (merge, incremental syncs)', ['initial-merge', 'incremental']));
    out.push(tableRight(sql, label, 'UPDATE', 'updating rows (merge, incremental syncs)', ['initial-merge', 'incremental']));
    const mergeDeletes = o.deletes !== 'soft-delete';
    const syncDeletes = o.deletes === 'delete';
    if (mergeDeletes || syncDeletes) {
      out.push(tableRight(sql, label, 'DELETE', [mergeDeletes ? 'a merge deleting rows the snapshot lacks' : undefined, syncDeletes ? 'incremental syncs applying deletes' : undefined].filter(Boolean).join(', '),
        [...(mergeDeletes ? ['initial-merge' as const] : []), ...(syncDeletes ? ['incremental' as const] : [])]));
    }
    for (const s of t.sequences) {
      out.push({
        what: `USAGE on sequence ${s.replace(/"/g, '')}`, why: `column defaults of ${label} (inserted rows draw from it)`, purposes: ['initial-merge', 'incremental'],
        sql: `GRANT USAGE ON SEQUENCE ${s} TO ${r};`, check: { kind: 'sequence', object: s, privilege: 'USAGE' },
      });
    }
    for (const ref of t.references) {
      out.push(tableRight(ref.sql, ref.label, 'REFERENCES', `the foreign key ${ref.constraint} a swap adds to the new table`, ['initial-swap']));
    }
    if (o.softDeleteColumn !== undefined && !t.columns.has(o.softDeleteColumn)) {
      out.push(ownership(sql, label, t.owner, r, `adding the soft-delete column "${o.softDeleteColumn}" (ALTER TABLE)`, ['initial-merge', 'incremental']));
    }
    if (o.addsColumns) {
      out.push({ ...ownership(sql, label, t.owner, r, 'changing the columns as the Delta schema changes (schemaDrift: ALTER TABLE ADD / RENAME / ALTER / DROP COLUMN), when it does', ['incremental']), conditional: true });
    }
  }
  // Ownership and the privileges it implies: the owner needs no GRANT on its own table.
  return dedupe(out);
}

function ownership(sql: string, label: string, owner: string, r: string, why: string, purposes: RightsPurpose[], swap = false): Right {
  return {
    what: `ownership of table ${label} (owned by ${owner})`, why, purposes,
    sql: `ALTER TABLE ${sql} OWNER TO ${r};`,
    check: { kind: 'member', object: owner, privilege: 'USAGE' },
    ...(swap ? { ownership: true } : {}),
  };
}

/** One right per (what, sql): purposes merged. */
function dedupe(rights: Right[]): Right[] {
  const out = new Map<string, Right>();
  for (const r of rights) {
    const k = `${r.what}\u0000${r.sql}`;
    const had = out.get(k);
    if (had) out.set(k, { ...had, why: had.why === r.why ? had.why : `${had.why}; ${r.why}`, purposes: [...new Set([...had.purposes, ...r.purposes])], conditional: had.conditional === true && r.conditional === true ? true : undefined, ownership: had.ownership || r.ownership ? true : undefined });
    else out.set(k, r);
  }
  return [...out.values()].map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as Right);
}

/**
 * The privileges the facts query reads for the role (COALESCE($1, current_user)) when it
 * exists: every one a run's rights can check (rightsFor), by OID, so a missing object is
 * never looked up by name (has_*_privilege on a name that does not exist fails).
 */
const R = 'COALESCE($1::text, current_user)';
const TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'REFERENCES'];
const PRIVILEGES_SQL = `CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${R}) THEN json_build_object(
    'database', json_build_object(${['CONNECT', 'TEMPORARY', 'CREATE'].map((p) => `'${p}', has_database_privilege(${R}, base.db, '${p}')`).join(', ')}),
    'schemas', (SELECT json_object_agg(n.nspname::text, json_build_object('USAGE', has_schema_privilege(${R}, n.oid, 'USAGE'), 'CREATE', has_schema_privilege(${R}, n.oid, 'CREATE')))
                  FROM pg_namespace n WHERE n.nspname IN (base.schema, $4)),
    'tables', (SELECT json_agg(json_build_object('schema', n.nspname::text, 'name', c.relname::text, 'sql', format('%I.%I', n.nspname, c.relname),
                                 'p', json_build_object(${TABLE_PRIVILEGES.map((p) => `'${p}', has_table_privilege(${R}, c.oid, '${p}')`).join(', ')})))
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.oid = (SELECT oid FROM t) OR (n.nspname = $4 AND c.relname = ANY($5::text[]))
                   OR c.oid IN (SELECT con.confrelid FROM pg_constraint con WHERE con.conrelid = (SELECT oid FROM t) AND con.contype = 'f')),
    'sequences', (SELECT json_object_agg(format('%I.%I', sn.nspname, s.relname), has_sequence_privilege(${R}, s.oid, 'USAGE')) FROM pg_attrdef ad
                    JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass
                    JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S' JOIN pg_namespace sn ON sn.oid = s.relnamespace
                   WHERE ad.adrelid = (SELECT oid FROM t)),
    'members', (SELECT json_object_agg(o.owner, pg_has_role(${R}, o.owner, 'USAGE')) FROM (
                  SELECT DISTINCT pg_get_userbyid(c.relowner)::text AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE c.oid = (SELECT oid FROM t) OR (n.nspname = $4 AND c.relname = ANY($5::text[]))) o)
  ) END`;

/** Each check's answer from the privileges read with the facts, or undefined when one is not among them. */
function heldFrom(p: PrivilegesRow, f: TargetFacts, checks: readonly Check[]): boolean[] | undefined {
  const tables = new Map<string, Record<string, boolean>>();
  for (const t of p.tables ?? []) {
    tables.set(t.sql, t.p);
    tables.set(qualified(t.schema, t.name), t.p);
  }
  const out: boolean[] = [];
  for (const c of checks) {
    let v: boolean | undefined;
    if (c.kind === 'database') v = c.object === f.database ? p.database[c.privilege] : undefined;
    else if (c.kind === 'schema') v = p.schemas?.[c.object]?.[c.privilege];
    else if (c.kind === 'table') v = tables.get(c.object)?.[c.privilege];
    else if (c.kind === 'sequence') v = c.privilege === 'USAGE' ? p.sequences?.[c.object] : undefined;
    else v = c.privilege === 'USAGE' ? p.members?.[c.object] : undefined;
    if (typeof v !== 'boolean') return undefined;
    out.push(v);
  }
  return out;
}

/** Whether `role` holds each check, in one round trip. */
async function evaluate(client: ClientBase, role: string, checks: readonly Check[]): Promise<boolean[]> {
  if (checks.length === 0) return [];
  const r = await client.query<{ ok: boolean }>(
    `SELECT CASE x.k
              WHEN 'database' THEN has_database_privilege($1, x.o, x.p)
              WHEN 'schema' THEN has_schema_privilege($1, x.o, x.p)
              WHEN 'table' THEN has_table_privilege($1, x.o, x.p)
              WHEN 'sequence' THEN has_sequence_privilege($1, x.o, x.p)
              WHEN 'member' THEN pg_has_role($1, x.o, x.p)
            END AS ok
       FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS x(k, o, p, i) ORDER BY x.i`,
    [role, checks.map((c) => c.kind), checks.map((c) => c.object), checks.map((c) => c.privilege)],
  );
  return r.rows.map((x) => x.ok === true);
}

/**
 * The script: a header, then one statement per line with what it is for, privileges on
 * one object merged into one GRANT. Privileges a right of ownership of the same table
 * implies are left out (the owner has them).
 */
function renderScript(
  rights: ReadonlyArray<Right & { held: boolean | undefined }>,
  c: { role: string; roleExists: boolean; database: string; table: string; tableExists: boolean; purposes: readonly RightsPurpose[] },
): string {
  const ownedTables = new Set(rights.filter((r) => r.check.kind === 'member' && r.sql.startsWith('ALTER TABLE') && !r.conditional).map((r) => r.sql.slice('ALTER TABLE '.length, r.sql.indexOf(' OWNER TO'))));
  const lines: string[] = [];
  const runs = [
    c.purposes.includes('initial-swap') ? 'initial load by swap' : undefined,
    c.purposes.includes('initial-merge') ? 'initial load by merge' : undefined,
    c.purposes.includes('incremental') ? 'incremental syncs and dry runs' : undefined,
    'preview, verify, status',
  ].filter(Boolean).join(', ');
  lines.push(`-- Rights of role ${c.role} on database ${c.database} for ${c.table}: ${runs}.`);
  lines.push('-- Run as the database owner or an admin (on Neon: the role that owns the database). Each statement can be run again.');
  if (!c.roleExists) lines.push(`-- Role ${c.role} does not exist yet: CREATE ROLE ${quoteIdent(c.role)} LOGIN PASSWORD '...'; (on Neon: create it in the console or API)`);
  const emitted = new Map<string, { privileges: string[]; whys: string[]; tail: string; head: string; held: boolean }>();
  const order: string[] = [];
  for (const r of rights) {
    const onOwned = r.check.kind === 'table' && [...ownedTables].some((t) => r.check.object === t);
    if (onOwned) continue;
    const g = r.group;
    const key = g ? `${g.head}\u0000${g.tail}` : r.sql;
    const e = emitted.get(key);
    const why = `${r.what.split(' on ')[0] === r.what ? r.what : r.what.split(' on ')[0]}: ${r.why}${r.conditional ? ' (only then)' : ''}`;
    if (e) {
      if (g && !e.privileges.includes(g.privilege)) e.privileges.push(g.privilege);
      e.whys.push(why);
      e.held &&= r.held === true;
    } else {
      emitted.set(key, { privileges: g ? [g.privilege] : [], whys: [why], tail: g ? g.tail : '', head: g ? g.head : r.sql, held: r.held === true });
      order.push(key);
    }
  }
  for (const k of order) {
    const e = emitted.get(k) as { privileges: string[]; whys: string[]; tail: string; head: string; held: boolean };
    for (const w of e.whys) lines.push(`-- ${w}`);
    lines.push(e.privileges.length > 0 ? `${e.head} ${e.privileges.join(', ')}${e.tail}` : e.head);
  }
  if (!c.tableExists) lines.push(`-- ${c.table} does not exist yet: the initial load creates it, owned by ${c.role}, which then needs no grant on it.`);
  return lines.join('\n') + '\n';
}
