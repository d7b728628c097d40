import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import pg from 'pg';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import type { Mapping } from '../../src/sync/mapping/mappingSchema';
import { createPool } from '../../src/sync/postgres/createPool';
import { openSource } from '../../src/sync/open/openSource';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
import { mappingTarget } from '../../src/sync/open/openTarget';
import { boolean, decimal, double, integer, long, string, timestamp } from '../builders/deltaFields';
import { buildMapping, mappingInput } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { getTestServer, passwordRole, useTestDatabase } from '../helpers/postgres';
import { buildCli, openRunner, runCli, tempDir, writeMappingFile } from '../helpers/syncHarness';
import type { OpenedRunner } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';
import type { ComparedColumn } from '../helpers/targetEquality';

/**
 * Acceptance 5: faults end with errors that name the table / version / column / setting and
 * carry a hint, and the documented recovery works.
 */

const COLS: WriterColumn[] = [
  { name: 'id', type: long(), nullable: false },
  { name: 'name', type: string() },
  { name: 'amount', type: decimal(12, 3) },
];

function item(i: number, suffix = ''): Row {
  return { id: BigInt(i), name: `item ${i}${suffix}`, amount: `${i}.${String(i % 1000).padStart(3, '0')}` };
}
function items(a: number, b: number, suffix = ''): Row[] {
  const out: Row[] = [];
  for (let i = a; i <= b; i++) out.push(item(i, suffix));
  return out;
}

