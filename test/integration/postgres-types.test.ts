import assert from 'node:assert/strict';
import type { Pool } from 'pg';
import type { Row } from '../../src/sync/delta/types';
import { copyRows } from '../../src/sync/postgres/copyRows';
import { createPool } from '../../src/sync/postgres/createPool';
import { qualified, quoteIdent } from '../../src/sync/postgres/quoteIdent';
import { defaultTargetColumns, renderCreateTable } from '../../src/sync/postgres/renderCreateTable';
import { array, binary, boolean, byte, date, decimal, double, field, float, integer, long, map, short, string, struct, timestamp, timestampNtz } from '../builders/deltaFields';
import { useTestDatabase } from '../helpers/postgres';

/** Micros since epoch of a UTC wall time, computed with Date (independent of the encoder). */
function micros(iso: string, extraMicros = 0n): bigint {
  return BigInt(Date.parse(iso)) * 1000n + extraMicros;
}
function days(isoDate: string): number {
  return Date.parse(`${isoDate}T00:00:00Z`) / 86_400_000;
}

const structType = struct(field('id', long()), field('amount', decimal(38, 10)), field('tags', array(string())), field('ok', boolean()));
const mapType = map(string(), long());

const fields = [
  field('id', integer(), { nullable: false }),
  field('s', string()),
  field('l', long()),
  field('i', integer()),
  field('sh', short()),
  field('b', byte()),
  field('d', double()),
  field('f', float()),
  field('n', decimal(38, 36)),
  field('m', decimal(10, 2)),
  field('bo', boolean()),
  field('dt', date()),
  field('ts', timestamp()),
  field('tn', timestampNtz()),
  field('bin', binary()),
  field('st', structType),
  field('ar', array(long())),
  field('mp', mapType),
];

