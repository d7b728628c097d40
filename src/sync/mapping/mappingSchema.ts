import { z } from 'zod';
import { isLakebaseReference, parseLakebaseReference } from './lakebaseReference';
import { NEON_REFERENCE_FORMAT, isNeonReference, parseNeonReference } from './neonReference';

/**
 * The mapping file (`.delta-sync/<name>.json`): which Delta table feeds which Postgres
 * table, and how. This module holds only the zod schema and its types; `parseMapping`
 * (loadMapping.ts) adds the cross-field checks and the error formatting, and
 * `scripts/gen-mapping-schema.ts` exports the JSON Schema that editors use for completion.
 *
 * The schema must stay representable in JSON Schema: no transforms, only defaults and
 * refinements that JSON Schema can express (`z.toJSONSchema` throws otherwise).
 *
 * Name spaces: `columns.include`, `columns.exclude` and the keys of `columns.rename` name
 * Delta (source) columns; the values of `columns.rename`, the keys of `columns.types`,
 * `key` and `deletes.column` name target (Postgres) columns.
 */

/** Postgres truncates identifiers longer than 63 bytes (NAMEDATALEN - 1). */
export const MAX_IDENTIFIER_BYTES = 63;

/**
 * Names we write into the target. Restricted on purpose (even though we always quote):
 * a plain identifier is portable across psql, ORMs and GRANTs, and never collides after
 * Postgres' silent truncation.
 */
export const IDENTIFIER_RE = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;
const IDENTIFIER_MESSAGE =
  'must be a valid identifier (a letter or _, then letters, digits, _ or $; at most 63 characters)';

const identifier = z.string().regex(IDENTIFIER_RE, { error: IDENTIFIER_MESSAGE });

/** A Delta column name as the user sees it: anything non-empty (Delta allows spaces etc.). */
const sourceColumn = z.string().min(1, { error: 'must be a non-empty column name' });

const uniqueList = <T extends z.ZodType<string>>(item: T, what: string) =>
  z.array(item).refine((xs) => new Set(xs).size === xs.length, {
    error: `must not list the same ${what} twice`,
  });

/**
 * A Postgres type name in a safe grammar, never arbitrary SQL: one or more identifier
 * words separated by single spaces (optionally schema-qualified first word), an optional
 * `(p)` or `(p,s)` after any word, and optional trailing `[]`s. Accepts `text`, `bigint`,
 * `numeric(38,9)`, `double precision`, `timestamp(3) with time zone`, `varchar(20)[]`,
 * `public.my_enum`. No quotes, semicolons or comments can pass, so it can be spliced into
 * DDL as-is.
 */
export const PG_TYPE_RE =
  /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?(\(\d{1,4}(, ?\d{1,4})?\))?( [A-Za-z_][A-Za-z0-9_]*(\(\d{1,4}(, ?\d{1,4})?\))?)*(\[\])*$/;

export const pgTypeSchema = z
  .string()
  .max(100, { error: 'is too long for a type name' })
  .regex(PG_TYPE_RE, {
    error:
      'must be a Postgres type name such as text, bigint, numeric(38,9), double precision, timestamptz or text[] (no SQL expressions)',
  });

/** A `${env:NAME}` reference: the value is read from the environment at run time. */
export const ENV_REF_RE = /^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$/;
/** A connection saved in the extension (secrets live in SecretStorage, not in the file). */
export const CONNECTION_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
const POSTGRES_URL_RE = /^postgres(ql)?:\/\//;

/**
 * A postgres URL with a password is refused: mapping files live in the workspace and are
 * meant to be committed, and credentials in plain text is the top complaint about data
 * extensions. Use a named connection or `${env:DATABASE_URL}` instead.
 */
function urlHasPassword(s: string): boolean {
  try {
    const u = new URL(s);
    if (u.password !== '') return true;
    return u.searchParams.has('password');
  } catch {
    return false;
  }
}

