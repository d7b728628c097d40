import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type pg from 'pg';
import { applySampleChanges, createCustomerProfilesTable, customerAt, customerId } from '../../src/fixtures/customerProfiles';
import type { CustomerProfilesPlan } from '../../src/fixtures/customerProfiles';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { openSandbox } from '../../src/sync/postgres/PglitePool';
import type { SandboxDatabase } from '../../src/sync/postgres/PglitePool';
import type { SyncEvent } from '../../src/sync/ports/events';
import { openSource } from '../../src/sync/open/openSource';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
import { mappingTarget } from '../../src/sync/open/openTarget';
import { buildMapping } from '../builders/mappings';
import type { MappingOverrides } from '../builders/mappings';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, tempDir } from '../helpers/syncHarness';
import { assertTargetEquals, snapshotText } from '../helpers/targetEquality';

/**
 * deletes.mode "soft-delete", end to end on a real server (and once on the sandbox): rows
 * deleted in Delta stay in the target with the marker set (true, or the exact commit time
 * of the delete), re-inserted keys become live again, a key change marks the old key, the
 * live rows equal the Delta snapshot, preview totals equal the sync's counts, and
 * re-running a range changes nothing. Expectations come from the Delta log and snapshots
 * (read here), never from the engine's own results.
 */

const KEY = ['customer_id'];
type Kind = 'boolean' | 'timestamp';

/** Commit time (ms) of `version`, read from the commit file: inCommitTimestamp, else commitInfo.timestamp. */
async function commitMillis(tablePath: string, version: number): Promise<number> {
  const text = await fs.readFile(path.join(tablePath, '_delta_log', `${String(version).padStart(20, '0')}.json`), 'utf8');
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const action = JSON.parse(line) as { commitInfo?: { timestamp?: number; inCommitTimestamp?: number } };
    const ci = action.commitInfo;
    if (ci) return ci.inCommitTimestamp ?? (ci.timestamp as number);
  }
  throw new Error(`no commitInfo in version ${version}`);
}

/** Keys of the Delta snapshot at each version 0..latest. */
async function keysByVersion(tablePath: string, latest: number): Promise<Set<string>[]> {
  const out: Set<string>[] = [];
  for (let v = 0; v <= latest; v++) out.push(new Set((await snapshotText(tablePath, v, { key: KEY })).rows.keys()));
  return out;
}

/** The last version in (from, to] that deleted `key` (present just before, absent at it). */
function lastDeleteVersion(keys: Set<string>[], key: string, from: number, to: number): number | undefined {
  let found: number | undefined;
  for (let v = from + 1; v <= to; v++) if (keys[v - 1]?.has(key) && !keys[v]?.has(key)) found = v;
  return found;
}

type Queryable = { query: pg.Pool['query'] };

/** key -> marker as text (boolean: 'true'/'false'; timestamp: microseconds since epoch, or null). */
async function markers(db: Queryable, table: string, column: string, kind: Kind): Promise<Map<string, string | null>> {
  const expr = kind === 'boolean' ? `"${column}"::text` : `(extract(epoch FROM "${column}") * 1000000)::int8::text`;
  const r = await db.query<{ k: string; m: string | null }>(`SELECT customer_id AS k, ${expr} AS m FROM public."${table}"`);
  return new Map(r.rows.map((x) => [x.k, x.m]));
}

function isMarked(kind: Kind, m: string | null | undefined): boolean {
  return kind === 'boolean' ? m === 'true' : m !== null && m !== undefined;
}

/** A view of the target's live rows, so the equality oracle compares them alone. */
async function createLiveView(db: Queryable, table: string, column: string, kind: Kind): Promise<{ schema: string; name: string }> {
  const name = `${table}_live`;
  const live = kind === 'boolean' ? `NOT "${column}"` : `"${column}" IS NULL`;
  await db.query(`CREATE OR REPLACE VIEW public."${name}" AS SELECT * FROM public."${table}" WHERE ${live}`);
  return { schema: 'public', name };
}

/**
 * Checks every key the target holds: marked exactly when the Delta table at `latest` lacks
 * it, with (timestamp) the commit time of its last delete since `since`, or earlier marks
 * kept in `previous`.
 */
