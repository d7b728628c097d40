import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SyncError } from '../../src/sync/errors';
import type { DeltaField } from '../../src/sync/delta/types';
import { parseMapping, loadMappingFile, parseMappingText } from '../../src/sync/mapping/loadMapping';
import { mappingSchemaFileText } from '../../src/sync/mapping/mappingJsonSchema';
import type { Mapping, MappingInput } from '../../src/sync/mapping/mappingSchema';
import { resolveColumns, keySourceColumns } from '../../src/sync/mapping/resolveColumns';
import type { TargetColumn } from '../../src/sync/ports/targetTypes';
import { checkSyncDrift, classifySchemaChanges, isDeltaWidening, mappingAtSchema, pgTypeHolds, refuseBeforePlanning, refuseKeyDrift } from '../../src/sync/mapping/detectDrift';
import type { SyncDriftPlan } from '../../src/sync/mapping/detectDrift';
import { compileRowFilter } from '../../src/sync/mapping/compileRowFilter';
import { array, binary, boolean, byte, date, decimal, double, field, float, integer, long, map, short, string, struct, timestamp, timestampNtz } from '../builders/deltaFields';
import { buildMapping, mappingInput, mappingJson } from '../builders/mappings';
import type { MappingOverrides } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';

/** No drift: nothing to alter, nothing left out, nothing to say. */
const NONE: SyncDriftPlan = { alterations: [], ignore: [], warnings: [] };

