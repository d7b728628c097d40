import assert from 'node:assert/strict';
import * as path from 'node:path';
import pg from 'pg';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import type { WriterColumn } from '../../src/fixtures/DeltaTableWriter';
import type { Row } from '../../src/sync/delta/types';
import type { SyncEvent } from '../../src/sync/ports/events';
import { useTestDatabase } from '../helpers/postgres';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { openRunner, tempDir } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';

/**
 * The engine's house seen from outside: phases are emitted as a run passes them, the
 * engine computes each pipeline's state (views show it as is), and the one drift detector
 * refuses removed and retyped columns instead of syncing them silently.
 */

const COLS: WriterColumn[] = [
  { name: 'id', type: { kind: 'primitive', name: 'long' }, nullable: false },
  { name: 'name', type: { kind: 'primitive', name: 'string' } },
  { name: 'amount', type: { kind: 'decimal', precision: 10, scale: 2 } },
];

function items(a: number, b: number, suffix = ''): Row[] {
  const out: Row[] = [];
  for (let i = a; i <= b; i++) out.push({ id: BigInt(i), name: `item ${i}${suffix}`, amount: `${i}.25` });
  return out;
}

async function newTable(dir: string, name: string): Promise<DeltaTableWriter> {
  const w = await DeltaTableWriter.create(path.join(dir, name), { columns: COLS, configuration: { 'delta.enableChangeDataFeed': 'true' } });
  await w.append(items(1, 30)); // v1
  return w;
}

function phases(events: readonly SyncEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'phase' ? [e.phase] : []));
}

describe('phases as data, pipeline state and schema drift (real server)', function () {
  this.timeout(120_000);
  const db = useTestDatabase('sync_phases_state');
  let dir: string;

  before(async () => {
    dir = await tempDir();
  });

  it('an initial load emits plan, read, stage, index, swap in order; an incremental sync plan, read, apply, checkpoint', async () => {
    const w = await newTable(dir, 'phases');
    const m = buildMapping({ name: 'phases', source: w.path, target: 'phases', key: ['id'] });
    const r = await openRunner(m, db().url);
    try {
      const initial: SyncEvent[] = [];
      await r.runner.run({ onEvent: (e) => initial.push(e) });
      assert.deepEqual(phases(initial), ['plan', 'read', 'stage', 'index', 'swap']);
      const detail = initial.find((e) => e.type === 'phase' && e.phase === 'index');
      assert.ok(detail?.type === 'phase' && /primary key \(id\) on 30 row/.test(detail.detail ?? ''), JSON.stringify(detail));
      await w.update('id', items(1, 5, ' v2')); // v2
      const incremental: SyncEvent[] = [];
      await r.runner.run({ onEvent: (e) => incremental.push(e) });
      assert.deepEqual(phases(incremental), ['plan', 'read', 'apply', 'checkpoint']);
      // Phases come before the events they lead to: the commit after 'checkpoint'.
      const order = incremental.map((e) => (e.type === 'phase' ? e.phase : e.type));
      assert.ok(order.indexOf('checkpoint') < order.indexOf('batch-committed'), order.join(' '));
    } finally {
      await r.close();
    }
  });

  it('status() carries the state the engine computes: not-loaded, up-to-date, behind, errored (kind, retry, hint), then up-to-date again', async () => {
    const w = await newTable(dir, 'state');
    const m = buildMapping({ name: 'state', source: w.path, target: 'state', key: ['id'] });
    const r = await openRunner(m, db().url);
    try {
      assert.deepEqual((await r.runner.status()).state, { phase: 'not-loaded' });
      await r.runner.run({});
      assert.deepEqual((await r.runner.status()).state, { phase: 'up-to-date', version: 1 });
      await w.update('id', items(1, 3, ' v2')); // v2
      await w.update('id', items(4, 6, ' v3')); // v3
      assert.deepEqual((await r.runner.status()).state, { phase: 'behind', version: 1, latestVersion: 3, versionsBehind: 2 });
      // A failure the user must act on: the target table was dropped under the pipeline.
      const c = new pg.Client({ connectionString: db().url });
      await c.connect();
      await c.query('ALTER TABLE public.state RENAME TO state_moved');
      const err = await expectSyncError(r.runner.run({}));
      const st = (await r.runner.status()).state;
      assert.equal(st.phase, 'errored');
      assert.ok(st.phase === 'errored');
      assert.equal(st.version, 1);
      assert.equal(st.error.kind, err.kind);
      assert.equal(st.error.kind, 'target');
      assert.equal(st.error.retry, err.retry);
      assert.equal(st.error.message, err.message);
      assert.equal(st.error.hint, err.hint);
      assert.match(st.error.hint ?? '', /initial load/);
      await c.query('ALTER TABLE public.state_moved RENAME TO state');
      await c.end();
      await r.runner.run({});
      assert.deepEqual((await r.runner.status()).state, { phase: 'up-to-date', version: 3 });
    } finally {
      await r.close();
    }
  });

  for (const policy of ['fail', 'add-columns', 'ignore-new'] as const) {
    it(`a column removed from the Delta table is refused under schemaDrift ${policy}, naming the column and versions; nothing is applied`, async () => {
      const w = await newTable(dir, `removed_${policy.replace('-', '_')}`);
      const table = `removed_${policy.replace('-', '_')}`;
      const m = buildMapping({ name: table, source: w.path, target: { table }, key: ['id'], schemaDrift: policy });
      const r = await openRunner(m, db().url);
      try {
        await r.runner.run({});
        await w.replaceSchema(COLS.filter((col) => col.name !== 'amount')); // v2
        await w.append([{ id: 31n, name: 'item 31' }]); // v3
        const err = await expectSyncError(r.runner.run({}));
        assert.equal(err.kind, 'schema-drift');
        assert.equal(err.column, 'amount');
        assert.equal(err.setting, 'schemaDrift');
        assert.equal(err.retry, 'manual');
        assert.match(err.message, /removed "amount"/);
        assert.match(err.message, /between version 2 and version 3/);
        assert.match(err.hint ?? '', /initial load/);
        assert.equal((await r.runner.status()).checkpoint?.version, 1n);
        await assertTargetEquals(db().url, { schema: 'public', name: table }, w.path, 1, { key: ['id'] });
      } finally {
        await r.close();
      }
    });
  }

  it('a widened decimal (10,2) -> (20,2) is a schema-drift error naming the column and both types, not a numeric overflow', async () => {
    const w = await newTable(dir, 'widened');
    const m = buildMapping({ name: 'widened', source: w.path, target: 'widened', key: ['id'], schemaDrift: 'add-columns' });
    const r = await openRunner(m, db().url);
    try {
      await r.runner.run({});
      await w.replaceSchema(COLS.map((col) => (col.name === 'amount' ? { ...col, type: { kind: 'decimal', precision: 20, scale: 2 } } : col))); // v2
      await w.append([{ id: 31n, name: 'item 31', amount: '123456789012345.25' }]); // v3
      const err = await expectSyncError(r.runner.run({}));
      assert.equal(err.kind, 'schema-drift');
      assert.equal(err.column, 'amount');
      assert.match(err.message, /"amount" decimal\(10,2\) -> decimal\(20,2\)/);
      assert.equal((await r.runner.status()).checkpoint?.version, 1n);
    } finally {
      await r.close();
    }
  });
});