async function checkMarkers(
  db: Queryable, table: string, column: string, kind: Kind, tablePath: string, keys: Set<string>[], since: number, latest: number,
  previous: Map<string, string | null>,
): Promise<Map<string, string | null>> {
  const m = await markers(db, table, column, kind);
  const live = keys[latest] as Set<string>;
  for (const k of live) assert.ok(m.has(k), `live key ${k} is in the target`);
  for (const [k, v] of m) {
    if (live.has(k)) {
      assert.equal(isMarked(kind, v), false, `key ${k} (live in Delta) is live in the target`);
      continue;
    }
    assert.equal(isMarked(kind, v), true, `key ${k} (deleted in Delta) is marked deleted`);
    if (kind === 'timestamp') {
      const dv = lastDeleteVersion(keys, k, since, latest);
      const expected = dv === undefined ? previous.get(k) : (BigInt(await commitMillis(tablePath, dv)) * 1000n).toString();
      assert.ok(expected !== undefined && expected !== null, `key ${k}: deleted at a known version`);
      assert.equal(v, expected, `key ${k}: marker is the commit time of version ${dv ?? '(earlier)'}`);
    }
  }
  return m;
}

describe('soft delete end to end (real server)', function () {
  this.timeout(180_000);
  const db = useTestDatabase('sync_soft');
  let dir: string;

  before(async () => {
    dir = await tempDir('dns-soft-');
  });

  for (const kind of ['boolean', 'timestamp'] as const) {
    const column = kind === 'boolean' ? 'is_deleted' : 'deleted_at';

    it(`${kind} marker: deleted rows are kept and marked (${kind === 'boolean' ? 'true' : 'the exact commit time'}), re-inserts are live again, a key change marks the old key, live rows equal Delta, preview totals equal the counts, re-running changes nothing`, async () => {
      const table = `soft_${kind}`;
      const t = await createCustomerProfilesTable(path.join(dir, table), { rows: 600 });
      const plan: CustomerProfilesPlan = t.plan;
      const mapping = buildMapping({
        name: `soft-${kind}`, source: t.path, target: table, key: KEY,
        deletes: { mode: 'soft-delete', column, kind },
      });
      const r = await openRunner(mapping, db().url);
      try {
        // Initial load: the DDL has the marker column, every row is live.
        const init = await r.runner.run({ mode: 'initial', toVersion: 1 });
        assert.equal(init.inserted, plan.rows);
        assert.match(init.createdTableSql ?? '', kind === 'boolean' ? /"is_deleted" boolean NOT NULL DEFAULT false/ : /"deleted_at" timestamptz[,\n]/);
        const colInfo = await r.pool.query<{ data_type: string; is_nullable: string; column_default: string | null }>(
          `SELECT data_type, is_nullable, column_default FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND column_name = $2`,
          [table, column],
        );
        assert.deepEqual(colInfo.rows[0], kind === 'boolean'
          ? { data_type: 'boolean', is_nullable: 'NO', column_default: 'false' }
          : { data_type: 'timestamp with time zone', is_nullable: 'YES', column_default: null });
        const keys = await keysByVersion(t.path, t.version);
        let seen = await checkMarkers(r.pool, table, column, kind, t.path, keys, 1, 1, new Map());
        assert.equal(seen.size, plan.rows);

        // Incremental v2..v5 (an UPDATE, a cdc DELETE, an insert, a DV DELETE of an old key and of one inserted at v4).
        const pv = await r.runner.preview({ limit: 10_000, include: ['insert', 'update', 'delete', 'delete-missing', 'unchanged'] });
        const run1 = await r.runner.run({});
        assert.equal(run1.toVersion, t.version);
        assert.deepEqual(
          { insert: pv.totals.insert, update: pv.totals.update, delete: pv.totals.delete, unchanged: pv.totals.unchanged },
          { insert: run1.inserted, update: run1.updated, delete: run1.deleted, unchanged: run1.unchanged },
        );
        assert.equal(run1.softDeleted, run1.deleted, 'every delete was a soft delete');
        const expectedMarked = [...(keys[1] as Set<string>)].filter((k) => !keys[t.version]?.has(k));
        assert.equal(expectedMarked.length, plan.deleted.length + plan.dvDeleted.length - 1);
        assert.equal(run1.deleted, expectedMarked.length);
        // The customer inserted at v4 and deleted at v5 never reached the target: no row is inserted for it.
        assert.equal(pv.totals['delete-missing'], 1);
        const neverSynced = customerId(plan.rows + 1);
        const deleteRow = pv.rows.find((x) => x.action === 'delete' && x.key.customer_id === customerId(plan.deleted[0] as number));
        assert.ok(deleteRow, 'the preview lists a deleted customer as a delete');
        assert.equal(deleteRow.changes?.length, 1);
        assert.equal(deleteRow.changes?.[0]?.column, column);
        assert.equal(deleteRow.changes?.[0]?.old, kind === 'boolean' ? 'false' : null);
        assert.equal(deleteRow.oldRow?.customer_id, customerId(plan.deleted[0] as number));
        seen = await checkMarkers(r.pool, table, column, kind, t.path, keys, 1, t.version, seen);
        assert.equal(seen.has(neverSynced), false);
        const view = await createLiveView(r.pool, table, column, kind);
        await assertTargetEquals(db().url, view, t.path, t.version, { key: KEY });

        // A MERGE (updates, inserts, deletes), a re-insert of a deleted key, a key change.
        const v5 = t.version;
        await applySampleChanges(t.path);
        const w = await DeltaTableWriter.open(t.path);
        const reinserted = plan.deleted[0] as number;
        await w.append([customerAt(reinserted)]);
        const renamedFrom = customerId(7);
        const renamedTo = customerId(8_500_000);
        const latest = await w.updateWhere((row) => row.customer_id === renamedFrom, (row) => ({ ...row, customer_id: renamedTo }));
        const keys2 = await keysByVersion(t.path, latest);
        const pv2 = await r.runner.preview({ limit: 10_000, include: ['insert', 'update', 'delete', 'delete-missing', 'unchanged'] });
        const events: SyncEvent[] = [];
        const run2 = await r.runner.run({ onEvent: (e) => events.push(e) });
        assert.deepEqual(
          { insert: pv2.totals.insert, update: pv2.totals.update, delete: pv2.totals.delete, unchanged: pv2.totals.unchanged },
          { insert: run2.inserted, update: run2.updated, delete: run2.deleted, unchanged: run2.unchanged },
        );
        const committed = events.filter((e) => e.type === 'batch-committed');
        assert.equal(committed.reduce((n, e) => n + (e.type === 'batch-committed' ? e.deleted : 0), 0), run2.deleted, 'events report the soft deletes as deleted');
        // Delta deleted 2 customers in the MERGE and the old key of the key change.
        assert.equal(run2.deleted, [...(keys2[v5] as Set<string>)].filter((k) => !keys2[latest]?.has(k)).length);
        assert.equal(run2.deleted, 3);
        const reinsertRow = pv2.rows.find((x) => x.key.customer_id === customerId(reinserted));
        assert.equal(reinsertRow?.action, 'update', 'a re-inserted key is an update of the marked row');
        assert.deepEqual(reinsertRow?.changes?.map((c) => c.column), [column], 'only the marker changes (same values re-inserted)');
        seen = await checkMarkers(r.pool, table, column, kind, t.path, keys2, v5, latest, seen);
        assert.equal(isMarked(kind, seen.get(customerId(reinserted))), false, 're-inserted key is live');
        assert.equal(isMarked(kind, seen.get(renamedFrom)), true, 'old key of the key change is marked');
        assert.equal(isMarked(kind, seen.get(renamedTo)), false, 'new key of the key change is live');
        await assertTargetEquals(db().url, view, t.path, latest, { key: KEY });
        const verify = await r.runner.verify();
        assert.equal(verify.equal, true, JSON.stringify(verify));
        assert.equal(verify.targetRows, keys2[latest]?.size);

        // Re-running: up to date, then the whole range again from v1: nothing changes.
        const again = await r.runner.run({});
        assert.equal(again.status, 'up-to-date');
        const before = await r.pool.query<{ t: string }>(`SELECT string_agg(x::text, E'\\n' ORDER BY customer_id) AS t FROM public."${table}" x`);
        await r.pool.query(`UPDATE delta_neon_sync.checkpoints SET version = 1 WHERE pipeline = $1`, [mapping.name]);
        const pv3 = await r.runner.preview({ limit: 10 });
        const rerun = await r.runner.run({});
        assert.deepEqual([rerun.inserted, rerun.updated, rerun.deleted], [0, 0, 0]);
        assert.deepEqual([pv3.totals.insert, pv3.totals.update, pv3.totals.delete], [0, 0, 0]);
        const after = await r.pool.query<{ t: string }>(`SELECT string_agg(x::text, E'\\n' ORDER BY customer_id) AS t FROM public."${table}" x`);
        assert.equal(after.rows[0]?.t, before.rows[0]?.t);
      } finally {
        await r.close();
      }
    });
  }

  it('a Delta column renamed away from the marker\'s name keeps its own values (the marker does not overwrite it)', async () => {
    const table = 'soft_clash';
    const t = await createCustomerProfilesTable(path.join(dir, table), { rows: 300 });
    const mapping = buildMapping({
      name: 'soft-clash', source: t.path, target: table, key: KEY,
      columns: { rename: { is_active: 'active' } },
      deletes: { mode: 'soft-delete', column: 'is_active', kind: 'boolean' },
    });
    const r = await openRunner(mapping, db().url);
    try {
      await r.runner.run({ mode: 'initial', toVersion: 1 });
      const res = await r.runner.run({});
      assert.equal(res.deleted, t.plan.deleted.length + t.plan.dvDeleted.length - 1);
      const keys = await keysByVersion(t.path, t.version);
      await checkMarkers(r.pool, table, 'is_active', 'boolean', t.path, keys, 1, t.version, new Map());
      const view = await createLiveView(r.pool, table, 'is_active', 'boolean');
      const snap = await snapshotText(t.path, t.version, { key: KEY });
      const columns = snap.columns.map((c) => (c.source === 'is_active' ? { ...c, target: 'active' } : c));
      await assertTargetEquals(db().url, view, t.path, t.version, { key: KEY, columns });
    } finally {
      await r.close();
    }
  });

  it('a target made without the marker gets the column added (with a warning) and existing rows are live; a merge initial load marks rows missing from the snapshot instead of deleting them', async () => {
    const table = 'soft_added';
    const t = await createCustomerProfilesTable(path.join(dir, table), { rows: 300 });
    const base: MappingOverrides = { name: 'soft-added', source: t.path, target: table, key: KEY };
    const plain = await openRunner(buildMapping(base), db().url);
    try {
      await plain.runner.run({ mode: 'initial', toVersion: 1 });
    } finally {
      await plain.close();
    }
    const keys = await keysByVersion(t.path, t.version);
    const mapping = buildMapping({ ...base, deletes: { mode: 'soft-delete', column: 'deleted_at', kind: 'timestamp' }, initialLoad: { mode: 'merge' } });
    const r = await openRunner(mapping, db().url);
    try {
      // Preview before the column exists: it reads the rows as live.
      const pv = await r.runner.preview({ toVersion: 3, limit: 1000 });
      const events: SyncEvent[] = [];
      const res = await r.runner.run({ toVersion: 3, onEvent: (e) => events.push(e) });
      assert.ok(events.some((e) => e.type === 'warning' && /Added soft-delete column "deleted_at"/.test(e.message)), JSON.stringify(events.filter((e) => e.type === 'warning')));
      assert.equal(pv.totals.delete, res.deleted);
      assert.equal(res.deleted, t.plan.deleted.length);
      const seen = await checkMarkers(r.pool, table, 'deleted_at', 'timestamp', t.path, keys, 1, 3, new Map());

      // Merge initial load at the latest version: rows not in the snapshot are marked with
      // the snapshot's commit time; rows already marked keep their time.
      const init = await r.runner.run({ mode: 'initial' });
      assert.equal(init.mode, 'initial');
      const m = await markers(r.pool, table, 'deleted_at', 'timestamp');
      const latestMicros = (BigInt(await commitMillis(t.path, t.version)) * 1000n).toString();
      for (const [k, v] of m) {
        if (keys[t.version]?.has(k)) assert.equal(v, null, `${k} live`);
        else if (seen.has(k) && seen.get(k) !== null) assert.equal(v, seen.get(k), `${k} keeps its earlier delete time`);
        else assert.equal(v, latestMicros, `${k} marked at the snapshot's commit time`);
      }
      const newlyMarked = [...m].filter(([k, v]) => v !== null && seen.get(k) === null).length;
      assert.equal(newlyMarked, t.plan.dvDeleted.length - 1);
      assert.equal(init.deleted, newlyMarked);
      assert.equal(init.softDeleted, newlyMarked);
      const view = await createLiveView(r.pool, table, 'deleted_at', 'timestamp');
      await assertTargetEquals(db().url, view, t.path, t.version, { key: KEY });
    } finally {
      await r.close();
    }
  });
});