describe('mapping: parseMapping', () => {
  it('fills in the documented defaults for a minimal mapping', () => {
    const m = buildMapping();
    assert.equal(m.target.schema, 'public');
    assert.deepEqual(m.deletes, { mode: 'delete' });
    assert.equal(m.schemaDrift, 'fail');
    assert.deepEqual(m.batch, { maxRows: 50_000, maxBytes: 64 * 1024 * 1024 });
    assert.deepEqual(m.initialLoad, { mode: 'swap', onSwapBlocked: 'fail', copyStreams: 1 });
    assert.equal(m.deadLetter, false);
    assert.deepEqual(m.columns, {});
    assert.equal(m.key, undefined);
    assert.equal(m.filter, undefined);
  });

  it('accepts a full mapping with a databricks source, soft deletes and a filter', () => {
    const m = parseMapping({
      $schema: '../schemas/mapping.schema.json',
      name: 'orders_v2',
      source: { type: 'databricks', connection: 'prod', table: 'main.sales.orders' },
      target: { connection: '${env:DATABASE_URL}', schema: 'analytics', table: 'orders' },
      key: ['order_id', 'region'],
      columns: {
        exclude: ['internal_note'],
        rename: { id: 'order_id', 'Region Code': 'region' },
        types: { amount: 'numeric(38,9)', tags: 'text[]', created: 'timestamp(3) with time zone' },
      },
      deletes: { mode: 'soft-delete', column: 'deleted_at', kind: 'timestamp' },
      schemaDrift: 'add-columns',
      batch: { maxRows: 1000, maxRowsPerSecond: 500 },
      initialLoad: { mode: 'merge' },
      filter: [
        { column: 'region', op: 'in', values: ['eu', 'us'] },
        { column: 'amount', op: '>=', value: '100.00' },
        { column: 'closed_at', op: 'is null' },
      ],
      deadLetter: true,
    });
    assert.equal(m.source.type, 'databricks');
    assert.equal(m.batch.maxBytes, 64 * 1024 * 1024);
    assert.equal(m.batch.maxRows, 1000);
    assert.deepEqual(m.deletes, { mode: 'soft-delete', column: 'deleted_at', kind: 'timestamp' });
    assert.equal(m.filter?.length, 3);
  });

  it('resolves a relative delta path against the mapping file folder and keeps absolute paths and URIs', () => {
    const file = path.join(os.tmpdir(), 'ws', '.delta-sync', 'c.json');
    const rel = buildMapping({ source: '../data/customers' }, file);
    assert.equal(rel.source.type === 'delta' && rel.source.path, path.join(os.tmpdir(), 'ws', 'data', 'customers'));
    const abs = buildMapping({ source: '/srv/t' }, file);
    assert.equal(abs.source.type === 'delta' && abs.source.path, '/srv/t');
    const uri = buildMapping({ source: 's3://bucket/t' }, file);
    assert.equal(uri.source.type === 'delta' && uri.source.path, 's3://bucket/t');
  });

  it('names the field path of a bad rename target', () => {
    expectSyncError(() => buildMapping({ columns: { rename: { email: 'e mail' } } }), {
      kind: 'mapping',
      message: /columns\.rename\.email: must be a valid identifier/,
      setting: 'columns.rename.email',
    });
  });

  it('quotes field path segments that are not identifiers', () => {
    expectSyncError(() => buildMapping({ columns: { rename: { 'E Mail': '1x' } } }), { kind: 'mapping', message: /columns\.rename\["E Mail"\]: must be a valid identifier/ });
  });

  it('lists every schema issue at once, each with its path', () => {
    const e = expectSyncError(
      () =>
        parseMapping({
          name: 'Not A Slug',
          source: { type: 'delta' },
          target: { connection: 'x', table: 't' },
          batch: { maxRows: 0 },
          schemaDrift: 'recreate',
          colums: {},
        }),
      { kind: 'mapping', message: /\(5 issues\)/ },
    );
    for (const p of ['name', 'source.path', 'batch.maxRows', 'schemaDrift', '(root)']) {
      assert.ok(e.message.includes(`  - ${p}: `), `missing ${p} in:\n${e.message}`);
    }
    assert.match(e.message, /source\.path: is required/);
    assert.match(e.message, /\(root\): unknown field "colums"/);
  });

  it('refuses an unknown source type and an unknown delete mode', () => {
    expectSyncError(() => parseMapping(mappingJson({ source: { type: 'kafka', topic: 'x' } })), { kind: 'mapping', message: /source\.type: / });
    expectSyncError(() => parseMapping(mappingJson({ deletes: { mode: 'purge' } })), { kind: 'mapping', message: /deletes\.mode: / });
    expectSyncError(() => parseMapping(mappingJson({ deletes: { mode: 'soft-delete', column: 'gone' } })), { kind: 'mapping', message: /deletes\.kind: / });
  });

  it('accepts safe Postgres type names', () => {
    for (const t of [
      'text',
      'bigint',
      'numeric(38,9)',
      'numeric(10, 2)',
      'double precision',
      'timestamp(6) with time zone',
      'character varying(20)',
      'varchar(20)[]',
      'int[][]',
      'public.my_enum',
      'jsonb',
    ]) {
      assert.doesNotThrow(() => buildMapping({ columns: { types: { c: t } } }), t);
    }
  });

  it('refuses type names that could carry SQL', () => {
    for (const t of [
      'text; drop table users',
      "text default 'x'",
      'text -- comment',
      'numeric(10,2) check (c > 0)',
      '"quoted"',
      'text /* x */',
      '',
      'int[1]',
      'text  collate "C"',
    ]) {
      const e = expectSyncError(() => buildMapping({ columns: { types: { c: t } } }), { kind: 'mapping' });
      assert.match(e.message, /columns\.types\.c: must be a Postgres type name/, t);
    }
  });

  it('refuses a postgres URL with a password and accepts one without, a saved name or an env reference', () => {
    expectSyncError(() => buildMapping({ target: { connection: 'postgres://u:secret@host/db', table: 't' } }), {
      kind: 'mapping',
      message: /target\.connection: must not contain a password/,
    });
    expectSyncError(() => buildMapping({ target: { connection: 'postgresql://u@host/db?password=secret', table: 't' } }), { kind: 'mapping' });
    for (const c of ['postgresql://u@host:5432/db?sslmode=require', 'neon-prod', '${env:DATABASE_URL}']) {
      assert.equal(buildMapping({ target: { connection: c, table: 't' } }).target.connection, c);
    }
    expectSyncError(() => buildMapping({ target: { connection: 'mysql://h/db', table: 't' } }), {
      kind: 'mapping',
      message: /target\.connection: must be a saved connection name/,
    });
  });

  it('refuses a databricks table that is not catalog.schema.table', () => {
    expectSyncError(() => buildMapping({ source: { type: 'databricks', connection: 'c', table: 'sales.orders' } }), {
      kind: 'mapping',
      message: /source\.table: must be a three-part name/,
    });
  });

  it('refuses filters without values or with an unknown operator, naming the condition index', () => {
    const e = expectSyncError(
      () =>
        parseMapping(
          mappingJson({
            filter: [
              { column: 'a', op: '=', value: 1 },
              { column: 'b', op: 'in', values: [] },
              { column: 'c', op: 'like', value: 'x%' },
            ],
          }),
        ),
      { kind: 'mapping', message: /filter\[1\]\.values: must list at least one value/ },
    );
    assert.match(e.message, /filter\[2\]\.op: /);
    assert.doesNotMatch(e.message, /filter\[0\]/);
  });

  it('refuses a key column that columns.exclude removes, following renames', () => {
    expectSyncError(() => buildMapping({ key: ['customer_id'], columns: { exclude: ['id'], rename: { id: 'customer_id' } } }), {
      kind: 'mapping',
      message: /key\[0\]: key column "customer_id" \(Delta column "id"\) is excluded/,
    });
  });

  it('refuses a key column left out of columns.include', () => {
    expectSyncError(() => buildMapping({ key: ['id'], columns: { include: ['name'] } }), { kind: 'mapping', message: /key\[0\]: .*columns\.include/ });
  });

  it('refuses two renames to the same target name', () => {
    expectSyncError(() => buildMapping({ columns: { rename: { a: 'x', b: 'x' } } }), {
      kind: 'mapping',
      message: /columns\.rename\.b: renames to "x", which "a" is already renamed to/,
    });
  });

  it('refuses a soft-delete column that is also a data column', () => {
    expectSyncError(
      () => buildMapping({ columns: { rename: { gone: 'is_deleted' } }, deletes: { mode: 'soft-delete', column: 'is_deleted', kind: 'boolean' } }),
      { kind: 'mapping', message: /deletes\.column: "is_deleted" is also a data column/ },
    );
    expectSyncError(() => buildMapping({ key: ['id'], deletes: { mode: 'soft-delete', column: 'id', kind: 'boolean' } }), {
      kind: 'mapping',
      message: /deletes\.column: .*key column/,
    });
  });

  it('refuses a column both included and excluded, and a duplicate in a list', () => {
    expectSyncError(() => buildMapping({ columns: { include: ['a', 'b'], exclude: ['b'] } }), {
      kind: 'mapping',
      message: /columns\.exclude: lists "b", which columns\.include also lists/,
    });
    expectSyncError(() => buildMapping({ key: ['id', 'id'] }), { kind: 'mapping', message: /key: must not list the same key column twice/ });
  });
});

