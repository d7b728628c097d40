import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Pool } from 'pg';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import type { DeltaValue, Row } from '../../src/sync/delta/types';
import { variantToJson } from '../../src/sync/delta/variant';
import { SyncError } from '../../src/sync/errors';
import { createPool } from '../../src/sync/postgres/createPool';
import { buildMapping } from '../builders/mappings';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner } from '../helpers/syncHarness';

/**
 * VARIANT columns of real Spark-written Delta tables, from the Delta projects' own test data
 * (not committed here). Recreate them with `scripts/fetch-kernel-tables.sh [DEST]`, which
 * takes, at pinned commits (Apache License 2.0; it writes DEST/PROVENANCE.md):
 *   unshredded-variant/, unshredded-variant.expected.in
 *     github.com/delta-io/delta-kernel-rs @ b14c3fb84003346db99e4bcc6b473d87b43e034b,
 *     kernel/tests/data/unshredded-variant.tar.zst and .expected.in
 *   spark-shredded-variant-preview-delta/
 *     github.com/delta-io/delta @ bb1057f4367f555b01e299fd1690d85aafc0ac4c,
 *     kernel/kernel-defaults/src/test/resources/spark-shredded-variant-preview-delta
 *   parquet-testing-variant/
 *     github.com/apache/parquet-testing @ 1a2a75127be06fc0123f03ebd36c966f7beda27d, variant/
 * The folder is $DELTA_KERNEL_TABLES, else /work/kernel-tables; without it every test here
 * is skipped, saying so.
 *
 * The expected values come from delta-kernel-rs' expectation for its scan of the table
 * (unshredded-variant.expected.in, Arrow's pretty print: each variant as its metadata and
 * value bytes in hex, an empty cell for a null at any level), never from this project's
 * decoder: each variant's bytes are checked against the one encoding the table's generating
 * query (unshredded-variant/info.txt: parse_json('{"key": id}')) gives, spelled out byte by
 * byte below, and the row's id. The table has no Change Data Feed, so none is read.
 *
 * That table holds only small integers; the numbers, decimals, dates and timestamps are
 * checked on apache/parquet-testing's variant binaries (raw metadata/value pairs Spark SQL
 * and Iceberg's tests encoded, one per primitive type): the JSON each must become is written
 * below from the value regen.py casts (e.g. 12345678912345678.90::Decimal(30,2)) and the
 * spec's JSON conversion table, and checked against data_dictionary.json's JSON of it.
 */

const KERNEL_TABLES = process.env.DELTA_KERNEL_TABLES ?? '/work/kernel-tables';
const UNSHREDDED = path.join(KERNEL_TABLES, 'unshredded-variant');
const EXPECTED = path.join(KERNEL_TABLES, 'unshredded-variant.expected.in');
const SHREDDED = path.join(KERNEL_TABLES, 'spark-shredded-variant-preview-delta');
const PARQUET_TESTING = path.join(KERNEL_TABLES, 'parquet-testing-variant');

const COLUMNS = ['v', 'array_of_variants', 'struct_of_variants', 'map_of_variants', 'array_of_struct_of_variants', 'struct_of_array_of_variants'] as const;

/** A value as JSON would hold it: what the kernel expects, and what we read, compared alike. */
type Plain = null | number | string | boolean | Plain[] | { [k: string]: Plain };
type ExpectedRow = { id: number } & Record<(typeof COLUMNS)[number], Plain>;

/** Arrow's pretty-printed cell -> a tree: `[a, , b]` lists, `{k: v, k2: }` structs and maps, bare tokens; empty = null. */
type Cell = null | string | Cell[] | { fields: Array<[string, Cell]> };
function parseCell(text: string): Cell {
  let i = 0;
  const value = (): Cell => {
    while (text[i] === ' ') i++;
    const c = text[i];
    if (c === undefined || c === ',' || c === ']' || c === '}') return null;
    if (c === '[') {
      i++;
      const items: Cell[] = [];
      if (text[i] === ']') {
        i++;
        return items;
      }
      for (;;) {
        items.push(value());
        while (text[i] === ' ') i++;
        if (text[i++] === ']') return items;
      }
    }
    if (c === '{') {
      i++;
      const entries: Array<[string, Cell]> = [];
      for (;;) {
        while (text[i] === ' ') i++;
        const colon = text.indexOf(':', i);
        const key = text.slice(i, colon);
        i = colon + 1;
        entries.push([key, value()]);
        while (text[i] === ' ') i++;
        if (text[i++] === '}') return { fields: entries };
      }
    }
    const start = i;
    while (i < text.length && !',]}'.includes(text[i] as string)) i++;
    return text.slice(start, i).trim();
  };
  const v = value();
  assert.equal(i >= text.length || text.slice(i).trim() === '', true, `unparsed rest of cell: ${text.slice(i)}`);
  return v;
}

