import assert from 'node:assert/strict';
import { SyncEngine } from '../../src/engine/SyncEngine';
import { silentLogger } from '../../src/sync/ports/Logger';
import { TargetsModel, tableRowsBelow } from '../../src/views/TargetsModel';
import type { TableLister, TargetNode } from '../../src/views/TargetsModel';
import { listTargetTables } from '../../src/views/targetTables';
import { MemorySecrets, MemoryState } from '../helpers/memoryStores';
import { queryOnce } from '../helpers/pgQuery';
import { freePort, useTestDatabase } from '../helpers/postgres';

/**
 * The Targets tree below a saved Postgres connection, as the extension builds it (the
 * model's saved connections, the engine opening them, listTargetTables), against a real
 * server: connection -> schemas -> tables with row counts, an empty database and a
 * connection that fails as rows, and the sandbox still listing its tables.
 */
describe('Targets tree: a saved Postgres connection lists its schemas, then their tables (real server)', function () {
  // The sandbox (PGlite) takes seconds to start, more on a loaded machine.
  this.timeout(180_000);
  const db = useTestDatabase('targets_tree');
  const empty = useTestDatabase('targets_tree_empty');
  let engine: SyncEngine;
  let model: TargetsModel;
  let list: TableLister;

  before(async () => {
    await queryOnce(db().url, `CREATE SCHEMA sales; CREATE TABLE sales.orders (id int PRIMARY KEY); INSERT INTO sales.orders SELECT generate_series(1, 12);
      CREATE TABLE sales.refunds (id int PRIMARY KEY); CREATE TABLE public.customers (id int PRIMARY KEY); INSERT INTO public.customers SELECT generate_series(1, 3);
      ANALYZE sales.orders; ANALYZE sales.refunds; ANALYZE public.customers`);
    model = new TargetsModel(new MemoryState(), new MemorySecrets());
    engine = new SyncEngine({ sandboxDir: () => undefined, lookup: (name) => model.connectionString(name).catch(() => undefined), logger: silentLogger, env: {} });
    // What extension.ts hands the tree: exact counts on the sandbox, the planner's estimate elsewhere.
    list = (c) => engine.withTarget(c, (t) => listTargetTables(t.pool, t.kind === 'sandbox'));
  });
  after(async () => {
    await engine?.dispose();
  });

  const connectionNode = (name: string): TargetNode => {
    const node = model.children().find((n) => n.kind === 'connection' && n.info.name === name);
    assert.ok(node, `${name} is listed`);
    return node;
  };

  it('connection -> schemas (in name order, with their tables) -> tables labelled by name with their row counts', async () => {
    await model.add('shop', db().url);
    const schemas = await tableRowsBelow(connectionNode('shop'), list);
    assert.deepEqual(
      schemas?.map((s) => s.kind === 'schema' && [s.connection, s.schema, s.tables.map((t) => t.table)]),
      [
        ['shop', 'public', ['customers']],
        ['shop', 'sales', ['orders', 'refunds']],
      ],
    );
    const sales = schemas?.find((s) => s.kind === 'schema' && s.schema === 'sales') as TargetNode;
    const tables = await tableRowsBelow(sales, list);
    assert.deepEqual(
      tables?.map((t) => t.kind === 'table' && [t.connection, t.schema, t.table, t.rows, t.estimated, t.underSchema]),
      [
        ['shop', 'sales', 'orders', '12', true, true],
        ['shop', 'sales', 'refunds', '0', true, true],
      ],
    );
  });

  it('a database without tables says so under the connection, not under a schema', async () => {
    await model.add('empty-db', empty().url);
    const rows = await tableRowsBelow(connectionNode('empty-db'), list);
    assert.deepEqual(rows?.map((r) => r.kind === 'message' && [r.severity, r.label]), [['info', 'No tables yet']]);
  });

  it('a connection that fails shows its error as the one row under it, naming the server, with Edit / Retry', async () => {
    const closed = await freePort();
    await model.add('closed-port', `postgresql://app:secret@127.0.0.1:${closed}/shop?sslmode=disable&connect_timeout=5`);
    const rows = await tableRowsBelow(connectionNode('closed-port'), list);
    assert.equal(rows?.length, 1);
    const [row] = rows ?? [];
    assert.ok(row?.kind === 'message', JSON.stringify(row));
    assert.equal(row.severity, 'error');
    assert.equal(row.connection, 'closed-port', 'the row offers Edit / Retry for that connection');
    assert.equal(row.label, `Nothing is listening on 127.0.0.1:${closed} — is Postgres running?`);
  });

  it('the sandbox still lists its tables directly, as schema.table with exact counts', async () => {
    await engine.withTarget('sandbox', async (t) => {
      await t.pool.query('CREATE TABLE IF NOT EXISTS public.tree_probe (id int PRIMARY KEY)');
      await t.pool.query('DELETE FROM public.tree_probe');
      await t.pool.query('INSERT INTO public.tree_probe VALUES (1), (2)');
    });
    const sandbox = model.children().find((n) => n.kind === 'sandbox') as TargetNode;
    const rows = await tableRowsBelow(sandbox, list);
    const probe = rows?.find((r) => r.kind === 'table' && r.table === 'tree_probe');
    assert.ok(probe?.kind === 'table', JSON.stringify(rows));
    assert.deepEqual([probe.connection, probe.schema, probe.rows, probe.estimated, probe.underSchema], ['sandbox', 'public', '2', false, undefined]);
  });
});