describe('mapping: loadMappingFile', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mapping-test-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('loads a file and resolves the source path against its folder', () => {
    const file = path.join(dir, 'orders.json');
    fs.writeFileSync(file, '\ufeff' + JSON.stringify(mappingInput({ source: 'tables/orders' }), null, 2));
    const m = loadMappingFile(file);
    assert.equal(m.source.type === 'delta' && m.source.path, path.join(dir, 'tables', 'orders'));
  });

  it('names the line and column of a JSON syntax error', () => {
    const file = path.join(dir, 'broken.json');
    fs.writeFileSync(file, '{\n  "name": "x",\n  "source": {"type": "delta" "path": "t"}\n}\n');
    expectSyncError(() => loadMappingFile(file), { kind: 'mapping', message: /broken\.json is not valid JSON at line 3, column 30/ });
  });

  it('reports a truncated file at its end', () => {
    expectSyncError(() => parseMappingText('{\n  "name": "x",\n', 'cut.json'), { kind: 'mapping', message: /at line 3, column 1/ });
  });

  it('names the file in validation errors and says when it is missing', () => {
    const file = path.join(dir, 'bad.json');
    fs.writeFileSync(file, JSON.stringify(mappingJson({ schemaDrift: 'nope' })));
    const e = expectSyncError(() => loadMappingFile(file), { kind: 'mapping', message: /schemaDrift: / });
    assert.ok(e.message.includes(file));
    expectSyncError(() => loadMappingFile(path.join(dir, 'none.json')), { kind: 'mapping', message: /ENOENT/ });
  });
});

describe('mapping: JSON schema file', () => {
  it('schemas/mapping.schema.json equals the schema generated from the code', () => {
    const file = path.resolve(__dirname, '../../schemas/mapping.schema.json');
    assert.equal(fs.readFileSync(file, 'utf8'), mappingSchemaFileText(), 'run: npx tsx scripts/gen-mapping-schema.ts');
  });

  it('lets a user omit every field that has a default', () => {
    const schema = JSON.parse(mappingSchemaFileText()) as { required: string[] };
    assert.deepEqual([...schema.required].sort(), ['name', 'source', 'target']);
  });
});

describe('mapping: resolveColumns', () => {
  const allTypes: DeltaField[] = [
    field('s', string()),
    field('l', long(), { nullable: false }),
    field('i', integer()),
    field('sh', short()),
    field('by', byte()),
    field('d', double()),
    field('f', float()),
    field('dec', decimal(38, 9)),
    field('b', boolean()),
    field('dt', date()),
    field('ts', timestamp()),
    field('tsn', timestampNtz()),
    field('bin', binary()),
    field('st', struct(field('x', long()))),
    field('arr', array(string())),
    field('mp', map(string(), long())),
  ];

  it('maps every Delta type to the documented Postgres type, in schema order', () => {
    const cols = resolveColumns(buildMapping(), allTypes);
    assert.deepEqual(
      cols.map((c) => [c.name, c.pgType]),
      [
        ['s', 'text'],
        ['l', 'bigint'],
        ['i', 'integer'],
        ['sh', 'smallint'],
        ['by', 'smallint'],
        ['d', 'double precision'],
        ['f', 'real'],
        ['dec', 'numeric(38,9)'],
        ['b', 'boolean'],
        ['dt', 'date'],
        ['ts', 'timestamptz'],
        ['tsn', 'timestamp'],
        ['bin', 'bytea'],
        ['st', 'jsonb'],
        ['arr', 'jsonb'],
        ['mp', 'jsonb'],
      ],
    );
    assert.equal(cols[1]!.source.nullable, false);
    assert.equal(cols[0]!.source.nullable, true);
    assert.deepEqual(cols[7]!.source.type, decimal(38, 9));
  });

  it('applies include, exclude, rename and types (types keyed by the renamed name)', () => {
    const m = buildMapping({
      key: ['customer_id'],
      columns: {
        include: ['l', 's', 'ts'],
        exclude: ['dec'],
        rename: { l: 'customer_id', s: 'full_name' },
        types: { full_name: 'varchar(200)', ts: 'timestamp(3) with time zone' },
      },
    });
    const cols = resolveColumns(m, allTypes);
    assert.deepEqual(
      cols.map((c) => ({ source: c.source.name, target: c.name, pgType: c.pgType })),
      [
        { source: 's', target: 'full_name', pgType: 'varchar(200)' },
        { source: 'l', target: 'customer_id', pgType: 'bigint' },
        { source: 'ts', target: 'ts', pgType: 'timestamp(3) with time zone' },
      ],
    );
    assert.deepEqual(keySourceColumns(cols, m.key!), ['l']);
  });

  it('names an unknown column in include, exclude, rename or types', () => {
    const cases: [MappingInput['columns'], RegExp][] = [
      [{ include: ['s', 'nope'] }, /columns\.include\[1\]: column "nope" is not in the Delta table/],
      [{ exclude: ['gone'] }, /columns\.exclude\[0\]: column "gone"/],
      [{ rename: { missing: 'm' } }, /columns\.rename\.missing: column "missing"/],
      [{ types: { zz: 'text' } }, /columns\.types\.zz: "zz" is not a synced Postgres column/],
    ];
    for (const [columns, re] of cases) {
      expectSyncError(() => resolveColumns(buildMapping({ columns }), allTypes), { kind: 'mapping', message: re, column: true });
    }
  });

  it('suggests the right case for a column name that differs only in case', () => {
    expectSyncError(() => resolveColumns(buildMapping({ columns: { include: ['S'] } }), allTypes), { kind: 'mapping', hint: /Did you mean "s"/ });
  });

  it('refuses a key that is not a synced column', () => {
    expectSyncError(() => resolveColumns(buildMapping({ key: ['id'] }), allTypes), { kind: 'mapping', message: /key\[0\]: "id" is not a synced Postgres column/ });
  });

  it('refuses two columns that end with the same Postgres name', () => {
    expectSyncError(() => resolveColumns(buildMapping({ columns: { rename: { s: 'l' } } }), allTypes), {
      kind: 'mapping',
      message: /"s" and "l" both map to Postgres column "l"|"l" and "s" both map/,
    });
  });

  it('refuses a soft-delete column named like a synced Delta column', () => {
    const m = buildMapping({ deletes: { mode: 'soft-delete', column: 'b', kind: 'boolean' } });
    expectSyncError(() => resolveColumns(m, allTypes), { kind: 'mapping', message: /deletes\.column: "b" is also a data column/ });
  });

  it('asks for a rename when a Delta name is too long for Postgres', () => {
    const longName = 'x'.repeat(64);
    expectSyncError(() => resolveColumns(buildMapping(), [field(longName, string())]), { kind: 'mapping', message: /longer than 63 bytes/ });
    const ok = resolveColumns(buildMapping({ columns: { rename: { [longName]: 'short_name' } } }), [field(longName, string())]);
    assert.equal(ok[0]!.name, 'short_name');
  });

  it('keeps Delta names with spaces when they fit', () => {
    const cols = resolveColumns(buildMapping(), [field('First Name', string())]);
    assert.equal(cols[0]!.name, 'First Name');
  });
});