/**
 * The JSON of one variant of this table from its bytes, for the one shape the generating
 * query writes, parse_json('{"key": <id>}') with 0 <= id < 128:
 *   metadata 01 01 00 03 6b6579: header 0x01 (version 1, 1-byte offsets), 1 dictionary
 *            entry, offsets 0 and 3, the bytes of "key";
 *   value    02 01 00 00 02 0c NN: object header 0x02 (1-byte ids and offsets), 1 field,
 *            field id 0, offsets 0 and 2, then int8 (primitive header 3 << 2 = 0x0c) NN.
 */
function kernelVariant(cell: Cell, id: number, where: string): Plain {
  assert.ok(cell !== null && typeof cell === 'object' && !Array.isArray(cell), `${where}: not a variant cell`);
  const parts = Object.fromEntries(cell.fields);
  assert.deepEqual(Object.keys(parts), ['metadata', 'value'], where);
  assert.equal(parts.metadata, '010100036b6579', `${where}: metadata`);
  const m = /^02010000020c([0-9a-f]{2})$/.exec(String(parts.value));
  assert.ok(m, `${where}: value ${String(parts.value)} is not {"key": int8}`);
  const key = parseInt(m[1] as string, 16);
  assert.equal(key, id, `${where}: the query writes {"key": id}`);
  return { key };
}

/** A kernel cell of Delta type `shape` as JSON: variants decoded as above, structs and maps as objects. */
type Shape = 'variant' | { array: Shape } | { struct: Record<string, Shape> } | { map: Shape };
function kernelValue(cell: Cell, shape: Shape, id: number, where: string): Plain {
  if (cell === null) return null;
  if (shape === 'variant') return kernelVariant(cell, id, where);
  if ('array' in shape) {
    assert.ok(Array.isArray(cell), `${where}: not a list`);
    return (cell as Cell[]).map((c, n) => kernelValue(c, shape.array, id, `${where}[${n}]`));
  }
  assert.ok(typeof cell === 'object' && !Array.isArray(cell), `${where}: not a struct or map`);
  const out: Record<string, Plain> = {};
  for (const [k, c] of cell.fields) {
    const inner = 'map' in shape ? shape.map : shape.struct[k];
    assert.ok(inner, `${where}: unexpected field ${k}`);
    out[k] = kernelValue(c, inner, id, `${where}.${k}`);
  }
  return out;
}

const SHAPES: Record<(typeof COLUMNS)[number], Shape> = {
  v: 'variant',
  array_of_variants: { array: 'variant' },
  struct_of_variants: { struct: { v: 'variant' } },
  map_of_variants: { map: 'variant' },
  array_of_struct_of_variants: { array: { struct: { v: 'variant' } } },
  struct_of_array_of_variants: { struct: { v: { array: 'variant' } } },
};

/** delta-kernel-rs' expected rows of the latest version (2), from its expected.in. */
async function kernelExpectedRows(): Promise<ExpectedRow[]> {
  const src = await fs.readFile(EXPECTED, 'utf8');
  const lines = [...src.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(`"${m[1] as string}"`) as string);
  const table = lines.filter((l) => l.startsWith('|')).map((l) => l.slice(1, -1).split('|').map((c) => c.trim()));
  const [header, ...data] = table;
  assert.deepEqual(header, ['id', ...COLUMNS]);
  return data.map((cells) => {
    const id = Number(cells[0]);
    const row = { id } as ExpectedRow;
    COLUMNS.forEach((col, n) => {
      row[col] = kernelValue(parseCell(cells[n + 1] as string), SHAPES[col], id, `id ${id} ${col}`);
    });
    return row;
  });
}

/** What the reader produced, as JSON: every string here is a variant's JSON text (map keys aside). */
function plain(v: DeltaValue): Plain {
  if (v === null) return null;
  if (typeof v === 'string') return JSON.parse(v) as Plain;
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), plain(x)]));
  if (v instanceof Uint8Array) throw new Error('no binary values in this table');
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

