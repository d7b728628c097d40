import * as assert from 'node:assert/strict';
import pg from 'pg';
import { SyncEngine } from '../../src/engine/SyncEngine';
import { silentLogger } from '../../src/sync/ports/Logger';
import { pickConnectionName, pickTreeNode } from '../../src/views/pickTreeNode';
import { neonDatabasePick, targetsChildren, targetTablePick } from '../../src/views/targetPicks';
import { TargetsModel, type TargetNode } from '../../src/views/TargetsModel';
import { listTargetTables } from '../../src/views/targetTables';
import { expectSyncError } from '../helpers/expectSyncError';
import { MemorySecrets, MemoryState } from '../helpers/memoryStores';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { ScriptedPrompter } from '../helpers/scriptedPrompter';

/**
 * Tree commands run from the palette ask for their row by quick picks over the rows the
 * Targets view lists (targetsChildren, which the view uses too): Show Rows asks for a target,
 * the schema, the table; Remove / Retry Connection for a saved connection. Against the
 * embedded sandbox and a real Postgres saved as a connection.
 */
describe('palette commands ask for the tree row they act on (Show Rows, Remove Connection)', function () {
  this.timeout(180_000);
  let db: TestDatabase;
  let engine: SyncEngine;
  let model: TargetsModel;
  let children: (node?: TargetNode) => Promise<TargetNode[]>;

  before(async () => {
    db = await createTestDatabase('dns_palette');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query('CREATE SCHEMA sales; CREATE TABLE sales.orders (id int PRIMARY KEY); INSERT INTO sales.orders SELECT generate_series(1, 3); CREATE TABLE public.customers (id int PRIMARY KEY)');
    } finally {
      await c.end();
    }
    model = new TargetsModel(new MemoryState(), new MemorySecrets());
    engine = new SyncEngine({ sandboxDir: () => undefined, lookup: (name) => model.connectionString(name), logger: silentLogger });
    await engine.withTarget('sandbox', (t) => t.pool.query('CREATE TABLE public.sandbox_rows (id int PRIMARY KEY)'));
    children = targetsChildren(model, (connection) => engine.withTarget(connection, (t) => listTargetTables(t.pool, t.kind === 'sandbox')));
  });
  after(async () => {
    await engine?.dispose();
    await db?.drop();
  });

  it('Show Rows with only the sandbox: the sandbox opens without asking, then its tables are offered', async () => {
    const p = new ScriptedPrompter(['public.sandbox_rows']);
    const node = await pickTreeNode(p, targetTablePick(children, 'Show Rows'));
    assert.deepEqual(node && node.kind === 'table' ? { connection: node.connection, schema: node.schema, table: node.table } : node, { connection: 'sandbox', schema: 'public', table: 'sandbox_rows' });
    const picks = p.asked.filter((a) => a.kind === 'pick');
    assert.equal(picks.length, 1);
    assert.ok(picks[0]?.labels?.includes('public.sandbox_rows'), JSON.stringify(picks));
  });

  it('Show Rows with a saved connection: pick the connection, then its schema, then the table', async () => {
    await model.save('shop', db.url);
    try {
      const p = new ScriptedPrompter(['shop', 'sales', 'orders']);
      const node = await pickTreeNode(p, targetTablePick(children, 'Show Rows'));
      assert.equal(node?.kind, 'table');
      assert.deepEqual(node?.kind === 'table' ? [node.connection, node.schema, node.table] : [], ['shop', 'sales', 'orders']);
      const picks = p.asked.filter((a) => a.kind === 'pick');
      assert.deepEqual(picks.map((a) => a.title), ['Show Rows', 'Show Rows: shop', 'Show Rows: shop / sales']);
      assert.deepEqual(picks[0]?.labels, ['Sandbox (embedded Postgres)', 'shop']);
      assert.deepEqual(picks[1]?.labels, ['public', 'sales']);
      assert.deepEqual(picks[2]?.labels, ['orders']);
      // Dismissing a pick is no error: nothing is shown.
      assert.equal(await pickTreeNode(new ScriptedPrompter(['shop', undefined]), targetTablePick(children, 'Show Rows')), undefined);
    } finally {
      await model.remove('shop');
    }
  });

  it('a connection whose tables cannot be listed: the pick fails with its error, naming the connection', async () => {
    await model.save('closed', 'postgres://app:pw@127.0.0.1:1/shop');
    try {
      await expectSyncError(pickTreeNode(new ScriptedPrompter(['closed']), targetTablePick(children, 'Show Rows')), { kind: 'connection', message: /Show Rows: nothing to choose from under closed: .*127\.0\.0\.1:1/ });
    } finally {
      await model.remove('closed');
    }
  });

  it('Remove / Retry Connection: a pick of the saved connections; none saved says how to add one', async () => {
    await expectSyncError(pickConnectionName(new ScriptedPrompter([]), model.connections().map((c) => c.name), 'Remove Connection', 'Add one with "Delta Sync: Add Postgres Connection".'), {
      kind: 'usage',
      message: 'Remove Connection: no saved connection.',
      hint: /Add Postgres Connection/,
    });
    await model.save('b-conn', db.url);
    await model.save('a-conn', db.url);
    const p = new ScriptedPrompter(['b-conn']);
    assert.equal(await pickConnectionName(p, model.connections().map((c) => c.name), 'Remove Connection', ''), 'b-conn');
    assert.deepEqual(p.asked[0]?.labels, ['a-conn', 'b-conn']);
    await model.remove('a-conn');
    await model.remove('b-conn');
  });

  it('Copy Neon Reference without a Neon account offers nothing from the other targets', async () => {
    await expectSyncError(pickTreeNode(new ScriptedPrompter([]), neonDatabasePick(children, 'Copy Neon Reference')), { kind: 'usage', message: /Copy Neon Reference: nothing to choose from/ });
  });
});
