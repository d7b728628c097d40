import assert from 'node:assert/strict';
import * as path from 'node:path';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import type { MappingOverrides } from '../builders/mappings';
import { long, string, timestamp } from '../builders/deltaFields';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';

/**
 * Issue 11, dirty data: data that cannot be applied faithfully is refused with an error
 * naming what is at fault, never applied silently; opt-in policies are documented settings.
 */

const COLS: WriterColumn[] = [
  { name: 'id', type: long(), nullable: false },
  { name: 'name', type: string() },
];

const row = (id: number, name = `n${id}`): Row => ({ id: BigInt(id), name });

async function newTable(dir: string, name: string): Promise<DeltaTableWriter> {
  const w = await DeltaTableWriter.create(path.join(dir, name), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
  await w.append([row(1), row(2)]); // v1
  return w;
}

describe('dirty data is refused, never applied silently (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('sync_dirty');
  let dir: string;

  before(async () => {
    dir = await tempDir();
  });

  async function targetRows(url: string, table: string): Promise<Array<{ id: string; name: string }>> {
    const pg = await import('pg');
    const c = new pg.default.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query(`SELECT id::text AS id, name FROM ${table} ORDER BY id, name`)).rows;
    } finally {
      await c.end();
    }
  }

  describe('duplicate keys within one version', () => {
    for (const parts of [false, true]) {
      it(`are refused by default with the version, the keys and how many; nothing is applied${parts ? ' (a version applied in parts)' : ''}`, async () => {
        const name = parts ? 'dup_parts' : 'dup_keys';
        const w = await newTable(dir, name);
        const extra: MappingOverrides = parts ? { batch: { maxRows: 3 } } : {};
        const m = buildMapping({ name: name.replace('_', '-'), source: w.path, target: name, key: ['id'], ...extra });
        const r = await openRunner(m, db().url);
        try {
          await r.runner.run({ mode: 'initial' });
          // v2: key 3 twice and key 5 twice (in parts mode they fall in different parts).
          await w.append(parts ? [row(3, 'a'), row(4), row(5, 'a'), row(6), row(7), row(3, 'b'), row(8), row(5, 'b')] : [row(3, 'a'), row(3, 'b'), row(5, 'a'), row(5, 'b')]);
          const err = await expectSyncError(r.runner.run({}), { kind: 'mapping', version: 2, setting: 'duplicateKeys', table: w.path, hint: /"duplicateKeys": "last-wins"/ });
          assert.match(err.message, /2 rows repeat a key/);
          assert.match(err.message, /version 2: id=3; id=5/);
          assert.equal((await r.runner.status()).checkpoint?.version, 1n);
          assert.deepEqual(await targetRows(db().url, name), [{ id: '1', name: 'n1' }, { id: '2', name: 'n2' }]);
        } finally {
          await r.close();
        }
      });
    }

    it('more duplicates than shown are counted', async () => {
      const w = await newTable(dir, 'dup_many');
      const m = buildMapping({ name: 'dup-many', source: w.path, target: 'dup_many', key: ['id'] });
      const r = await openRunner(m, db().url);
      try {
        await r.runner.run({ mode: 'initial' });
        const rows: Row[] = [];
        for (let i = 10; i < 18; i++) rows.push(row(i, 'a'), row(i, 'b'));
        await w.append(rows); // v2
        const err = await expectSyncError(r.runner.run({}), { kind: 'mapping', version: 2, setting: 'duplicateKeys' });
        assert.match(err.message, /8 rows repeat a key/);
        assert.match(err.message, /id=10; id=11; id=12; id=13; id=14 and 3 more/);
      } finally {
        await r.close();
      }
    });

    it('the hint works: with "duplicateKeys": "last-wins" the version is applied, one row per key', async () => {
      const w = await newTable(dir, 'dup_last');
      const m = buildMapping({ name: 'dup-last', source: w.path, target: 'dup_last', key: ['id'], duplicateKeys: 'last-wins' });
      const r = await openRunner(m, db().url);
      try {
        await r.runner.run({ mode: 'initial' });
        await w.append([row(3, 'a'), row(3, 'b')]); // v2
        const res = await r.runner.run({});
        assert.equal(res.toVersion, 2);
        const rows = await targetRows(db().url, 'dup_last');
        assert.deepEqual(rows.map((x) => x.id), ['1', '2', '3']);
      } finally {
        await r.close();
      }
    });
  });

  describe('text that is not valid UTF-8', () => {
    const BAD = new Uint8Array([0xff, 0xfe, 0x41]);

    it('is refused by an incremental sync, naming the file, column, row, key and version; nothing is applied', async () => {
      const w = await newTable(dir, 'utf8_cdf');
      const m = buildMapping({ name: 'utf8-cdf', source: w.path, target: 'utf8_cdf', key: ['id'] });
      const r = await openRunner(m, db().url);
      try {
        await r.runner.run({ mode: 'initial' });
        await w.append([row(3), { id: 4n, name: BAD }, row(5)]); // v2
        const err = await expectSyncError(r.runner.run({}), { kind: 'delta-file', version: 2, column: 'name', setting: 'invalidUtf8', table: w.path, hint: /"invalidUtf8": "replace"/ });
        assert.match(err.message, /\.parquet \(version 2\): column 'name' at row 2 of the file \(key id=4\) holds text that is not valid UTF-8 \(bytes ff fe 41\)/);
        assert.equal((await r.runner.status()).checkpoint?.version, 1n);
        assert.deepEqual(await targetRows(db().url, 'utf8_cdf'), [{ id: '1', name: 'n1' }, { id: '2', name: 'n2' }]);
      } finally {
        await r.close();
      }
    });

    it('is refused among long values too (lengths of 128 bytes and more), and long valid text passes', async () => {
      const w = await newTable(dir, 'utf8_long');
      const m = buildMapping({ name: 'utf8-long', source: w.path, target: 'utf8_long', key: ['id'] });
      const r = await openRunner(m, db().url);
      try {
        await r.runner.run({ mode: 'initial' });
        const long = 'Zürich '.repeat(40);
        await w.append([row(3, long), row(4, `${long}!`)]); // v2: valid
        await r.runner.run({});
        assert.deepEqual((await targetRows(db().url, 'utf8_long')).slice(2), [{ id: '3', name: long }, { id: '4', name: `${long}!` }]);
        const tail = new Uint8Array(300).fill(0x61);
        tail[299] = 0xc3; // a lead byte with nothing after it
        await w.append([row(5, long), { id: 6n, name: tail }, row(7, `${long}?`)]); // v3
        const err = await expectSyncError(r.runner.run({}), { kind: 'delta-file', version: 3, column: 'name', setting: 'invalidUtf8' });
        assert.match(err.message, /row 2 of the file \(key id=6\)/);
        assert.equal((await r.runner.status()).checkpoint?.version, 2n);
      } finally {
        await r.close();
      }
    });

    it('is refused in a dictionary-encoded column too', async () => {
      const w = await newTable(dir, 'utf8_dict');
      const m = buildMapping({ name: 'utf8-dict', source: w.path, target: 'utf8_dict', key: ['id'] });
      const r = await openRunner(m, db().url);
      try {
        await r.runner.run({ mode: 'initial' });
        const rows: Row[] = [];
        for (let i = 10; i < 400; i++) rows.push(row(i, i === 300 ? (BAD as unknown as string) : `same ${i % 3}`));
        await w.append(rows); // v2: few distinct values, so the writer uses a dictionary
        const err = await expectSyncError(r.runner.run({}), { kind: 'delta-file', version: 2, column: 'name', setting: 'invalidUtf8' });
        assert.match(err.message, /row 291 of the file \(key id=300\)/);
        assert.equal((await r.runner.status()).checkpoint?.version, 1n);
      } finally {
        await r.close();
      }
    });

    it('is refused by an initial load, naming the file, column and row', async () => {
      const w = await newTable(dir, 'utf8_initial');
      await w.append([row(3), { id: 4n, name: BAD }]); // v2
      const m = buildMapping({ name: 'utf8-initial', source: w.path, target: 'utf8_initial', key: ['id'] });
      const r = await openRunner(m, db().url);
      try {
        const err = await expectSyncError(r.runner.run({ mode: 'initial' }), { kind: 'delta-file', column: 'name', setting: 'invalidUtf8' });
        assert.match(err.message, /column 'name' at row 2 of the file/);
      } finally {
        await r.close();
      }
    });

    it('the hint works: with "invalidUtf8": "replace" the bad bytes are read as U+FFFD', async () => {
      const w = await newTable(dir, 'utf8_replace');
      const m = buildMapping({ name: 'utf8-replace', source: w.path, target: 'utf8_replace', key: ['id'], invalidUtf8: 'replace' });
      const r = await openRunner(m, db().url);
      try {
        await r.runner.run({ mode: 'initial' });
        await w.append([{ id: 4n, name: BAD }]); // v2
        await r.runner.run({});
        const rows = await targetRows(db().url, 'utf8_replace');
        assert.deepEqual(rows[2], { id: '4', name: '\uFFFD\uFFFDA' });
      } finally {
        await r.close();
      }
    });

    it('genuine U+FFFD text is not mistaken for invalid bytes', async () => {
      const w = await newTable(dir, 'utf8_genuine');
      const m = buildMapping({ name: 'utf8-genuine', source: w.path, target: 'utf8_genuine', key: ['id'] });
      const r = await openRunner(m, db().url);
      try {
        await r.runner.run({ mode: 'initial' });
        await w.append([row(4, 'a\uFFFDb')]); // v2
        await r.runner.run({});
        assert.deepEqual((await targetRows(db().url, 'utf8_genuine'))[2], { id: '4', name: 'a\uFFFDb' });
      } finally {
        await r.close();
      }
    });
  });

  describe('a timestamp Postgres cannot store', () => {
    const TS_COLS: WriterColumn[] = [...COLS, { name: 'at', type: timestamp() }];
    // About 7500 BC: a valid Delta timestamp, before the earliest Postgres can store (4713 BC).
    const TOO_EARLY = -300_000_000_000_000_000n;

    for (const thread of ['worker', 'main'] as const) {
      it(`names the column, value, key, table and version (read on the ${thread} thread)`, async () => {
        const name = `ts_${thread}`;
        const w = await DeltaTableWriter.create(path.join(dir, name), { columns: TS_COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
        await w.append([{ ...row(1), at: 0n }]); // v1
        const m = buildMapping({ name: `ts-${thread}`, source: w.path, target: name, key: ['id'] });
        const r = await openRunner(m, db().url);
        const before = process.env.DELTA_NEON_SYNC_READ_THREAD;
        process.env.DELTA_NEON_SYNC_READ_THREAD = thread; // 'worker' even for small reads
        try {
          await r.runner.run({ mode: 'initial' });
          await w.append([{ ...row(2), at: 1n }, { ...row(3), at: TOO_EARLY }]); // v2
          const err = await expectSyncError(r.runner.run({}), { kind: 'target', column: 'at', table: w.path, version: 2 });
          assert.match(err.message, new RegExp(`timestamp ${TOO_EARLY}`));
          assert.match(err.message, /row with key id=3/);
          assert.match(err.message, /version 2\b/);
          assert.equal((await r.runner.status()).checkpoint?.version, 1n);
        } finally {
          if (before === undefined) delete process.env.DELTA_NEON_SYNC_READ_THREAD;
          else process.env.DELTA_NEON_SYNC_READ_THREAD = before;
          await r.close();
        }
      });
    }
  });
});