const byId = (a: { id: number }, b: { id: number }): number => a.id - b.id;

async function readSnapshot(version: number): Promise<{ rows: Row[]; version: number }> {
  const snapshot = await (await DeltaTable.open(UNSHREDDED)).snapshot({ version });
  const rows: Row[] = [];
  for await (const batch of snapshot.rows()) rows.push(...batch);
  return { rows, version: snapshot.version };
}

describe('VARIANT columns of delta-kernel-rs test tables (real Postgres)', function () {
  this.timeout(180_000);
  const db = useTestDatabase('variant_kernel');
  let expectedLatest: ExpectedRow[];
  let expectedV0: ExpectedRow[];

  before(async function () {
    const missing = [UNSHREDDED, EXPECTED, SHREDDED].filter((p) => !existsSync(p));
    if (missing.length > 0) {
      console.warn(`      skipped: ${missing.join(', ')} missing; run scripts/fetch-kernel-tables.sh (or set DELTA_KERNEL_TABLES)`);
      this.skip();
    }
    expectedLatest = (await kernelExpectedRows()).sort(byId);
    // Versions 1 and 2 append ids 0 and 1 again, the same rows (info.txt), so version 0 is
    // the kernel's rows with each id once.
    expectedV0 = expectedLatest.filter((r, n) => n === 0 || expectedLatest[n - 1]?.id !== r.id);
  });

  it('the kernel expectation is the table the query in info.txt describes (102 rows; nulls in arrays, structs, maps)', () => {
    assert.equal(expectedLatest.length, 102);
    assert.deepEqual(expectedV0.map((r) => r.id), Array.from({ length: 100 }, (_, i) => i));
    const key = { key: 7 };
    assert.deepEqual(expectedV0[7], {
      id: 7,
      v: key,
      array_of_variants: [key, null, key, null, key],
      struct_of_variants: { v: key },
      map_of_variants: { '7': key, nullKey: null },
      array_of_struct_of_variants: [{ v: key }, { v: null }, null, { v: key }, null, { v: key }],
      struct_of_array_of_variants: { v: [null, key] },
    });
  });

  it('the snapshot decodes every variant, nested or not, as the kernel expects, with nulls where it has them (versions 0 and 2)', async () => {
    for (const [version, expected] of [[0, expectedV0], [2, expectedLatest]] as const) {
      const { rows } = await readSnapshot(version);
      const got = rows.map((r) => ({ id: Number(r.id), ...Object.fromEntries(COLUMNS.map((c) => [c, plain(r[c] ?? null)])) }) as ExpectedRow).sort(byId);
      assert.equal(got.length, expected.length, `version ${version} row count`);
      got.forEach((row, n) => assert.deepEqual(row, expected[n], `version ${version}, id ${row.id}`));
      // Each top-level variant is JSON text, not SQL NULL, and nested nulls are real nulls.
      for (const r of rows) {
        assert.equal(typeof r.v, 'string');
        assert.equal((r.map_of_variants as Map<DeltaValue, DeltaValue>).get('nullKey'), null);
        assert.ok((r.map_of_variants as Map<DeltaValue, DeltaValue>).has('nullKey'));
      }
    }
  });

  it('the initial load writes each column as jsonb equal to the kernel expectation, nulls as JSON null, the preview prints what Postgres holds, and verify/repair by checksums agree', async () => {
    const mapping = buildMapping({ name: 'kernel-variant', source: UNSHREDDED, target: 'kernel_variant', key: ['id'] });
    const r = await openRunner(mapping, db().url);
    const pool: Pool = createPool(db().url);
    try {
      const preview = await r.runner.preview({ mode: 'initial', toVersion: 0, limit: 1000 });
      const result = await r.runner.run({ mode: 'initial', toVersion: 0 });
      assert.equal(result.status, 'succeeded');
      const types = await pool.query<{ column_name: string; data_type: string }>(
        `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'kernel_variant' ORDER BY ordinal_position`,
      );
      assert.deepEqual(types.rows.filter((t) => t.column_name !== 'id').map((t) => [t.column_name, t.data_type]), COLUMNS.map((c) => [c, 'jsonb']));
      const ids = expectedV0.map((e) => e.id);
      for (const col of COLUMNS) {
        const got = await pool.query<{ id: string; same: boolean; text: string | null; want: string }>(
          `SELECT t.id::text AS id, t.${col} IS NOT DISTINCT FROM w.want::jsonb AS same, t.${col}::text AS text, w.want
             FROM kernel_variant t FULL JOIN unnest($1::bigint[], $2::text[]) AS w(id, want) ON t.id = w.id ORDER BY w.id`,
          [ids, expectedV0.map((e) => JSON.stringify(e[col]))],
        );
        assert.equal(got.rows.length, 100, col);
        for (const row of got.rows) {
          assert.ok(row.same, `${col} of id ${row.id}: Postgres holds ${row.text}, the kernel expects ${row.want}`);
          const shown = preview.rows.find((p) => p.key.id === row.id)?.newRow?.[col];
          assert.equal(shown, row.text, `preview of ${col}, id ${row.id}`);
        }
      }
      // SQL NULL only where the whole value is null; a null inside is a JSON null.
      const nulls = await pool.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM kernel_variant
          WHERE v IS NOT NULL AND jsonb_typeof(v) = 'object'
            AND jsonb_typeof(array_of_variants->1) = 'null' AND jsonb_typeof(array_of_variants->2) = 'object'
            AND map_of_variants ? 'nullKey' AND jsonb_typeof(map_of_variants->'nullKey') = 'null'
            AND jsonb_typeof(array_of_struct_of_variants->1->'v') = 'null' AND jsonb_typeof(array_of_struct_of_variants->2) = 'null'
            AND jsonb_typeof(struct_of_array_of_variants->'v'->0) = 'null'`,
      );
      assert.equal(nulls.rows[0]?.n, '100');

      // The checksum comparison hashes these nested jsonb values alike on both sides: the
      // loaded table equals version 0; a JSON null dropped from a map, a nested null turned
      // into a variant and a struct emptied are found and repaired, and nothing else.
      const verified = await r.runner.verify();
      assert.deepEqual({ equal: verified.equal, differing: verified.differing, missing: verified.missing, extra: verified.extra }, { equal: true, differing: 0, missing: 0, extra: 0 });
      const clean = await r.runner.repair({ toVersion: 0, dryRun: true });
      assert.deepEqual(clean.planned, { insert: 0, update: 0, delete: 0 });
      await pool.query(`UPDATE kernel_variant SET map_of_variants = map_of_variants - 'nullKey' WHERE id = 5`);
      await pool.query(`UPDATE kernel_variant SET array_of_variants = jsonb_set(array_of_variants, '{1}', '{"key": 11}') WHERE id = 11`);
      await pool.query(`UPDATE kernel_variant SET struct_of_array_of_variants = '{}' WHERE id = 42`);
      const repaired = await r.runner.repair({ toVersion: 0 });
      assert.deepEqual(repaired.planned, { insert: 0, update: 3, delete: 0 });
      const after = await pool.query<{ id: string; ok: boolean }>(
        `SELECT t.id::text AS id, t.map_of_variants IS NOT DISTINCT FROM w.m::jsonb AND t.array_of_variants IS NOT DISTINCT FROM w.a::jsonb
                AND t.struct_of_array_of_variants IS NOT DISTINCT FROM w.s::jsonb AS ok
           FROM kernel_variant t JOIN unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS w(id, m, a, s) ON t.id = w.id`,
        [ids, expectedV0.map((e) => JSON.stringify(e.map_of_variants)), expectedV0.map((e) => JSON.stringify(e.array_of_variants)), expectedV0.map((e) => JSON.stringify(e.struct_of_array_of_variants))],
      );
      assert.deepEqual(after.rows.filter((row) => !row.ok).map((row) => row.id), []);
      assert.equal(after.rows.length, 100);
      assert.equal((await r.runner.verify()).equal, true);
      // Versions 1 and 2 append ids 0 and 1 again: a repair to the latest version is refused.
      await assert.rejects(r.runner.repair({}), (e: unknown) => {
        assert.ok(e instanceof SyncError, String(e));
        assert.match(e.message, /^The snapshot of .*unshredded-variant at version 2 holds the key \(id\)=\([01]\) twice/);
        return true;
      });
    } finally {
      await pool.end();
      await r.close();
    }
  });

  it('a shredded-variant table (variantShredding-preview) is refused with the protocol error naming the table, version and feature; nothing is written', async () => {
    const expectMessage = `Table ${SHREDDED} at version 2 uses reader feature "variantShredding-preview": shredded VARIANT columns are not supported by this reader (unshredded variants are).`;
    await assert.rejects((await DeltaTable.open(SHREDDED)).snapshot(), (e: unknown) => {
      assert.ok(e instanceof SyncError, String(e));
      assert.equal(e.kind, 'delta-protocol');
      assert.equal(e.message, expectMessage);
      assert.equal(e.version, 2);
      assert.equal(e.setting, 'variantShredding-preview');
      return true;
    });
    const mapping = buildMapping({ name: 'kernel-shredded', source: SHREDDED, target: 'kernel_shredded', key: ['id'] });
    const r = await openRunner(mapping, db().url);
    try {
      await assert.rejects(r.runner.run({ mode: 'initial' }), (e: unknown) => {
        assert.ok(e instanceof SyncError, String(e));
        assert.equal(e.message, expectMessage);
        return true;
      });
      const exists = await r.pool.query(`SELECT to_regclass('kernel_shredded') AS t`);
      assert.equal(exists.rows[0]?.t, null);
    } finally {
      await r.close();
    }
  });
});

/**
 * parquet-testing's cases -> the JSON the spec's conversion table gives for the value
 * regen.py wrote (Spark SQL, session time zone -04:00 as data_dictionary.json shows) or
 * Iceberg's test code wrote (time, nanosecond timestamps, uuid; parquet-testing PR 92).
 */
const PARQUET_TESTING_JSON: Record<string, string> = {
  primitive_null: 'null',
  primitive_boolean_true: 'true',
  primitive_boolean_false: 'false',
  primitive_int8: '42',
  primitive_int16: '1234',
  primitive_int32: '123456',
  primitive_int64: '1234567890123456789',
  primitive_double: '1234567890.1234',
  primitive_decimal4: '12.34',
  primitive_decimal8: '12345678.90',
  primitive_decimal16: '12345678912345678.90',
  primitive_date: '"2025-04-16"',
  primitive_timestamp: '"2025-04-16T16:34:56.780000+00:00"',
  primitive_timestampntz: '"2025-04-16T12:34:56.780000"',
  // 1234567890.1234::Float is the float32 1234567936; its shortest decimal, with a fraction.
  primitive_float: '1234568000.0',
  // X'31337deadbeefcafe' has 17 hex digits: Spark reads it as 03 13 37 de ad be ef ca fe.
  primitive_binary: JSON.stringify(Buffer.from('031337deadbeefcafe', 'hex').toString('base64')),
  primitive_time: '"12:33:54.123456"',
  primitive_timestamp_nanos: '"2024-11-07T12:33:54.123456789+00:00"',
  primitive_timestampntz_nanos: '"2024-11-07T12:33:54.123456789"',
  primitive_uuid: '"f24f9b64-81fa-49d1-b74e-8c09a6e31c56"',
  short_string: JSON.stringify('Less than 64 bytes (❤️ with utf8)'),
  primitive_string: JSON.stringify(
    'This string is longer than 64 bytes and therefore does not fit in a short_string and it also includes several non ascii characters such as 🐢, 💖, ♥️, 🎣 and 🤦!!',
  ),
  object_empty: '{}',
  array_empty: '[]',
  array_primitive: '[2,1,5,9]',
  object_primitive:
    '{"boolean_false_field":false,"boolean_true_field":true,"double_field":1.23456789,"int_field":1,"null_field":null,"string_field":"Apache Parquet","timestamp_field":"2025-04-16T12:34:56.78"}',
  object_nested:
    '{"id":1,"observation":{"location":"In the Volcano","time":"12:34:56","value":{"humidity":456,"temperature":123}},"species":{"name":"lava monster","population":6789}}',
  array_nested: '[{"id":1,"thing":{"names":["Contrarian","Spider"]}},null,{"id":2,"names":["Apple","Ray",null],"type":"if"}]',
};

/**
 * Whether `ours` (spec JSON) and data_dictionary.json's `theirs` are the same value: that file
 * prints decimals and floats as Python floats, timestamps with a space and the session offset,
 * and time as HH:MM:SS:ffffff.
 */
function sameAsDictionary(ours: unknown, theirs: unknown, single: boolean): boolean {
  if (typeof ours === 'number' && typeof theirs === 'number') return single ? Math.fround(ours) === Math.fround(theirs) : ours === theirs;
  if (typeof ours === 'string' && typeof theirs === 'string') {
    if (ours === theirs) return true;
    const instant = (s: string): number => Date.parse(s.replace(' ', 'T').replace(/(\.\d{3})\d+/, '$1'));
    if (/^\d{4}-\d\d-\d\d[ T]/.test(theirs) && /[+-]\d\d:\d\d$/.test(theirs)) return instant(ours) === instant(theirs);
    if (/^\d{4}-\d\d-\d\d /.test(theirs)) return instant(`${ours}Z`) === instant(`${theirs}Z`);
    return ours === theirs.replace(/^(\d\d:\d\d:\d\d):/, '$1.');
  }
  if (Array.isArray(ours) && Array.isArray(theirs)) return ours.length === theirs.length && ours.every((o, n) => sameAsDictionary(o, theirs[n], single));
  if (ours && theirs && typeof ours === 'object' && typeof theirs === 'object') {
    const a = Object.entries(ours);
    const b = theirs as Record<string, unknown>;
    return a.length === Object.keys(b).length && a.every(([k, v]) => k in b && sameAsDictionary(v, b[k], single));
  }
  return ours === theirs;
}

describe('variant values Spark and Iceberg encoded (apache/parquet-testing variant binaries; real Postgres)', function () {
  this.timeout(60_000);
  const db = useTestDatabase('variant_parquet_testing');
  let dictionary: Record<string, unknown>;

  before(async function () {
    if (!existsSync(PARQUET_TESTING)) {
      console.warn(`      skipped: ${PARQUET_TESTING} missing; run scripts/fetch-kernel-tables.sh (or set DELTA_KERNEL_TABLES)`);
      this.skip();
    }
    // The file ends its last entry with a comma, which JSON does not allow.
    const text = await fs.readFile(path.join(PARQUET_TESTING, 'data_dictionary.json'), 'utf8');
    dictionary = JSON.parse(text.replace(/,(\s*})\s*$/, '$1')) as Record<string, unknown>;
  });

  it('every primitive type (decimals with their scale, dates, timestamps, nanos, time, float, uuid), object and array decodes to the spec\'s JSON, which jsonb keeps', async () => {
    const cases = Object.keys(PARQUET_TESTING_JSON);
    // Every case of the folder is listed here (but long_string, which neither regen.py nor
    // data_dictionary.json describes), and each agrees with data_dictionary.json.
    const files = (await fs.readdir(PARQUET_TESTING)).filter((f) => f.endsWith('.value')).map((f) => f.slice(0, -'.value'.length));
    assert.deepEqual([...files].sort(), [...cases, 'long_string'].sort());
    const decoded: string[] = [];
    for (const name of cases) {
      const want = PARQUET_TESTING_JSON[name] as string;
      assert.ok(name in dictionary, `${name} is in data_dictionary.json`);
      assert.ok(sameAsDictionary(JSON.parse(want), dictionary[name], name === 'primitive_float'), `${name}: ${want} vs data_dictionary ${JSON.stringify(dictionary[name])}`);
      const [m, v] = await Promise.all(['metadata', 'value'].map((part) => fs.readFile(path.join(PARQUET_TESTING, `${name}.${part}`))));
      const got = variantToJson(m as Buffer, v as Buffer);
      assert.equal(got, want, name);
      decoded.push(got);
    }
    // jsonb keeps each as the spec's JSON: equal values, and the decimals' trailing zeros.
    const pool = createPool(db().url);
    try {
      const r = await pool.query<{ n: string; same: boolean; text: string }>(
        `SELECT n::text, g::jsonb = w::jsonb AS same, coalesce(jsonb_typeof(g::jsonb), 'SQL NULL') || ' ' || g::jsonb::text AS text
           FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(g, w, n)`,
        [decoded, cases.map((c) => PARQUET_TESTING_JSON[c])],
      );
      for (const row of r.rows) assert.ok(row.same, `${cases[Number(row.n) - 1]}: ${row.text}`);
      const byCase = new Map(r.rows.map((row) => [cases[Number(row.n) - 1], row.text]));
      assert.equal(byCase.get('primitive_decimal16'), 'number 12345678912345678.90');
      assert.equal(byCase.get('primitive_decimal8'), 'number 12345678.90');
      assert.equal(byCase.get('primitive_float'), 'number 1234568000.0');
      // A variant null is a JSON null in the column, not SQL NULL.
      assert.equal(byCase.get('primitive_null'), 'null null');
    } finally {
      await pool.end();
    }
  });
});