describe('postgres target: types and COPY round trip (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('types');
  let pool: Pool;
  before(() => {
    pool = createPool(db().url);
  });
  after(async () => {
    await pool.end();
  });

  it('maps every Delta type to the documented Postgres type and the DDL runs', async () => {
    const cols = defaultTargetColumns(fields);
    const ddl = renderCreateTable({ name: 'all_types' }, cols, ['id']);
    await pool.query(ddl);
    const r = await pool.query<{ attname: string; t: string }>(
      `SELECT attname, format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'all_types'::regclass AND attnum > 0 ORDER BY attnum`,
    );
    assert.deepEqual(Object.fromEntries(r.rows.map((x) => [x.attname, x.t])), {
      id: 'integer', s: 'text', l: 'bigint', i: 'integer', sh: 'smallint', b: 'smallint', d: 'double precision', f: 'real',
      n: 'numeric(38,36)', m: 'numeric(10,2)', bo: 'boolean', dt: 'date', ts: 'timestamp with time zone', tn: 'timestamp without time zone',
      bin: 'bytea', st: 'jsonb', ar: 'jsonb', mp: 'jsonb',
    });
    const pk = await pool.query(`SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conrelid = 'all_types'::regclass AND contype = 'p'`);
    assert.equal(pk.rows[0].d, 'PRIMARY KEY (id)');
  });

  it('round-trips extreme and tricky values exactly through COPY', async () => {
    const cols = defaultTargetColumns(fields);
    const rows: Row[] = [
      {
        id: 1, s: 'tab\there\nnew line\r\\back\\slash \\N not null', l: 9223372036854775807n, i: 2147483647, sh: 32767, b: 127,
        d: 1.7976931348623157e308, f: 3.4028234663852886e38, n: '1.234567890123456789012345678901234567', m: '-12345678.90',
        bo: true, dt: days('2024-02-29'), ts: micros('2024-02-29T23:59:59.123Z', 456n), tn: micros('1999-12-31T23:59:59Z', 999_999n),
        bin: new Uint8Array([0, 1, 92, 9, 10, 255]),
        st: { id: -9223372036854775808n, amount: '12345678901234567890123456.0123456789', tags: ['a"b', 'c\\d', null], ok: false },
        ar: [9007199254740993n, -1n, null],
        mp: new Map<string | null, bigint | null>([['k\tey', 18446744073709551n], ['z', null]]) as Row['mp'],
      },
      {
        id: 2, s: 'unicode: Grüße 日本語 🎉', l: -9223372036854775808n, i: -2147483648, sh: -32768, b: -128,
        d: NaN, f: -Infinity, n: '-0.000000000000000000000000000000000001', m: '0.00', bo: false,
        dt: days('0001-01-01') - 1, ts: 0n, tn: micros('1970-01-01T00:00:00Z') - 1n, bin: new Uint8Array([]),
        st: null, ar: [], mp: new Map() as Row['mp'],
      },
      { id: 3, s: null, l: null, i: null, sh: null, b: null, d: Infinity, f: null, n: null, m: null, bo: null, dt: null, ts: null, tn: null, bin: null, st: null, ar: null, mp: null },
      { id: 4, s: '', l: 0n, i: 0, sh: 0, b: 0, d: -0, f: 0.1, n: '0.000000000000000000000000000000000000', m: '1.50', bo: true,
        dt: days('9999-12-31') + 1, ts: micros('9999-12-31T23:59:59Z') + 1_000_000n, tn: -62135596800000000n - 86_400_000_000n * 366n, bin: new Uint8Array([222, 173, 190, 239]), st: null, ar: null, mp: null },
    ];
    const client = await pool.connect();
    try {
      const n = await copyRows(client, { name: 'all_types' }, cols, [rows.slice(0, 2), rows.slice(2)]);
      assert.equal(n, 4);
      await client.query(`SET TIME ZONE 'UTC'`);
      const r = await client.query(`SELECT id, ${fields.slice(1).map((f) => `${quoteIdent(f.name)}::text AS ${quoteIdent(f.name)}`).join(', ')} FROM all_types ORDER BY id`);
      const [a, b, c, d] = r.rows as Record<string, string | null>[];
      assert.ok(a && b && c && d);
      assert.equal(a.s, 'tab\there\nnew line\r\\back\\slash \\N not null');
      assert.equal(a.l, '9223372036854775807');
      assert.equal(b.l, '-9223372036854775808');
      assert.equal(a.i, '2147483647');
      assert.equal(b.sh, '-32768');
      assert.equal(b.b, '-128');
      assert.equal(a.d, '1.7976931348623157e+308');
      assert.equal(a.f, '3.4028235e+38');
      assert.equal(b.d, 'NaN');
      assert.equal(b.f, '-Infinity');
      assert.equal(c.d, 'Infinity');
      assert.equal(d.d, '-0');
      assert.equal(d.f, '0.1');
      assert.equal(a.n, '1.234567890123456789012345678901234567');
      assert.equal(b.n, '-0.000000000000000000000000000000000001');
      assert.equal(a.m, '-12345678.90');
      assert.equal(a.bo, 'true');
      assert.equal(a.dt, '2024-02-29');
      assert.equal(b.dt, '0001-12-31 BC');
      assert.equal(d.dt, '10000-01-01');
      assert.equal(a.ts, '2024-02-29 23:59:59.123456+00');
      assert.equal(b.ts, '1970-01-01 00:00:00+00');
      assert.equal(d.ts, '10000-01-01 00:00:00+00');
      assert.equal(a.tn, '1999-12-31 23:59:59.999999');
      assert.equal(b.tn, '1969-12-31 23:59:59.999999');
      // 0001-01-01 minus 366 days: 1 BC is a leap year (proleptic Gregorian).
      assert.equal(d.tn, '0001-01-01 00:00:00 BC');
      assert.equal(a.bin, '\\x00015c090aff');
      assert.equal(b.bin, '\\x');
      assert.equal(d.bin, '\\xdeadbeef');
      assert.equal(b.s, 'unicode: Grüße 日本語 🎉');
      assert.equal(c.s, null);
      assert.equal(d.s, '');
      // jsonb: exact numbers, checked through SQL on the server (no JS number involved).
      const j = await client.query(`SELECT (st->>'id') AS id, (st->>'amount') AS amount, st->'tags'->>0 AS t0, st->'tags'->>1 AS t1, jsonb_typeof(st->'tags'->2) AS t2,
                                           (ar->>0) AS a0, (mp->>E'k\\tey') AS mk, jsonb_typeof(mp->'z') AS mz, st->>'ok' AS ok FROM all_types WHERE id = 1`);
      assert.deepEqual(j.rows[0], { id: '-9223372036854775808', amount: '12345678901234567890123456.0123456789', t0: 'a"b', t1: 'c\\d', t2: 'null', a0: '9007199254740993', mk: '18446744073709551', mz: 'null', ok: 'false' });
      const j2 = await client.query(`SELECT ar::text AS ar, mp::text AS mp FROM all_types WHERE id = 2`);
      assert.deepEqual(j2.rows[0], { ar: '[]', mp: '{}' });
    } finally {
      client.release();
    }
  });

  it('reads int8 as bigint and numeric/timestamps as exact text with the pool parsers, without touching pg globals', async () => {
    const r = await pool.query(`SELECT 9223372036854775807::int8 AS big, 0.1::numeric(38,36) AS n, '2024-01-02 03:04:05.678901+00'::timestamptz AT TIME ZONE 'UTC' AS ts, '2024-01-02'::date AS d, ARRAY[1,2]::int8[] AS arr`);
    assert.equal(r.rows[0].big, 9223372036854775807n);
    assert.equal(r.rows[0].n, '0.100000000000000000000000000000000000');
    assert.equal(r.rows[0].ts, '2024-01-02 03:04:05.678901');
    assert.equal(r.rows[0].d, '2024-01-02');
    assert.deepEqual(r.rows[0].arr, [1n, 2n]);
    const { default: pg } = await import('pg');
    assert.equal(pg.types.getTypeParser(20, 'text')('5'), '5');
  });

  it('refuses a string with NUL and names the column; the connection stays usable', async () => {
    const cols = defaultTargetColumns(fields);
    const client = await pool.connect();
    try {
      await assert.rejects(
        copyRows(client, { name: 'all_types' }, cols, [[{ id: 10, s: 'a\u0000b' }]]),
        (e: Error & { column?: string; kind?: string }) => e.kind === 'target' && e.column === 's' && /NUL/.test(e.message),
      );
      assert.equal((await client.query('SELECT count(*)::int AS n FROM all_types WHERE id = 10')).rows[0].n, 0);
    } finally {
      client.release();
    }
  });

  it('quotes hostile schema, table and column names everywhere (quotes, semicolons, unicode, reserved words)', async () => {
    const schema = 'my "schema"; DROP TABLE x; --';
    const table = 'select';
    const hostile = [
      field('user', string(), { nullable: false }),
      field('a"b; DROP TABLE all_types; --', long()),
      field('Größe 日本', decimal(10, 2)),
      field('order', boolean()),
    ];
    const cols = defaultTargetColumns(hostile);
    await pool.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
    await pool.query(renderCreateTable({ schema, name: table }, cols, ['user']));
    const client = await pool.connect();
    try {
      await copyRows(client, { schema, name: table }, cols, [[{ user: 'u1', 'a"b; DROP TABLE all_types; --': 5n, 'Größe 日本': '1.25', order: true }]]);
    } finally {
      client.release();
    }
    const r = await pool.query(`SELECT * FROM ${qualified(schema, table)}`);
    assert.deepEqual(r.rows, [{ user: 'u1', 'a"b; DROP TABLE all_types; --': 5n, 'Größe 日本': '1.25', order: true }]);
    assert.notEqual((await pool.query(`SELECT to_regclass('all_types') AS t`)).rows[0].t, null);
    assert.throws(() => quoteIdent('bad\u0000name'), /NUL/);
  });
});
