import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SyncError } from '../../src/sync/errors';
import type { DeltaField, DeltaType, PrimitiveTypeName } from '../../src/sync/delta/types';
import { parseMapping, loadMappingFile, parseMappingText } from '../../src/sync/mapping/loadMapping';
import { mappingSchemaFileText } from '../../src/sync/mapping/mappingJsonSchema';
import type { Mapping } from '../../src/sync/mapping/mappingSchema';
import { resolveColumns, keySourceColumns } from '../../src/sync/mapping/resolveColumns';
import type { TargetColumn } from '../../src/sync/mapping/resolveColumns';
import { detectDrift } from '../../src/sync/mapping/detectDrift';
import { compileRowFilter } from '../../src/sync/mapping/compileRowFilter';

const prim = (name: PrimitiveTypeName): DeltaType => ({ kind: 'primitive', name });
const field = (name: string, type: DeltaType, nullable = true): DeltaField => ({
  name,
  type,
  nullable,
  metadata: {},
  physicalName: name,
});

function base(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'customers',
    source: { type: 'delta', path: '/data/customers' },
    target: { connection: 'neon-dev', table: 'customers' },
    ...extra,
  };
}

/** Runs `fn`, expects a SyncError of `kind`, returns it. */
function expectSyncError(fn: () => unknown, kind: string): SyncError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SyncError, `expected SyncError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    return e;
  }
  assert.fail('expected a SyncError');
}

describe('mapping: parseMapping', () => {
  it('fills in the documented defaults for a minimal mapping', () => {
    const m = parseMapping(base());
    assert.equal(m.target.schema, 'public');
    assert.deepEqual(m.deletes, { mode: 'delete' });
    assert.equal(m.schemaDrift, 'fail');
    assert.deepEqual(m.batch, { maxRows: 50_000, maxBytes: 64 * 1024 * 1024 });
    assert.deepEqual(m.initialLoad, { mode: 'swap' });
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
    const rel = parseMapping(base({ source: { type: 'delta', path: '../data/customers' } }), file);
    assert.equal(rel.source.type === 'delta' && rel.source.path, path.join(os.tmpdir(), 'ws', 'data', 'customers'));
    const abs = parseMapping(base({ source: { type: 'delta', path: '/srv/t' } }), file);
    assert.equal(abs.source.type === 'delta' && abs.source.path, '/srv/t');
    const uri = parseMapping(base({ source: { type: 'delta', path: 's3://bucket/t' } }), file);
    assert.equal(uri.source.type === 'delta' && uri.source.path, 's3://bucket/t');
  });

  it('names the field path of a bad rename target', () => {
    const e = expectSyncError(() => parseMapping(base({ columns: { rename: { email: 'e mail' } } })), 'mapping');
    assert.match(e.message, /columns\.rename\.email: must be a valid identifier/);
    assert.equal(e.setting, 'columns.rename.email');
  });

  it('quotes field path segments that are not identifiers', () => {
    const e = expectSyncError(() => parseMapping(base({ columns: { rename: { 'E Mail': '1x' } } })), 'mapping');
    assert.match(e.message, /columns\.rename\["E Mail"\]: must be a valid identifier/);
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
      'mapping',
    );
    for (const p of ['name', 'source.path', 'batch.maxRows', 'schemaDrift', '(root)']) {
      assert.ok(e.message.includes(`  - ${p}: `), `missing ${p} in:\n${e.message}`);
    }
    assert.match(e.message, /\(5 issues\)/);
    assert.match(e.message, /source\.path: is required/);
    assert.match(e.message, /\(root\): unknown field "colums"/);
  });

  it('refuses an unknown source type and an unknown delete mode', () => {
    const e1 = expectSyncError(() => parseMapping(base({ source: { type: 'kafka', topic: 'x' } })), 'mapping');
    assert.match(e1.message, /source\.type: /);
    const e2 = expectSyncError(() => parseMapping(base({ deletes: { mode: 'purge' } })), 'mapping');
    assert.match(e2.message, /deletes\.mode: /);
    const e3 = expectSyncError(() => parseMapping(base({ deletes: { mode: 'soft-delete', column: 'gone' } })), 'mapping');
    assert.match(e3.message, /deletes\.kind: /);
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
      assert.doesNotThrow(() => parseMapping(base({ columns: { types: { c: t } } })), t);
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
      const e = expectSyncError(() => parseMapping(base({ columns: { types: { c: t } } })), 'mapping');
      assert.match(e.message, /columns\.types\.c: must be a Postgres type name/, t);
    }
  });

  it('refuses a postgres URL with a password and accepts one without, a saved name or an env reference', () => {
    const e = expectSyncError(
      () => parseMapping(base({ target: { connection: 'postgres://u:secret@host/db', table: 't' } })),
      'mapping',
    );
    assert.match(e.message, /target\.connection: must not contain a password/);
    expectSyncError(
      () => parseMapping(base({ target: { connection: 'postgresql://u@host/db?password=secret', table: 't' } })),
      'mapping',
    );
    for (const c of ['postgresql://u@host:5432/db?sslmode=require', 'neon-prod', '${env:DATABASE_URL}']) {
      assert.equal(parseMapping(base({ target: { connection: c, table: 't' } })).target.connection, c);
    }
    const bad = expectSyncError(() => parseMapping(base({ target: { connection: 'mysql://h/db', table: 't' } })), 'mapping');
    assert.match(bad.message, /target\.connection: must be a saved connection name/);
  });

  it('refuses a databricks table that is not catalog.schema.table', () => {
    const e = expectSyncError(
      () => parseMapping(base({ source: { type: 'databricks', connection: 'c', table: 'sales.orders' } })),
      'mapping',
    );
    assert.match(e.message, /source\.table: must be a three-part name/);
  });

  it('refuses filters without values or with an unknown operator, naming the condition index', () => {
    const e = expectSyncError(
      () =>
        parseMapping(
          base({
            filter: [
              { column: 'a', op: '=', value: 1 },
              { column: 'b', op: 'in', values: [] },
              { column: 'c', op: 'like', value: 'x%' },
            ],
          }),
        ),
      'mapping',
    );
    assert.match(e.message, /filter\[1\]\.values: must list at least one value/);
    assert.match(e.message, /filter\[2\]\.op: /);
    assert.doesNotMatch(e.message, /filter\[0\]/);
  });

  it('refuses a key column that columns.exclude removes, following renames', () => {
    const e = expectSyncError(
      () => parseMapping(base({ key: ['customer_id'], columns: { exclude: ['id'], rename: { id: 'customer_id' } } })),
      'mapping',
    );
    assert.match(e.message, /key\[0\]: key column "customer_id" \(Delta column "id"\) is excluded/);
  });

  it('refuses a key column left out of columns.include', () => {
    const e = expectSyncError(() => parseMapping(base({ key: ['id'], columns: { include: ['name'] } })), 'mapping');
    assert.match(e.message, /key\[0\]: .*columns\.include/);
  });

  it('refuses two renames to the same target name', () => {
    const e = expectSyncError(() => parseMapping(base({ columns: { rename: { a: 'x', b: 'x' } } })), 'mapping');
    assert.match(e.message, /columns\.rename\.b: renames to "x", which "a" is already renamed to/);
  });

  it('refuses a soft-delete column that is also a data column', () => {
    const viaRename = expectSyncError(
      () =>
        parseMapping(
          base({ columns: { rename: { gone: 'is_deleted' } }, deletes: { mode: 'soft-delete', column: 'is_deleted', kind: 'boolean' } }),
        ),
      'mapping',
    );
    assert.match(viaRename.message, /deletes\.column: "is_deleted" is also a data column/);
    const viaKey = expectSyncError(
      () => parseMapping(base({ key: ['id'], deletes: { mode: 'soft-delete', column: 'id', kind: 'boolean' } })),
      'mapping',
    );
    assert.match(viaKey.message, /deletes\.column: .*key column/);
  });

  it('refuses a column both included and excluded, and a duplicate in a list', () => {
    const e = expectSyncError(() => parseMapping(base({ columns: { include: ['a', 'b'], exclude: ['b'] } })), 'mapping');
    assert.match(e.message, /columns\.exclude: lists "b", which columns\.include also lists/);
    const d = expectSyncError(() => parseMapping(base({ key: ['id', 'id'] })), 'mapping');
    assert.match(d.message, /key: must not list the same key column twice/);
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
    fs.writeFileSync(file, '\ufeff' + JSON.stringify(base({ source: { type: 'delta', path: 'tables/orders' } }), null, 2));
    const m = loadMappingFile(file);
    assert.equal(m.source.type === 'delta' && m.source.path, path.join(dir, 'tables', 'orders'));
  });

  it('names the line and column of a JSON syntax error', () => {
    const file = path.join(dir, 'broken.json');
    fs.writeFileSync(file, '{\n  "name": "x",\n  "source": {"type": "delta" "path": "t"}\n}\n');
    const e = expectSyncError(() => loadMappingFile(file), 'mapping');
    assert.match(e.message, /broken\.json is not valid JSON at line 3, column 30/);
  });

  it('reports a truncated file at its end', () => {
    const e = expectSyncError(() => parseMappingText('{\n  "name": "x",\n', 'cut.json'), 'mapping');
    assert.match(e.message, /at line 3, column 1/);
  });

  it('names the file in validation errors and says when it is missing', () => {
    const file = path.join(dir, 'bad.json');
    fs.writeFileSync(file, JSON.stringify(base({ schemaDrift: 'nope' })));
    const e = expectSyncError(() => loadMappingFile(file), 'mapping');
    assert.ok(e.message.includes(file));
    assert.match(e.message, /schemaDrift: /);
    const missing = expectSyncError(() => loadMappingFile(path.join(dir, 'none.json')), 'mapping');
    assert.match(missing.message, /ENOENT/);
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
    field('s', prim('string')),
    field('l', prim('long'), false),
    field('i', prim('integer')),
    field('sh', prim('short')),
    field('by', prim('byte')),
    field('d', prim('double')),
    field('f', prim('float')),
    field('dec', { kind: 'decimal', precision: 38, scale: 9 }),
    field('b', prim('boolean')),
    field('dt', prim('date')),
    field('ts', prim('timestamp')),
    field('tsn', prim('timestamp_ntz')),
    field('bin', prim('binary')),
    field('st', { kind: 'struct', fields: [field('x', prim('long'))] }),
    field('arr', { kind: 'array', elementType: prim('string'), containsNull: true }),
    field('mp', { kind: 'map', keyType: prim('string'), valueType: prim('long'), valueContainsNull: true }),
  ];

  it('maps every Delta type to the documented Postgres type, in schema order', () => {
    const cols = resolveColumns(parseMapping(base()), allTypes);
    assert.deepEqual(
      cols.map((c) => [c.target, c.pgType]),
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
    assert.equal(cols[1]!.nullable, false);
    assert.equal(cols[0]!.nullable, true);
    assert.deepEqual(cols[7]!.deltaType, { kind: 'decimal', precision: 38, scale: 9 });
  });

  it('applies include, exclude, rename and types (types keyed by the renamed name)', () => {
    const m = parseMapping(
      base({
        key: ['customer_id'],
        columns: {
          include: ['l', 's', 'ts'],
          exclude: ['dec'],
          rename: { l: 'customer_id', s: 'full_name' },
          types: { full_name: 'varchar(200)', ts: 'timestamp(3) with time zone' },
        },
      }),
    );
    const cols = resolveColumns(m, allTypes);
    assert.deepEqual(
      cols.map((c) => ({ source: c.source, target: c.target, pgType: c.pgType })),
      [
        { source: 's', target: 'full_name', pgType: 'varchar(200)' },
        { source: 'l', target: 'customer_id', pgType: 'bigint' },
        { source: 'ts', target: 'ts', pgType: 'timestamp(3) with time zone' },
      ],
    );
    assert.deepEqual(keySourceColumns(cols, m.key!), ['l']);
  });

  it('names an unknown column in include, exclude, rename or types', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ include: ['s', 'nope'] }, /columns\.include\[1\]: column "nope" is not in the Delta table/],
      [{ exclude: ['gone'] }, /columns\.exclude\[0\]: column "gone"/],
      [{ rename: { missing: 'm' } }, /columns\.rename\.missing: column "missing"/],
      [{ types: { zz: 'text' } }, /columns\.types\.zz: "zz" is not a synced Postgres column/],
    ];
    for (const [columns, re] of cases) {
      const e = expectSyncError(() => resolveColumns(parseMapping(base({ columns })), allTypes), 'mapping');
      assert.match(e.message, re);
      assert.ok(e.column);
    }
  });

  it('suggests the right case for a column name that differs only in case', () => {
    const e = expectSyncError(() => resolveColumns(parseMapping(base({ columns: { include: ['S'] } })), allTypes), 'mapping');
    assert.match(e.hint ?? '', /Did you mean "s"/);
  });

  it('refuses a key that is not a synced column', () => {
    const e = expectSyncError(() => resolveColumns(parseMapping(base({ key: ['id'] })), allTypes), 'mapping');
    assert.match(e.message, /key\[0\]: "id" is not a synced Postgres column/);
  });

  it('refuses two columns that end with the same Postgres name', () => {
    const e = expectSyncError(() => resolveColumns(parseMapping(base({ columns: { rename: { s: 'l' } } })), allTypes), 'mapping');
    assert.match(e.message, /"s" and "l" both map to Postgres column "l"|"l" and "s" both map/);
  });

  it('refuses a soft-delete column named like a synced Delta column', () => {
    const m = parseMapping(base({ deletes: { mode: 'soft-delete', column: 'b', kind: 'boolean' } }));
    const e = expectSyncError(() => resolveColumns(m, allTypes), 'mapping');
    assert.match(e.message, /deletes\.column: "b" is also a data column/);
  });

  it('asks for a rename when a Delta name is too long for Postgres', () => {
    const long = 'x'.repeat(64);
    const e = expectSyncError(() => resolveColumns(parseMapping(base()), [field(long, prim('string'))]), 'mapping');
    assert.match(e.message, /longer than 63 bytes/);
    const ok = resolveColumns(parseMapping(base({ columns: { rename: { [long]: 'short_name' } } })), [field(long, prim('string'))]);
    assert.equal(ok[0]!.target, 'short_name');
  });

  it('keeps Delta names with spaces when they fit', () => {
    const cols = resolveColumns(parseMapping(base()), [field('First Name', prim('string'))]);
    assert.equal(cols[0]!.target, 'First Name');
  });
});

describe('mapping: detectDrift', () => {
  const v1: DeltaField[] = [
    field('id', prim('long'), false),
    field('name', prim('string')),
    field('kind', prim('byte')),
    field('attrs', { kind: 'struct', fields: [field('a', prim('string'))] }),
  ];
  const m = (extra: Record<string, unknown> = {}): Mapping => parseMapping(base({ key: ['id'], ...extra }));
  const synced = (mapping: Mapping): TargetColumn[] => resolveColumns(mapping, v1);

  it('reports nothing when the schema is unchanged', () => {
    const r = detectDrift(synced(m()), v1, 'fail');
    assert.equal(r.decision, 'none');
    assert.deepEqual([r.added, r.removed, r.retyped], [[], [], []]);
    assert.equal(r.error, undefined);
  });

  it("fails on an added column under 'fail', naming the column and both versions", () => {
    const v2 = [...v1, field('email', prim('string'))];
    const r = detectDrift(synced(m()), v2, 'fail', { table: 'customers', fromVersion: 3, toVersion: 7 });
    assert.equal(r.decision, 'fail');
    assert.deepEqual(r.added.map((c) => c.source), ['email']);
    assert.ok(r.error instanceof SyncError);
    assert.equal(r.error.kind, 'schema-drift');
    assert.match(r.error.message, /customers changed between version 3 and version 7: added "email" string/);
    assert.equal(r.error.column, 'email');
    assert.match(r.error.hint ?? '', /add-columns/);
  });

  it("gives ALTER TABLE ADD COLUMN specs under 'add-columns', with the mapping's rename and types", () => {
    const mapping = m({ schemaDrift: 'add-columns', columns: { rename: { Email: 'email' }, types: { email: 'varchar(320)' } } });
    const v2 = [...v1, field('Email', prim('string'), false), field('score', { kind: 'decimal', precision: 10, scale: 2 })];
    // The synced columns were resolved before Email existed (and before its rename was added).
    const r = detectDrift(synced(m()), v2, mapping.schemaDrift, { mapping });
    assert.equal(r.decision, 'add-columns');
    assert.deepEqual(r.addColumns, [
      { source: 'Email', column: 'email', pgType: 'varchar(320)' },
      { source: 'score', column: 'score', pgType: 'numeric(10,2)' },
    ]);
    assert.deepEqual(r.columns.map((c) => c.target), ['id', 'name', 'kind', 'attrs', 'email', 'score']);
    assert.ok(r.columns.slice(4).every((c) => c.nullable), 'added columns are nullable: old rows have no value');
  });

  it("leaves new columns out under 'ignore-new'", () => {
    const r = detectDrift(synced(m()), [...v1, field('email', prim('string'))], 'ignore-new');
    assert.equal(r.decision, 'ignore-new');
    assert.deepEqual(r.columns.map((c) => c.source), ['id', 'name', 'kind', 'attrs']);
    assert.equal(r.error, undefined);
  });

  it('does not count a new column that the mapping include list leaves out', () => {
    const mapping = m({ columns: { include: ['id', 'name'] } });
    const r = detectDrift(synced(mapping), [...v1, field('email', prim('string'))], 'fail', { mapping });
    assert.equal(r.decision, 'none');
  });

  it('fails on a removed column under every policy', () => {
    const v2 = v1.filter((f) => f.name !== 'name');
    for (const policy of ['fail', 'add-columns', 'ignore-new'] as const) {
      const r = detectDrift(synced(m()), v2, policy, { toVersion: 9 });
      assert.equal(r.decision, 'fail', policy);
      assert.match(r.error!.message, /at version 9: removed "name"/);
      assert.equal(r.error!.version, 9);
    }
  });

  it('fails on a type change the Postgres column cannot hold', () => {
    const v2 = v1.map((f) => (f.name === 'id' ? field('id', prim('string'), false) : f));
    const r = detectDrift(synced(m()), v2, 'add-columns');
    assert.equal(r.decision, 'fail');
    assert.equal(r.retyped[0]!.compatible, false);
    assert.match(r.error!.message, /changed "id" long not null -> string not null/);
  });

  it('continues through widenings that keep the Postgres type (byte -> short, a struct gaining a field)', () => {
    const v2 = v1.map((f) =>
      f.name === 'kind'
        ? field('kind', prim('short'))
        : f.name === 'attrs'
          ? field('attrs', { kind: 'struct', fields: [field('a', prim('string')), field('b', prim('long'))] })
          : f,
    );
    const r = detectDrift(synced(m()), v2, 'fail');
    assert.equal(r.decision, 'continue');
    assert.deepEqual(r.retyped.map((x) => [x.column.source, x.compatible]), [
      ['kind', true],
      ['attrs', true],
    ]);
    assert.deepEqual(r.columns.find((c) => c.source === 'kind')!.deltaType, prim('short'));
  });

  it('accepts integer -> long when a columns.types override already made the column bigint', () => {
    const v0 = [field('id', prim('long'), false), field('n', prim('integer'))];
    const mapping = m({ columns: { types: { n: 'bigint' } } });
    const r = detectDrift(resolveColumns(mapping, v0), [v0[0]!, field('n', prim('long'))], 'fail', { mapping });
    assert.equal(r.decision, 'continue');
    const plain = detectDrift(resolveColumns(m(), v0), [v0[0]!, field('n', prim('long'))], 'fail');
    assert.equal(plain.decision, 'fail');
  });

  it('fails when a column becomes nullable (the Postgres column may be NOT NULL)', () => {
    const v2 = v1.map((f) => (f.name === 'id' ? field('id', prim('long'), true) : f));
    const r = detectDrift(synced(m()), v2, 'ignore-new');
    assert.equal(r.decision, 'fail');
  });

  it('fails when an added column would take an existing Postgres name', () => {
    const mapping = m({ schemaDrift: 'add-columns', columns: { rename: { name: 'full_name' } } });
    const r = detectDrift(resolveColumns(mapping, v1), [...v1, field('full_name', prim('string'))], 'add-columns', { mapping });
    assert.equal(r.decision, 'fail');
    assert.match(r.error!.message, /already used by "name"/);
  });
});

describe('mapping: compileRowFilter', () => {
  const schema: DeltaField[] = [
    field('id', prim('long')),
    field('region', prim('string')),
    field('amount', { kind: 'decimal', precision: 12, scale: 2 }),
    field('day', prim('date')),
    field('at', prim('timestamp')),
    field('local', prim('timestamp_ntz')),
    field('score', prim('double')),
    field('ok', prim('boolean')),
    field('blob', prim('binary')),
  ];
  const rows = [
    { id: 9007199254740993n, region: 'eu', amount: '100.00', day: 19844, at: 1714564800000000n, local: 1714564800000000n, score: 1.5, ok: true, blob: null },
    { id: 9007199254740992n, region: 'us', amount: '99.99', day: 19845, at: 1714564800000001n, local: 0n, score: NaN, ok: false, blob: new Uint8Array([1]) },
    { id: 3n, region: null, amount: null, day: null, at: null, local: null, score: null, ok: null, blob: null },
  ];
  const ids = (filter: unknown[]): bigint[] => {
    const m = parseMapping(base({ filter }));
    const pred = compileRowFilter(m.filter!, schema);
    return rows.filter(pred).map((r) => r.id);
  };

  it('compares 64-bit integers exactly when given as strings', () => {
    assert.deepEqual(ids([{ column: 'id', op: '=', value: '9007199254740993' }]), [9007199254740993n]);
    assert.deepEqual(ids([{ column: 'id', op: '>', value: '9007199254740992' }]), [9007199254740993n]);
  });

  it('refuses a JSON number that cannot hold a 64-bit value exactly', () => {
    const m = parseMapping(base({ filter: [{ column: 'id', op: '=', value: 9007199254740993 }] }));
    const e = expectSyncError(() => compileRowFilter(m.filter!, schema), 'mapping');
    assert.match(e.message, /filter\[0\]: .*2\^53/);
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
    const m = parseMapping(base({ filter: [{ column: 'local', op: '=', value: '2024-05-01T12:00:00Z' }] }));
    expectSyncError(() => compileRowFilter(m.filter!, schema), 'mapping');
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
      const m = parseMapping(base({ filter }));
      const e = expectSyncError(() => compileRowFilter(m.filter!, schema), 'mapping');
      assert.match(e.message, re);
    }
  });
});