const targetConnection = z
  .string()
  .min(1, { error: 'must name a connection' })
  .superRefine((s, ctx) => {
    if (ENV_REF_RE.test(s) || CONNECTION_NAME_RE.test(s)) return;
    if (isLakebaseReference(s)) {
      const parsed = parseLakebaseReference(s);
      if (!parsed.ok) ctx.addIssue({ code: 'custom', message: `is not a valid Lakebase target: ${parsed.problem}` });
      return;
    }
    if (isNeonReference(s)) {
      const parsed = parseNeonReference(s);
      if (!parsed.ok) ctx.addIssue({ code: 'custom', message: `a Neon reference ${parsed.reason}` });
      return;
    }
    if (POSTGRES_URL_RE.test(s)) {
      if (urlHasPassword(s)) {
        ctx.addIssue({
          code: 'custom',
          message:
            'must not contain a password: use a saved connection name or ${env:DATABASE_URL} so the secret stays out of the workspace',
        });
      }
      return;
    }
    ctx.addIssue({
      code: 'custom',
      message:
        `must be a saved connection name, a postgres:// URL without a password, an environment reference like \${env:DATABASE_URL}, a Neon branch ${NEON_REFERENCE_FORMAT}, or a Lakebase database (lakebase:projects/<project>/branches/<branch>/endpoints/<endpoint>/<database>?profile=<profile>&host=<host>, or lakebase:<instance>/<database>?profile=<profile>)`,
    });
  })
  .meta({
    description:
      `A saved connection name, a postgres:// URL without a password, \${env:VAR} (read from the environment at run time), a Neon branch ${NEON_REFERENCE_FORMAT} (URI and password fetched from the Neon API at run time), or a Lakebase database: lakebase:projects/<project>/branches/<branch>/endpoints/<endpoint>/<database>?profile=<Databricks profile>&host=<endpoint host>, or for a database instance lakebase:<instance>/<database>?profile=<Databricks profile> (the password is an OAuth token fetched at run time).`,
  });