describe('mapping: checkSyncDrift (the one drift rule set)', () => {
  const v1: DeltaField[] = [
    field('id', long(), { nullable: false }),
    field('name', string()),
    field('kind', byte()),
    field('attrs', struct(field('a', string()))),
  ];
  const m = (extra: MappingOverrides = {}): Mapping => buildMapping({ key: ['id'], ...extra });

  interface DriftCase {
    mapping: Mapping;
    /** The mapping the checkpoint's columns were synced with (default: the same). */
    syncedWith?: Mapping;
    /** The Delta schema at the checkpoint (default v1) and at the end version. */
    before?: readonly DeltaField[];
    after: readonly DeltaField[];
    /** The target's key when the mapping has none (its primary key). */
    key?: string[];
    source?: string;
    fromVersion?: number;
    toVersion?: number;
    /** False: the checkpoint's schema could not be read. */
    knownCheckpoint?: boolean;
  }

  /**
   * The check as incrementalPhase calls it: the columns synced at the checkpoint (the
   * mapping resolved on the checkpoint's schema), the end version's columns planned like
   * planColumns does (resolveColumns, which refuses name clashes), and a target table
   * created by the initial load at the checkpoint (the synced columns).
   */
  function drift(c: DriftCase): SyncDriftPlan {
    const synced = resolveColumns(c.syncedWith ?? c.mapping, c.before ?? v1);
    const planned = resolveColumns(c.mapping, c.after);
    return checkSyncDrift({
      mapping: c.mapping,
      synced: c.knownCheckpoint === false ? undefined : synced,
      schema: c.after,
      key: c.mapping.key ?? c.key ?? [],
      planned,
      targetColumns: new Map(synced.map((col) => [col.name, col.pgType])),
      source: c.source ?? 'customers',
      targetLabel: 'public.customers',
      fromVersion: c.fromVersion ?? 2,
      toVersion: c.toVersion ?? 3,
    });
  }

  it('reports nothing when the schema is unchanged', () => {
    assert.deepEqual(drift({ mapping: m(), after: v1 }), NONE);
  });

  it("fails on an added column under 'fail', naming the column and both versions", () => {
    const err = expectSyncError(() => drift({ mapping: m(), after: [...v1, field('email', string())], fromVersion: 3, toVersion: 7 }), {
      kind: 'schema-drift',
      column: 'email',
      version: 7,
      setting: 'schemaDrift',
      message: /customers between versions 3 and 7: column\(s\) "email" \(text\) are not in public\.customers/,
      hint: /add-columns/,
    });
    assert.ok(err instanceof SyncError);
  });

  it("adds new columns under 'add-columns', with the mapping's rename and types", () => {
    const mapping = m({ schemaDrift: 'add-columns', columns: { rename: { Email: 'email' }, types: { email: 'varchar(320)' } } });
    const v2 = [...v1, field('Email', string(), { nullable: false }), field('score', decimal(10, 2))];
    // The synced columns were resolved on v1 before Email existed and before its rename was added.
    const r = drift({ mapping, syncedWith: m(), after: v2 });
    assert.deepEqual(r.alterations, [
      { alter: 'add-column', column: 'email', pgType: 'varchar(320)' },
      { alter: 'add-column', column: 'score', pgType: 'numeric(10,2)' },
    ]);
    assert.match(r.warnings.join('\n'), /Added column\(s\) "email" \(varchar\(320\)\), "score" \(numeric\(10,2\)\) to public\.customers/);
  });

  it("leaves new columns out under 'ignore-new'", () => {
    const r = drift({ mapping: m({ schemaDrift: 'ignore-new' }), after: [...v1, field('email', string())] });
    assert.deepEqual(r.alterations, []);
    assert.deepEqual(r.ignore.map((c) => c.name), ['email']);
    assert.match(r.warnings.join('\n'), /Ignoring new source column\(s\) "email"/);
  });

  it('does not count a new column that the mapping include list leaves out', () => {
    const mapping = m({ columns: { include: ['id', 'name'] } });
    assert.deepEqual(drift({ mapping, after: [...v1, field('email', string())] }), NONE);
  });

  it('fails on a removed column under every policy', () => {
    const v2 = v1.filter((f) => f.name !== 'name');
    for (const schemaDrift of ['fail', 'add-columns', 'ignore-new'] as const) {
      expectSyncError(() => drift({ mapping: m({ schemaDrift }), after: v2, fromVersion: 9, toVersion: 9 }), {
        kind: 'schema-drift',
        column: 'name',
        version: 9,
        setting: 'schemaDrift',
        retry: 'manual',
        message: /customers changed at version 9: removed "name"/,
        hint: /initial load/,
      });
    }
  });

  it('fails on a type change the Postgres column cannot hold, under every policy', () => {
    const v2 = v1.map((f) => (f.name === 'name' ? field('name', long()) : f));
    for (const schemaDrift of ['fail', 'add-columns', 'ignore-new'] as const) {
      expectSyncError(() => drift({ mapping: m({ schemaDrift }), after: v2 }), { kind: 'schema-drift', column: 'name', message: /changed "name" string -> long/ });
    }
  });

  it('continues through widenings that keep the Postgres type (byte -> short, a struct gaining a field)', () => {
    const v2 = v1.map((f) =>
      f.name === 'kind'
        ? field('kind', short())
        : f.name === 'attrs'
          ? field('attrs', struct(field('a', string()), field('b', long())))
          : f,
    );
    assert.deepEqual(drift({ mapping: m(), after: v2 }), NONE);
    const changes = classifySchemaChanges(resolveColumns(m(), v1), v2, m(), ['id']);
    assert.deepEqual(changes.retyped.map((x) => [x.column.source.name, x.compatible]), [
      ['kind', true],
      ['attrs', true],
    ]);
  });

  it('accepts integer -> long when a columns.types override already made the column bigint', () => {
    const v0 = [field('id', long(), { nullable: false }), field('n', integer())];
    const v2 = [v0[0]!, field('n', long())];
    assert.deepEqual(drift({ mapping: m({ columns: { types: { n: 'bigint' } } }), before: v0, after: v2 }), NONE);
    expectSyncError(() => drift({ mapping: m(), before: v0, after: v2 }), { kind: 'schema-drift', column: 'n', message: /widened "n" integer -> long \(Postgres integer\)/, hint: /schemaDrift\.widened "alter"/ });
  });

  it('fails when a column becomes nullable (the Postgres column may be NOT NULL)', () => {
    const v0 = [field('id', long(), { nullable: false }), field('code', string(), { nullable: false })];
    const v2 = [v0[0]!, field('code', string(), { nullable: true })];
    expectSyncError(() => drift({ mapping: m({ schemaDrift: 'ignore-new' }), before: v0, after: v2 }), {
      kind: 'schema-drift',
      column: 'code',
      message: /made nullable "code" string not null -> string/,
      hint: /schemaDrift\.widened "alter"/,
    });
  });

  it('refuses an added column that would take an existing Postgres name (when the end version is planned)', () => {
    const mapping = m({ schemaDrift: 'add-columns', columns: { rename: { name: 'full_name' } } });
    expectSyncError(() => drift({ mapping, after: [...v1, field('full_name', string())] }), {
      kind: 'mapping',
      message: /"name" and "full_name" both map to Postgres column "full_name"/,
    });
  });

  describe('schemaDrift rules beyond added columns ({ added, renamed, widened, dropped })', () => {
    const cm: DeltaField[] = [
      field('id', long(), { nullable: false, physicalName: 'col-1' }),
      field('name', string(), { physicalName: 'col-2' }),
      field('qty', integer(), { physicalName: 'col-3' }),
      field('price', decimal(10, 2), { physicalName: 'col-4' }),
      field('day', date(), { physicalName: 'col-5' }),
      field('code', string(), { nullable: false, physicalName: 'col-6' }),
    ];
    const rules = (r: Partial<Record<'added' | 'renamed' | 'widened' | 'dropped', string>>): Mapping =>
      m({ schemaDrift: { added: 'fail', renamed: 'fail', widened: 'fail', dropped: 'fail', ...r } as Mapping['schemaDrift'] });

    it('parses the object form with defaults, and keeps the strings as they were', () => {
      const parsed = parseMapping(mappingInput({ schemaDrift: { renamed: 'rename' } }));
      assert.deepEqual(parsed.schemaDrift, { added: 'fail', renamed: 'rename', widened: 'fail', dropped: 'fail' });
      assert.equal(parseMapping(mappingInput({ schemaDrift: 'add-columns' })).schemaDrift, 'add-columns');
      expectSyncError(() => parseMapping(mappingInput({ schemaDrift: { renamed: 'drop' } as never })), { kind: 'mapping', message: /schemaDrift/ });
    });

    it('a column renamed under column mapping is renamed in Postgres (rename), found by physical name; refused under fail', () => {
      const after = cm.map((f) => (f.name === 'name' ? { ...f, name: 'full_name' } : f));
      const r = drift({ mapping: rules({ renamed: 'rename' }), before: cm, after });
      assert.deepEqual(r.alterations, [{ alter: 'rename-column', column: 'name', to: 'full_name' }]);
      assert.deepEqual(r.ignore, []);
      assert.match(r.warnings.join(), /column "name" renamed to "full_name"/);
      expectSyncError(() => drift({ mapping: rules({}), before: cm, after, toVersion: 5 }), {
        kind: 'schema-drift', column: 'name', version: 5, setting: 'schemaDrift', message: /customers changed between version 2 and version 5: renamed "name" -> "full_name"/, hint: /schemaDrift\.renamed "rename"/,
      });
      // The string policies refuse it too (they cover added columns only): never written as a new column.
      expectSyncError(() => drift({ mapping: m({ schemaDrift: 'add-columns' }), before: cm, after }), { kind: 'schema-drift', column: 'name', message: /renamed "name" -> "full_name"/ });
    });

    it("a rename the mapping's columns.rename already absorbs needs no DDL; a mapping entry under the old name is refused, naming it", () => {
      const after = cm.map((f) => (f.name === 'name' ? { ...f, name: 'full_name' } : f));
      // The mapping wrote "name" -> "customer_name", and now says "full_name" -> "customer_name".
      const mapping = m({ columns: { rename: { full_name: 'customer_name' } } });
      const synced = resolveColumns(mappingAtSchema(mapping, cm, after), cm);
      assert.equal(synced.find((c) => c.source.name === 'name')?.name, 'customer_name');
      const r = checkSyncDrift({ mapping, synced, schema: after, key: ['id'], planned: resolveColumns(mapping, after), targetColumns: new Map(synced.map((c) => [c.name, c.pgType])), source: 'customers', targetLabel: 't', fromVersion: 2, toVersion: 3 });
      assert.deepEqual(r, NONE);
      const stale = m({ columns: { rename: { name: 'customer_name' } } });
      expectSyncError(() => refuseBeforePlanning({ mapping: stale, synced: resolveColumns(stale, cm), schema: after, key: ['id'], source: 'customers', fromVersion: 2, toVersion: 3 }), {
        kind: 'schema-drift', column: 'name', version: 3, setting: 'columns.rename.name', message: /"name" of customers was renamed to "full_name".*still names it "name"/, hint: /Write "full_name" instead of "name"/,
      });
    });

    it('a widening alters the Postgres type only where it is too narrow (alter), and is refused under fail', () => {
      const after = cm.map((f) =>
        f.name === 'qty' ? { ...f, type: long() } : f.name === 'price' ? { ...f, type: decimal(20, 4) } : f.name === 'day' ? { ...f, type: timestampNtz() } : f,
      );
      const r = drift({ mapping: rules({ widened: 'alter' }), before: cm, after });
      assert.deepEqual(r.alterations, [
        { alter: 'retype-column', column: 'qty', pgType: 'bigint', from: 'integer' },
        { alter: 'retype-column', column: 'price', pgType: 'numeric(20,4)', from: 'numeric(10,2)' },
        { alter: 'retype-column', column: 'day', pgType: 'timestamp', from: 'date' },
      ]);
      const err = expectSyncError(() => drift({ mapping: rules({}), before: cm, after }), { kind: 'schema-drift', column: 'qty', setting: 'schemaDrift', hint: /schemaDrift\.widened "alter"/ });
      assert.match(err.message, /widened "qty" integer -> long \(Postgres integer\); widened "price" decimal\(10,2\) -> decimal\(20,4\)/);
    });

    it('a widening into a Postgres column already wide enough needs nothing, under every rule', () => {
      const after = cm.map((f) => (f.name === 'qty' ? { ...f, type: long() } : f.name === 'price' ? { ...f, type: decimal(12, 2) } : f));
      const synced = resolveColumns(m(), cm);
      const targetColumns = new Map(synced.map((c) => [c.name, c.name === 'qty' ? 'bigint' : c.name === 'price' ? 'numeric(18,4)' : c.pgType]));
      for (const mapping of [m(), rules({ widened: 'alter' })]) {
        const r = checkSyncDrift({ mapping, synced, schema: after, key: ['id'], planned: resolveColumns(mapping, after), targetColumns, source: 'customers', targetLabel: 't', fromVersion: 2, toVersion: 3 });
        assert.deepEqual(r.alterations, []);
      }
    });

    it('a narrowed type is refused under every rule, naming table, version and column', () => {
      const after = cm.map((f) => (f.name === 'price' ? { ...f, type: decimal(8, 2) } : f));
      for (const mapping of [m(), rules({ widened: 'alter', renamed: 'rename', dropped: 'drop', added: 'add' })]) {
        expectSyncError(() => drift({ mapping, before: cm, after, toVersion: 4 }), {
          kind: 'schema-drift', column: 'price', version: 4, setting: 'schemaDrift', message: /changed "price" decimal\(10,2\) -> decimal\(8,2\).*refused under every schemaDrift policy/, hint: /migrate the Postgres table/,
        });
      }
    });

    it('a made-nullable column drops NOT NULL under alter', () => {
      const after = cm.map((f) => (f.name === 'code' ? { ...f, nullable: true } : f));
      assert.deepEqual(drift({ mapping: rules({ widened: 'alter' }), before: cm, after }).alterations, [{ alter: 'drop-not-null', column: 'code' }]);
    });

    it('a dropped column is kept unwritten (NOT NULL dropped), dropped, or refused', () => {
      const after = cm.filter((f) => f.name !== 'code' && f.name !== 'name');
      assert.deepEqual(drift({ mapping: rules({ dropped: 'keep' }), before: cm, after }).alterations, [{ alter: 'drop-not-null', column: 'code' }]);
      assert.deepEqual(drift({ mapping: rules({ dropped: 'drop' }), before: cm, after }).alterations, [
        { alter: 'drop-column', column: 'name' },
        { alter: 'drop-column', column: 'code' },
      ]);
      expectSyncError(() => drift({ mapping: rules({}), before: cm, after }), { kind: 'schema-drift', column: 'name', message: /removed "name"; removed "code"/, hint: /schemaDrift\.dropped "keep" or "drop"/ });
    });

    it('a column dropped and a new one added under the same name (new physical name) is a drop and an add, not the old column', () => {
      const after = cm.map((f) => (f.name === 'qty' ? field('qty', string(), { physicalName: 'col-9' }) : f));
      const r = drift({ mapping: rules({ dropped: 'drop', added: 'add' }), before: cm, after });
      assert.deepEqual(r.alterations, [
        { alter: 'drop-column', column: 'qty' },
        { alter: 'add-column', column: 'qty', pgType: 'text' },
      ]);
    });

    it("Delta's type widenings, and what is not one", () => {
      assert.ok(isDeltaWidening(byte(), long()) && isDeltaWidening(short(), integer()) && isDeltaWidening(float(), double()) && isDeltaWidening(integer(), double()));
      assert.ok(isDeltaWidening(decimal(10, 2), decimal(20, 5)) && isDeltaWidening(integer(), decimal(10, 0)) && isDeltaWidening(date(), timestampNtz()));
      assert.ok(!isDeltaWidening(long(), integer()) && !isDeltaWidening(double(), float()) && !isDeltaWidening(decimal(10, 2), decimal(10, 1)) && !isDeltaWidening(long(), double()));
      assert.ok(!isDeltaWidening(integer(), decimal(9, 0)) && !isDeltaWidening(date(), timestamp()) && !isDeltaWidening(string(), long()));
      assert.ok(pgTypeHolds('bigint', 'smallint') && pgTypeHolds('numeric(20,4)', 'numeric(12,2)') && pgTypeHolds('numeric', 'bigint') && pgTypeHolds('double precision', 'real'));
      assert.ok(!pgTypeHolds('integer', 'bigint') && !pgTypeHolds('numeric(12,2)', 'numeric(12,4)') && !pgTypeHolds('date', 'timestamp'));
      assert.ok(pgTypeHolds('timestamp without time zone', 'timestamp') && pgTypeHolds('NUMERIC(10, 2)', 'numeric(10,2)'));
    });
  });

  describe('key columns: refused under every policy, even where the Postgres column would still hold the values', () => {
    const policies = ['fail', 'add-columns', 'ignore-new'] as const;
    const keyError = { kind: 'schema-drift', column: 'id', version: 3, setting: 'key', retry: 'manual', hint: /initial load/ } as const;

    it('a removed key column', () => {
      const v2 = v1.filter((f) => f.name !== 'id');
      for (const schemaDrift of policies) {
        expectSyncError(() => checkSyncDrift({
          mapping: m({ schemaDrift }), synced: resolveColumns(m(), v1), schema: v2, key: ['id'], planned: [], targetColumns: new Map(), source: 'customers', targetLabel: 't', fromVersion: 2, toVersion: 3,
        }), { ...keyError, message: new RegExp(`key of customers changed between version 2 and version 3: key column "id" was removed.*schemaDrift '${schemaDrift}' does not apply to key columns`) });
      }
    });

    it('a key column renamed under column mapping (same physical name)', () => {
      const before = [field('id', long(), { nullable: false, physicalName: 'col-1' }), field('name', string(), { physicalName: 'col-2' })];
      const after = [field('customer_id', long(), { nullable: false, physicalName: 'col-1' }), before[1]!];
      for (const schemaDrift of policies) {
        expectSyncError(() => checkSyncDrift({
          mapping: m({ schemaDrift }), synced: resolveColumns(m(), before), schema: after, key: ['id'], planned: [], targetColumns: new Map(), source: 'customers', targetLabel: 't', fromVersion: 2, toVersion: 3,
        }), { ...keyError, message: /key column "id" was renamed to "customer_id"/ });
      }
      const changes = classifySchemaChanges(resolveColumns(m(), before), after, m(), ['id']);
      assert.deepEqual(changes.removed, [], 'a renamed key column is a key change, not a removal');
    });

    it('a key column retyped compatibly (integer -> long over a bigint override) or made nullable', () => {
      const v0 = [field('id', integer(), { nullable: false }), field('name', string())];
      for (const schemaDrift of policies) {
        const mapping = m({ schemaDrift, columns: { types: { id: 'bigint' } } });
        expectSyncError(() => drift({ mapping, before: v0, after: [field('id', long(), { nullable: false }), v0[1]!] }), {
          ...keyError,
          message: /key column "id" changed from integer not null to long not null/,
        });
        expectSyncError(() => drift({ mapping: m({ schemaDrift }), before: v0, after: [field('id', integer()), v0[1]!] }), {
          ...keyError,
          message: /key column "id" changed from integer not null to integer\./,
        });
      }
    });

    it("uses the target's primary key when the mapping has none, and says nothing when the checkpoint's schema is unknown", () => {
      const mapping = buildMapping({ schemaDrift: 'add-columns' });
      const v2 = v1.map((f) => (f.name === 'id' ? field('id', string(), { nullable: false }) : f));
      expectSyncError(() => drift({ mapping, after: v2, key: ['id'] }), { ...keyError, message: /key column "id" changed from long not null to string not null/ });
      assert.doesNotThrow(() => refuseKeyDrift({ mapping, synced: undefined, schema: v2, key: ['id'], source: 'customers', fromVersion: 2, toVersion: 3 }));
      // A non-key retype is not a key change.
      assert.deepEqual(classifySchemaChanges(resolveColumns(mapping, v1), v2, mapping, ['name']).key, []);
    });
  });
});

