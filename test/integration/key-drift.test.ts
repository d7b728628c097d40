import assert from 'node:assert/strict';
import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import type { SchemaDriftPolicy } from '../../src/sync/mapping/mappingSchema';
import { useTestDatabase } from '../helpers/postgres';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { openRunner, tempDir } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';

/**
 * A change of the mapping's key column between the checkpoint and the end version (removed,
 * renamed, retyped, even to a type the Postgres column still holds) is refused under EVERY
 * schemaDrift policy, with an error naming the table, the version and the key column;
 * nothing is applied and the checkpoint stays. Multi-version tables from the fixture writer,
 * real Postgres.
 */

const INT: WriterColumn['type'] = { kind: 'primitive', name: 'integer' };
const LONG: WriterColumn['type'] = { kind: 'primitive', name: 'long' };
const STRING: WriterColumn['type'] = { kind: 'primitive', name: 'string' };

const COLS: WriterColumn[] = [
  { name: 'id', type: INT, nullable: false },
  { name: 'name', type: STRING },
];

function items(a: number, b: number): Row[] {
  const out: Row[] = [];
  for (let i = a; i <= b; i++) out.push({ id: i, name: `item ${i}` });
  return out;
}

interface KeyChangeCase {
  title: string;
  /** The v2 schema and a v3 row in it. */
  columns: WriterColumn[];
  row: Row;
  message: RegExp;
  /** columns.types for the mapping (so a retype can still fit the Postgres column). */
  types?: Record<string, string>;
  /** The hint's fix works here: an initial load at the end version (old files still read under the new schema). */
  reload?: boolean;
}

const CASES: KeyChangeCase[] = [
  {
    title: 'removed',
    columns: [{ name: 'name', type: STRING }, { name: 'ref', type: LONG }],
    row: { name: 'item 31', ref: 31n },
    message: /key column "id" was removed/,
  },
  {
    title: 'renamed (id -> item_id, no column mapping)',
    columns: [{ name: 'item_id', type: INT, nullable: false }, { name: 'name', type: STRING }],
    row: { item_id: 31, name: 'item 31' },
    message: /key column "id" was removed/,
  },
  {
    title: 'retyped to a type Postgres cannot hold (integer -> string)',
    columns: [{ name: 'id', type: STRING, nullable: false }, { name: 'name', type: STRING }],
    row: { id: 'x31', name: 'item 31' },
    message: /key column "id" changed from integer not null to string not null/,
  },
  {
    title: 'widened to a type the bigint Postgres column still holds (integer -> long, columns.types id: bigint)',
    columns: [{ name: 'id', type: LONG, nullable: false }, { name: 'name', type: STRING }],
    row: { id: 31n, name: 'item 31' },
    message: /key column "id" changed from integer not null to long not null/,
    types: { id: 'bigint' },
    reload: true,
  },
  {
    title: 'made nullable',
    columns: [{ name: 'id', type: INT, nullable: true }, { name: 'name', type: STRING }],
    row: { id: 31, name: 'item 31' },
    message: /key column "id" changed from integer not null to integer\./,
    reload: true,
  },
];

describe('key-changed drift is refused under every schemaDrift policy (fixture-writer tables, real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('key_drift');
  let dir: string;

  before(async () => {
    dir = await tempDir();
  });

  CASES.forEach((c, i) => {
    for (const policy of ['fail', 'add-columns', 'ignore-new'] as const satisfies readonly SchemaDriftPolicy[]) {
      it(`key column ${c.title}, schemaDrift ${policy}: refused naming table, version and key column; nothing applied`, async () => {
        const table = `key${i}_${policy.replace('-', '_')}`;
        const w = await DeltaTableWriter.create(path.join(dir, table), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
        await w.append(items(1, 30)); // v1
        const m = buildMapping({ name: table, source: w.path, target: { table }, key: ['id'], schemaDrift: policy, ...(c.types ? { columns: { types: c.types } } : {}) });
        const r = await openRunner(m, db().url);
        try {
          assert.equal((await r.runner.run({})).toVersion, 1);
          await w.replaceSchema(c.columns); // v2
          await w.append([c.row]); // v3
          // The read-only views of the pending range say the same before any run does.
          if (i === 0) {
            await expectSyncError(r.runner.preview({}), { kind: 'schema-drift', column: 'id', version: 3, setting: 'key', message: c.message });
            await expectSyncError(r.runner.dryRun({}), { kind: 'schema-drift', column: 'id', version: 3, setting: 'key', message: c.message });
          }
          const err = await expectSyncError(r.runner.run({}), { kind: 'schema-drift', column: 'id', version: 3, setting: 'key', retry: 'manual', message: c.message, hint: /initial load/ });
          assert.equal(err.table, w.path);
          assert.ok(err.message.includes(w.path), err.message);
          assert.match(err.message, /between version 2 and version 3/);
          assert.match(err.message, new RegExp(`schemaDrift '${policy}' does not apply to key columns`));
          assert.equal((await r.runner.status()).checkpoint?.version, 1n);
          await assertTargetEquals(db().url, { schema: 'public', name: table }, w.path, 1, { key: ['id'] });
          if (c.reload) {
            // The hint: run the initial load again; the target is rebuilt at the end version.
            assert.equal((await r.runner.run({ mode: 'initial' })).toVersion, 3);
            await assertTargetEquals(db().url, { schema: 'public', name: table }, w.path, 3, { key: ['id'] });
          }
        } finally {
          await r.close();
        }
      });
    }
  });

  it('a change of a non-key column beside an unchanged key still follows the drift rules (removed column: schemaDrift, not key)', async () => {
    const table = 'key_other_removed';
    const w = await DeltaTableWriter.create(path.join(dir, table), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(items(1, 30)); // v1
    const m = buildMapping({ name: table, source: w.path, target: { table }, key: ['id'], schemaDrift: 'add-columns' });
    const r = await openRunner(m, db().url);
    try {
      await r.runner.run({});
      await w.replaceSchema([COLS[0]!]); // v2
      await w.append([{ id: 31 }]); // v3
      await expectSyncError(r.runner.run({}), { kind: 'schema-drift', column: 'name', setting: 'schemaDrift', message: /removed "name"/ });
    } finally {
      await r.close();
    }
  });
});