async function newTable(dir: string, name: string): Promise<DeltaTableWriter> {
  const w = await DeltaTableWriter.create(path.join(dir, name), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
  await w.append(items(1, 50)); // v1
  return w;
}

describe('sync faults give clear errors and recover (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('sync_faults');
  let dir: string;

  before(async () => {
    dir = await tempDir();
  });

  it('a CDF range whose log was cleaned up and files vacuumed names the version and says to run a new initial load; --mode initial recovers', async () => {
    const w = await newTable(dir, 'vacuumed');
    const m = buildMapping({ name: 'vacuumed', source: w.path, target: 'vacuumed', key: ['id'] });
    const r = await openRunner(m, db().url);
    try {
      await r.runner.run({ mode: 'initial', toVersion: 1 });
      await w.update('id', items(1, 10, ' v2')); // v2
      await w.update('id', items(11, 20, ' v3')); // v3
      await w.checkpoint();
      const expired = await w.expireLog();
      assert.ok(expired.includes('00000000000000000002.json'), `v2's commit is gone: ${expired.join(', ')}`);
      await w.vacuum();
      // Names version 2; the hint says to run a new initial load.
      await expectSyncError(r.runner.run({}), { kind: ['cdf-range', 'delta-log', 'time-travel'], message: /\b2\b/, hint: /initial/i });
      // The failed run is recorded, the checkpoint did not move.
      const st = await r.runner.status();
      assert.equal(st.checkpoint?.version, 1n);
      assert.equal(st.runs[0]?.status, 'failed');
      const again = await r.runner.run({ mode: 'initial' });
      assert.equal(again.toVersion, 3);
      await assertTargetEquals(db().url, { schema: 'public', name: 'vacuumed' }, w.path, 3, { key: ['id'] });
    } finally {
      await r.close();
    }
  });

  describe('schema drift: a new column appears in a later version', () => {
    let w: DeltaTableWriter;
    before(async () => {
      w = await newTable(dir, 'drift');
      for (const policy of ['fail', 'add-columns', 'ignore-new'] as const) {
        const r = await runner(policy);
        await r.runner.run({ mode: 'initial', toVersion: 1 });
        await r.close();
      }
      await w.addColumns([{ name: 'score', type: double() }]); // v2
      await w.append(items(51, 60).map((x, i) => ({ ...x, score: i / 4 }))); // v3
    });

    const runner = async (policy: 'fail' | 'add-columns' | 'ignore-new'): Promise<OpenedRunner> => {
      const m = buildMapping({ name: `drift-${policy}`, source: w.path, target: `drift_${policy.replace('-', '_')}`, key: ['id'], schemaDrift: policy });
      return openRunner(m, db().url);
    };

    it('policy fail: the error names the new column, the versions and the schemaDrift setting, with a hint; nothing is applied', async () => {
      const r = await runner('fail');
      try {
        const err = await expectSyncError(r.runner.run({}), { kind: 'schema-drift', column: 'score', setting: 'schemaDrift', message: /"score"/, hint: /add-columns/ });
        assert.match(err.message, /versions 2 and 3/);
        assert.equal((await r.runner.status()).checkpoint?.version, 1n);
        await assertTargetEquals(db().url, { schema: 'public', name: 'drift_fail' }, w.path, 1, { key: ['id'] });
      } finally {
        await r.close();
      }
    });

    it('policy add-columns: the column is added to the target and filled; the target equals the snapshot with it', async () => {
      const r = await runner('add-columns');
      try {
        const res = await r.runner.run({});
        assert.ok(res.warnings.some((x) => /Added column\(s\) "score"/.test(x)), JSON.stringify(res.warnings));
        await assertTargetEquals(db().url, { schema: 'public', name: 'drift_add_columns' }, w.path, 3, { key: ['id'] });
        const filled = await r.pool.query(`SELECT count(*)::int AS n FROM drift_add_columns WHERE score IS NOT NULL`);
        assert.equal(filled.rows[0].n, 10);
      } finally {
        await r.close();
      }
    });

    it('policy ignore-new: the column is skipped with a warning; the other columns equal the snapshot', async () => {
      const r = await runner('ignore-new');
      try {
        const res = await r.runner.run({});
        assert.ok(res.warnings.some((x) => /Ignoring new source column\(s\) "score"/.test(x)), JSON.stringify(res.warnings));
        const cols: ComparedColumn[] = COLS.map((c) => ({ source: c.name, target: c.name, type: c.type }));
        await assertTargetEquals(db().url, { schema: 'public', name: 'drift_ignore_new' }, w.path, 3, { key: ['id'], columns: cols });
        const has = await r.pool.query(`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'drift_ignore_new' AND column_name = 'score'`);
        assert.equal(has.rows[0].n, 0);
      } finally {
        await r.close();
      }
    });
  });

  it('a corrupt line in a commit file fails the sync naming the table and version, with a hint; the checkpoint stays', async () => {
    const w = await newTable(dir, 'corrupt');
    const m = buildMapping({ name: 'corrupt', source: w.path, target: 'corrupt', key: ['id'] });
    const r = await openRunner(m, db().url);
    try {
      await r.runner.run({ mode: 'initial' });
      const v = await w.append(items(51, 60)); // v2
      await fs.appendFile(path.join(w.path, '_delta_log', `${String(v).padStart(20, '0')}.json`), '{"add":{"path":"part-x.parquet","partitionValues":{\n');
      const err = await expectSyncError(r.runner.run({}), { kind: 'delta-log', message: new RegExp(`\\b${v}\\b|${String(v).padStart(20, '0')}`), hint: true });
      assert.ok(err.message.includes('corrupt') || (err.table ?? '').includes('corrupt'), `names the table: ${err.message}`);
      assert.equal((await r.runner.status().catch(() => undefined))?.checkpoint?.version ?? 1n, 1n);
      await assertTargetEquals(db().url, { schema: 'public', name: 'corrupt' }, w.path, 1, { key: ['id'] });
    } finally {
      await r.close();
    }
  });

  it('a wrong password fails with kind auth, names the server and user, and never echoes the password', async function () {
    const server = await getTestServer();
    if (server.kind === 'external') this.skip();
    await passwordRole(server);
    const u = new URL(db().url);
    u.username = 'dns_pw_user';
    u.password = 'Wr0ng-S3cret';
    const w = await newTable(dir, 'auth');
    const m = buildMapping({ name: 'auth', source: w.path, target: { connection: '${env:DNS_BAD_URL}', table: 'auth' }, key: ['id'] });
    const pool = createPool(u.toString());
    try {
      const runner = new SyncRunner(m, await openSource(m.source), mappingTarget(pool, m.target));
      const err = await expectSyncError(runner.run({ maxAttempts: 2, backoffMs: 10 }), { kind: 'auth', message: /dns_pw_user/, setting: 'target.connection', hint: /target\.connection of the mapping/ });
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${u.port}`));
      assert.doesNotMatch(err.describe(), /Wr0ng-S3cret/);
    } finally {
      await pool.end();
    }
    // The CLI says the same on stderr, exit 1, without the password.
    await buildCli();
    const out = await runCli(['status', '--source', w.path, '--target', '${env:DNS_BAD_URL}', '--table', 'public.auth', '--key', 'id'], { DNS_BAD_URL: u.toString() });
    assert.equal(out.code, 1);
    assert.match(out.stderr, /dns_pw_user/);
    assert.match(out.stderr, /Hint:/);
    assert.doesNotMatch(out.stdout + out.stderr, /Wr0ng-S3cret/);
  });

  it('hostile identifiers in Delta column names and in the target schema and table are synced end to end (initial + incremental + preview)', async () => {
    const hostile: WriterColumn[] = [
      { name: 'id', type: long(), nullable: false },
      { name: 'we"ird col', type: string() },
      { name: 'semi;colon--', type: integer() },
      { name: 'ünï©ødé 名前', type: string() },
      { name: 'select', type: boolean() },
      { name: 'Mixed Case', type: timestamp() },
      { name: "back\\slash'quote", type: decimal(9, 2) },
    ];
    const row = (i: number, tag = ''): Row => ({
      id: BigInt(i),
      'we"ird col': `va"l'ue ${i}${tag}`,
      'semi;colon--': i * 7,
      'ünï©ødé 名前': `名前 ${i}\ttab`,
      select: i % 2 === 0,
      'Mixed Case': 1_700_000_000_000_000n + BigInt(i) * 1_000_001n,
      "back\\slash'quote": `${i}.5${i % 10}`,
    });
    const w = await DeltaTableWriter.create(path.join(dir, 'hostile'), { columns: hostile, configuration: { 'delta.enableChangeDataFeed': 'true' } });
    await w.append(Array.from({ length: 40 }, (_, i) => row(i + 1)));
    const table = { schema: 'sch ema', name: 'we"ird; DROP TABLE x;--' };
    // The mapping file refuses such a target name (plain identifiers only, on purpose)...
    expectSyncError(() => buildMapping({ name: 'hostile', source: w.path, target: { schema: table.schema, table: table.name }, key: ['id'] }), { message: /target\.(table|schema)/ });
    // ...but the engine quotes everything, so drive it with a mapping built in code.
    const base = buildMapping({ name: 'hostile', source: w.path, target: 'placeholder', key: ['id'] });
    const m: Mapping = { ...base, target: { ...base.target, schema: table.schema, table: table.name } };
    await (async () => {
      const c = new pg.Client({ connectionString: db().url });
      await c.connect();
      await c.query(`CREATE SCHEMA IF NOT EXISTS "sch ema"`);
      await c.query(`CREATE TABLE IF NOT EXISTS x (n int)`);
      await c.end();
    })();
    const pool = createPool(db().url);
    try {
      const runner = new SyncRunner(m, await openSource(m.source), mappingTarget(pool, m.target));
      await runner.run({ mode: 'initial' });
      await assertTargetEquals(db().url, table, w.path, 1, { key: ['id'] });
      await w.update('id', [row(3, ' upd'), row(4, ' upd')]);
      await w.delete('id', [5n, 6n]);
      await w.append([row(41), row(42)]);
      const pv = await runner.preview({ limit: 100 });
      assert.deepEqual({ i: pv.totals.insert, u: pv.totals.update, d: pv.totals.delete }, { i: 2, u: 2, d: 2 });
      assert.ok(pv.rows.find((x) => x.action === 'update')?.changes?.some((ch) => ch.column === 'we"ird col'));
      const res = await runner.run({});
      assert.deepEqual({ i: res.inserted, u: res.updated, d: res.deleted }, { i: 2, u: 2, d: 2 });
      await assertTargetEquals(db().url, table, w.path, w.version, { key: ['id'] });
      assert.equal((await runner.verify()).equal, true);
      const x = await pool.query(`SELECT to_regclass('public.x')::text AS t`);
      assert.equal(x.rows[0].t, 'x', 'table x survived');
    } finally {
      await pool.end();
    }
  });

  it('a mapping file that tries SQL injection through columns.types is refused, naming the setting; nothing is created', async () => {
    await buildCli();
    const pre = new pg.Client({ connectionString: db().url });
    await pre.connect();
    await pre.query(`CREATE TABLE IF NOT EXISTS x (n int)`);
    await pre.end();
    const w = await newTable(dir, 'inject');
    const file = await writeMappingFile(
      dir,
      'inject',
      mappingInput({ name: 'inject', source: w.path, target: { connection: db().url, table: 'inject' }, key: ['id'], columns: { types: { name: 'text); DROP TABLE x; --' } } }),
    );
    const out = await runCli(['sync', '--mapping', file]);
    assert.equal(out.code, 1);
    assert.match(out.stderr, /columns\.types\.name/);
    const t = await (async () => {
      const c = new pg.Client({ connectionString: db().url });
      await c.connect();
      try {
        return (await c.query(`SELECT to_regclass('public.inject')::text AS t, to_regclass('public.x')::text AS x`)).rows[0];
      } finally {
        await c.end();
      }
    })();
    assert.deepEqual(t, { t: null, x: 'x' });
  });
});