describe('mapping: compileRowFilter', () => {
  const schema: DeltaField[] = [
    field('id', long()),
    field('region', string()),
    field('amount', decimal(12, 2)),
    field('day', date()),
    field('at', timestamp()),
    field('local', timestampNtz()),
    field('score', double()),
    field('ok', boolean()),
    field('blob', binary()),
  ];
  const rows = [
    { id: 9007199254740993n, region: 'eu', amount: '100.00', day: 19844, at: 1714564800000000n, local: 1714564800000000n, score: 1.5, ok: true, blob: null },
    { id: 9007199254740992n, region: 'us', amount: '99.99', day: 19845, at: 1714564800000001n, local: 0n, score: NaN, ok: false, blob: new Uint8Array([1]) },
    { id: 3n, region: null, amount: null, day: null, at: null, local: null, score: null, ok: null, blob: null },
  ];
  const ids = (filter: unknown[]): bigint[] => {
    const m = parseMapping(mappingJson({ filter }));
    const pred = compileRowFilter(m.filter!, schema);
    return rows.filter(pred).map((r) => r.id);
  };

  it('compares 64-bit integers exactly when given as strings', () => {
    assert.deepEqual(ids([{ column: 'id', op: '=', value: '9007199254740993' }]), [9007199254740993n]);
    assert.deepEqual(ids([{ column: 'id', op: '>', value: '9007199254740992' }]), [9007199254740993n]);
  });

  it('refuses a JSON number that cannot hold a 64-bit value exactly', () => {
    const m = buildMapping({ filter: [{ column: 'id', op: '=', value: 9007199254740993 }] });
    expectSyncError(() => compileRowFilter(m.filter!, schema), { kind: 'mapping', message: /filter\[0\]: .*2\^53/ });
  });

  it('compares decimals by value whatever the written scale', () => {
    assert.deepEqual(ids([{ column: 'amount', op: '>=', value: '100' }]), [9007199254740993n]);
    assert.deepEqual(ids([{ column: 'amount', op: '<', value: '99.995' }]), [9007199254740992n]);
    assert.deepEqual(ids([{ column: 'amount', op: 'in', values: ['99.990', 5] }]), [9007199254740992n]);
  });

  it('treats null like SQL: comparisons never match, is null does', () => {
    assert.deepEqual(ids([{ column: 'region', op: '!=', value: 'eu' }]), [9007199254740992n]);
    assert.deepEqual(ids([{ column: 'region', op: 'is null' }]), [3n]);
    assert.deepEqual(ids([{ column: 'blob', op: 'is not null' }]), [9007199254740992n]);
  });

  it('reads dates and timestamps with microseconds and zones', () => {
    // 2024-05-01 is day 19844; 2024-05-01T12:00:00Z is 1714564800 s.
    assert.deepEqual(ids([{ column: 'day', op: '=', value: '2024-05-01' }]), [9007199254740993n]);
    assert.deepEqual(ids([{ column: 'at', op: '>', value: '2024-05-01T12:00:00Z' }]), [9007199254740992n]);
    assert.deepEqual(ids([{ column: 'at', op: '=', value: '2024-05-01T14:00:00.000001+02:00' }]), [9007199254740992n]);
    assert.deepEqual(ids([{ column: 'local', op: '=', value: '2024-05-01 12:00:00' }]), [9007199254740993n]);
    const m = buildMapping({ filter: [{ column: 'local', op: '=', value: '2024-05-01T12:00:00Z' }] });
    expectSyncError(() => compileRowFilter(m.filter!, schema), { kind: 'mapping' });
  });

  it('orders NaN above every number and equal to itself', () => {
    assert.deepEqual(ids([{ column: 'score', op: '>', value: 1e308 }]), [9007199254740992n]);
    assert.deepEqual(ids([{ column: 'score', op: '=', value: 'NaN' }]), [9007199254740992n]);
  });

  it('needs every condition to hold', () => {
    assert.deepEqual(
      ids([
        { column: 'ok', op: '=', value: true },
        { column: 'region', op: 'in', values: ['eu', 'us'] },
      ]),
      [9007199254740993n],
    );
  });

  it('refuses unknown columns, comparisons on binary columns and mistyped values before reading rows', () => {
    for (const [filter, re] of [
      [[{ column: 'nope', op: 'is null' }], /filter\[0\]: column "nope" is not in the Delta table/],
      [[{ column: 'blob', op: '=', value: 'x' }], /filter\[0\]: column "blob" is binary/],
      [[{ column: 'day', op: '=', value: '2024-02-30' }], /filter\[0\]: "2024-02-30" is not a valid date value/],
      [[{ column: 'ok', op: '=', value: 'yes' }], /filter\[0\]: "yes" is not a valid boolean value/],
    ] as const) {
      const m = parseMapping(mappingJson({ filter }));
      expectSyncError(() => compileRowFilter(m.filter!, schema), { kind: 'mapping', message: re });
    }
  });
});