describe('soft delete on the sandbox (PGlite)', function () {
  this.timeout(180_000);
  let sandbox: SandboxDatabase;
  before(async () => {
    sandbox = await openSandbox();
  });
  after(async () => {
    await sandbox?.close();
  });

  it('boolean marker: deleted customers are kept and marked, the live rows equal the snapshot', async () => {
    const dir = await tempDir('dns-soft-sb-');
    const t = await createCustomerProfilesTable(path.join(dir, 'customer_profiles'), { rows: 300 });
    const latest = await applySampleChanges(t.path);
    const mapping = buildMapping({
      name: 'soft-sandbox', source: t.path, target: { connection: 'sandbox', table: 'customer_profiles' }, key: KEY,
      deletes: { mode: 'soft-delete', column: 'is_deleted', kind: 'boolean' },
    });
    const runner = new SyncRunner(mapping, await openSource(mapping.source), mappingTarget(sandbox.pool, mapping.target));
    await runner.run({ mode: 'initial', toVersion: 1 });
    const pv = await runner.preview({ limit: 10 });
    const res = await runner.run({});
    assert.equal(res.deleted, pv.totals.delete);
    const keys = await keysByVersion(t.path, latest);
    await checkMarkers(sandbox.pool, 'customer_profiles', 'is_deleted', 'boolean', t.path, keys, 1, latest, new Map());
    const view = await createLiveView(sandbox.pool, 'customer_profiles', 'is_deleted', 'boolean');
    await assertTargetEquals(sandbox.pool, view, t.path, latest, { key: KEY });
  });
});