/** `catalog.schema.table`; parts may be back-quoted when they contain other characters. */
export const UC_TABLE_RE = /^(`[^`]+`|[A-Za-z0-9_-]+)\.(`[^`]+`|[A-Za-z0-9_-]+)\.(`[^`]+`|[A-Za-z0-9_-]+)$/;

export const deltaSourceSchema = z.strictObject({
  type: z.literal('delta'),
  path: z.string().min(1, { error: 'must be a table folder path' }).meta({
    description:
      'Folder of the Delta table (the one holding _delta_log). Relative paths resolve against the folder of the mapping file.',
  }),
});

export const databricksSourceSchema = z.strictObject({
  type: z.literal('databricks'),
  connection: z.string().min(1, { error: 'must name a Databricks connection' }),
  table: z.string().regex(UC_TABLE_RE, { error: 'must be a three-part name catalog.schema.table' }),
});

export const sourceSchema = z.discriminatedUnion('type', [deltaSourceSchema, databricksSourceSchema]);

export const targetSchema = z.strictObject({
  connection: targetConnection,
  schema: identifier.default('public'),
  table: identifier,
});

export const columnsSchema = z.strictObject({
  include: uniqueList(sourceColumn, 'column')
    .min(1, { error: 'must list at least one column (omit it to sync every column)' })
    .optional()
    .meta({ description: 'Delta columns to sync (default: all). Source names.' }),
  exclude: uniqueList(sourceColumn, 'column')
    .optional()
    .meta({ description: 'Delta columns not to sync. Source names.' }),
  rename: z
    .record(sourceColumn, identifier)
    .optional()
    .meta({ description: 'Delta column name -> Postgres column name.' }),
  types: z
    .record(identifier, pgTypeSchema)
    .optional()
    .meta({ description: 'Postgres column name (after rename) -> Postgres type, overriding the default type map.' }),
});

export const deletesSchema = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('delete') }).meta({ description: 'Delete the target row.' }),
  z.strictObject({ mode: z.literal('ignore') }).meta({ description: 'Keep the target row.' }),
  z
    .strictObject({
      mode: z.literal('soft-delete'),
      column: identifier,
      kind: z.enum(['boolean', 'timestamp']),
    })
    .meta({
      description:
        'Keep the row and mark it: boolean sets the column to true (false on upsert); timestamp sets it to the commit time of the delete (null on upsert).',
    }),
]);

/** What each kind of schema change may do to the target table (the object form of `schemaDrift`). */
export const schemaDriftRulesSchema = z
  .strictObject({
    added: z.enum(['fail', 'add', 'ignore']).default('fail').meta({
      description: 'A new Delta column: fail (default), add (ALTER TABLE ADD COLUMN, nullable), ignore (not synced).',
    }),
    renamed: z.enum(['fail', 'rename']).default('fail').meta({
      description:
        'A column renamed under Delta column mapping (same physical name / field id, new name): fail (default) or rename (ALTER TABLE RENAME COLUMN, when the target name changes). Entries of columns.include/exclude/rename must name the column by its new Delta name.',
    }),
    widened: z.enum(['fail', 'alter']).default('fail').meta({
      description:
        "A column widened by Delta's type widening (byte->short->int->long, float->double, decimal precision/scale increase, integers to decimal or double, date->timestamp_ntz) or made nullable, where the Postgres column is too narrow: fail (default) or alter (ALTER COLUMN TYPE / DROP NOT NULL). A Postgres column already wide enough needs nothing under any policy.",
    }),
    dropped: z.enum(['fail', 'keep', 'drop']).default('fail').meta({
      description:
        'A synced column removed from the Delta table: fail (default), keep (the Postgres column stays, nullable, no longer written: NOT NULL is dropped) or drop (ALTER TABLE DROP COLUMN).',
    }),
  })
  .meta({ description: 'One rule per kind of schema change; each defaults to fail.' });

export const schemaDriftSchema = z.union([z.enum(['fail', 'add-columns', 'ignore-new']), schemaDriftRulesSchema]).meta({
  description:
    'What a sync does when the Delta schema changes: fail (default), add-columns (ALTER TABLE ADD COLUMN for new columns), ignore-new (do not sync new columns), or an object with one rule per kind of change ({ added, renamed, widened, dropped }). The strings cover added columns only; every other change fails under them. Schema changes run as DDL in the first transaction of the sync, with its rows and checkpoint; a changed key column or a narrowed type fails under every policy.',
});
export const batchSchema = z.strictObject({
  maxRows: z.int().positive().default(50_000).meta({
    description: 'Distinct keys per transaction; a transaction ends at a version boundary. One commit with more changes than that (or than 10,000) is applied in parts of that many keys inside its one transaction, so memory stays bounded.',
  }),
  maxBytes: z.int().positive().default(64 * 1024 * 1024).meta({
    description: 'Approximate bytes of row data per transaction (same version-boundary rule as maxRows).',
  }),
  maxRowsPerSecond: z.number().positive().optional().meta({
    description: 'Upper bound on the rows a run sends to the target per second, on average over the run: the snapshot rows of an initial load, the change rows of an incremental sync. Spares a target that serves an application.',
  }),
});

const scalar = z.union([z.string(), z.number(), z.boolean()]);

/**
 * One condition of a backfill filter. Values are JSON scalars interpreted with the column's
 * Delta type; give 64-bit integers, decimals and timestamps as strings so no precision is
 * lost in JSON numbers.
 */
export const filterConditionSchema = z.discriminatedUnion('op', [
  z.strictObject({ column: sourceColumn, op: z.enum(['is null', 'is not null']) }),
  z.strictObject({ column: sourceColumn, op: z.enum(['=', '!=', '<', '<=', '>', '>=']), value: scalar }),
  z.strictObject({
    column: sourceColumn,
    op: z.literal('in'),
    values: z.array(scalar).min(1, { error: 'must list at least one value' }),
  }),
]);

export const filterSchema = z
  .array(filterConditionSchema)
  .min(1, { error: 'must hold at least one condition (omit it to load every row)' })
  .meta({ description: 'Row filter for initial loads and backfills: all conditions must hold. Source column names.' });

export const initialLoadSchema = z.strictObject({
  mode: z.enum(['swap', 'merge']).default('swap').meta({
    description: 'swap: load into a new table and swap it in; merge: upsert into the existing table.',
  }),
  onSwapBlocked: z.enum(['fail', 'merge']).default('fail').meta({
    description:
      'What a swap load does when the existing table has something a swap would bypass or break: row triggers or rules (a swap loads without firing them), views or materialized views built on it, or foreign keys of other tables pointing at it. fail (default): refuse before reading the snapshot, naming them; merge: load by merging into the existing table instead (triggers fire, dependents stay), with a warning.',
  }),
  copyStreams: z.int().min(1).max(16).default(1).meta({
    description:
      'COPY streams of a swap or merge load from a local Delta table: the snapshot\'s files are split among this many reader threads, each COPYing into the staging table on a connection of its own (the target\'s other connections, so the pool needs this many); the primary key is built after, and the swap or merge is still one transaction. 1 (default): one stream. More helps when the target\'s server has cores to spare and the reader is the slower side (see the README\'s performance section).',
  }),
  fillfactor: z.int().min(10).max(100).optional().meta({
    description:
      'Heap fillfactor of the table a swap load creates: the share of each page filled, leaving room for in-place (HOT) updates by later syncs. Default: the replaced table\'s own setting, else 85. 100 packs pages full (smallest table, slower updates).',
  }),
});

export const safetySchema = z.strictObject({
  maxDeleteShare: z.number().min(0).max(1).nullable().default(0.5).meta({
    description:
      'The largest share of the target\'s rows one run may delete (soft deletes count): 0.5 (default) refuses a run whose changes would delete more than half of the table (a source truncated or overwritten by mistake), before it writes, naming the rows, versions and commit operations. The same setting refuses an initial load that would swap an empty snapshot over a non-empty table. 1 or null turns both checks off; `sync --allow-mass-delete` (or the confirmation in the editor) allows one run.',
  }),
});

export const lineageSchema = z
  .strictObject({
    version: identifier.optional().meta({
      description:
        'Target column (bigint) for the Delta commit version of the row\'s last change (a snapshot load: the snapshot\'s version). Turns on the out-of-order guard: an upsert or delete changes a row only when its version is >= the row\'s, so a backfill of an older version never regresses newer rows.',
    }),
    commitTimestamp: identifier.optional().meta({
      description: 'Target column (timestamptz) for the commit timestamp of that version (the in-commit timestamp when the table has them, else commitInfo.timestamp, else the log file\'s modification time).',
    }),
    syncedAt: identifier.optional().meta({
      description: 'Target column (timestamptz) for the time of the sync that wrote the row: now() of its transaction (the seed article\'s updated_at).',
    }),
  })
  .refine((l) => {
    const names = [l.version, l.commitTimestamp, l.syncedAt].filter((n): n is string => n !== undefined);
    return new Set(names).size === names.length;
  }, { error: 'must name a different column for each lineage value' })
  .meta({
    description:
      'Lineage columns written into the target (off by default; each optional, names of your choice, none may be a mapped column, the key or the soft-delete column). Added to an existing target with ALTER TABLE ADD COLUMN.',
  });

/**
 * The default of `auto.maxChangeShare`: the share of a table's rows changed at which
 * applying the change feed stops being cheaper than loading the snapshot and swapping it
 * in, as `bench/crossoverBench.ts` measured it at 1M rows: 31.7% and 29.3% in two runs
 * (interpolated between the measured shares; a shared 2-CPU machine at load 20-36, so noisy;
 * README "the crossover").
 */
export const DEFAULT_MAX_CHANGE_SHARE = 0.3;

export const autoSchema = z.strictObject({
  maxChangeShare: z.number().gt(0).max(1).default(DEFAULT_MAX_CHANGE_SHARE).meta({
    description:
      `With mode "auto": the largest share of the table's rows (changes of the pending versions, counted from the Delta log and the change files' footers, against the snapshot's row count from the log's stats) that a sync applies from the Change Data Feed; above it the sync loads the snapshot at the end version instead (swap, or merge as initialLoad says). Default ${DEFAULT_MAX_CHANGE_SHARE}, the crossover measured by bench/crossoverBench.ts.`,
  }),
});

/** Slug: lowercase letters, digits, - and _; used in file names and state rows. */
export const PIPELINE_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const mappingSchema = z
  .strictObject({
    $schema: z.string().optional(),
    name: z.string().regex(PIPELINE_NAME_RE, {
      error: 'must be a slug: lowercase letters, digits, - or _, starting with a letter or digit (at most 63)',
    }),
    source: sourceSchema,
    target: targetSchema,
    key: uniqueList(identifier, 'key column')
      .min(1, { error: 'must list at least one column (omit it to use the target primary key)' })
      .optional()
      .meta({ description: "Target column names forming the row key (default: the target table's primary key)." }),
    columns: columnsSchema.prefault({}),
    deletes: deletesSchema.prefault({ mode: 'delete' }),
    schemaDrift: schemaDriftSchema.default('fail'),
    batch: batchSchema.prefault({}),
    initialLoad: initialLoadSchema.prefault({}),
    filter: filterSchema.optional(),
    safety: safetySchema.prefault({}),
    lineage: lineageSchema.optional(),
    duplicateKeys: z.enum(['fail', 'last-wins']).default('fail').meta({
      description:
        'What to do when the Delta table comes to hold a key twice: one commit writes the same key twice, or a commit inserts a key the table already holds (an earlier version wrote it and nothing deleted it since, e.g. rows appended again). fail (default) refuses the version and names it, the key columns and the keys; last-wins applies it anyway: of two rows in one commit, whichever the reader meets last (not a chosen one); an insert of a key the target holds, as an update of that row. Either way the target keeps one row per key. (With deletes: ignore the target keeps deleted rows, so only the first case and inserts whose earlier row is in the same batch are checked.)',
    }),
    invalidUtf8: z.enum(['fail', 'replace']).default('fail').meta({
      description:
        'What to do with text that is not valid UTF-8 in a string column of the Delta table: fail (default) refuses it, naming the file, column, row and key; replace reads each bad byte sequence as U+FFFD. (A Databricks source gets text already decoded by the warehouse.)',
    }),
    mode: z.enum(['incremental', 'auto']).default('incremental').meta({
      description:
        'How a sync applies the versions after its checkpoint: incremental (default) applies their Change Data Feed; auto first counts their changes from the Delta log (no data read) and, when they are more than auto.maxChangeShare of the table, loads the snapshot at the end version instead (a swap, or a merge when initialLoad.mode is merge, deletes is soft-delete, the table has triggers, views or foreign keys a swap would bypass, or the role does not own the table), with the checkpoint in the same transaction. It stays incremental with deletes: ignore (a snapshot would delete the rows it keeps), with a filter (it applies to snapshot loads only) and when the Delta schema changed since the checkpoint (schemaDrift decides those). Preview, dry run, the CLI and the run log say which it chose and why.',
    }),
    auto: autoSchema.prefault({}),
    onMissingChanges: z.enum(['fail', 'repair']).default('fail').meta({
      description:
        'What an incremental sync does when the Change Data Feed it needs cannot be read (files removed by VACUUM, the log cleaned up, CDF off for some versions): fail (default) stops with the error, whose hint offers a repair; repair brings the target to the latest version by comparing checksums of the target and the snapshot (as `repair` does) and reading back only the rows that differ, instead of a full reload. Needs deletes: delete.',
    }),
    deadLetter: z.boolean().default(false).meta({
      description: 'Write rows the target rejects to a dead-letter table instead of failing the batch.',
    }),
    after: z
      .array(z.string().regex(PIPELINE_NAME_RE, { error: 'must be the name of another mapping (a slug)' }))
      .optional()
      .meta({
        description:
          'Names of the mappings that `sync --all` runs before this one (e.g. a parent table before its children). A mapping whose dependency failed is skipped; a cycle is refused.',
      }),
  })
  .meta({ title: 'delta-neon-sync mapping', description: 'One Delta table synced into one Postgres table.' });

/** A parsed mapping (defaults filled in). */
export type Mapping = z.output<typeof mappingSchema>;
/** What a user writes. */
export type MappingInput = z.input<typeof mappingSchema>;
export type DeletePolicy = Mapping['deletes'];
export type SchemaDriftPolicy = Mapping['schemaDrift'];
export type SchemaDriftRules = z.output<typeof schemaDriftRulesSchema>;

/** The rules a `schemaDrift` setting stands for: the strings are shorthands for added columns. */
export function schemaDriftRules(policy: SchemaDriftPolicy): SchemaDriftRules {
  if (typeof policy === 'object') return policy;
  const added = policy === 'add-columns' ? 'add' : policy === 'ignore-new' ? 'ignore' : 'fail';
  return { added, renamed: 'fail', widened: 'fail', dropped: 'fail' };
}

/** The setting as messages quote it: the string, or the object's rules. */
export function describeSchemaDrift(policy: SchemaDriftPolicy): string {
  return typeof policy === 'string' ? policy : JSON.stringify(policy);
}
export type FilterCondition = z.output<typeof filterConditionSchema>;
export type MappingSource = Mapping['source'];

