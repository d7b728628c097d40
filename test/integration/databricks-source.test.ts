import assert from 'node:assert/strict';
import * as path from 'node:path';
import { applySampleChanges, CUSTOMER_PROFILE_COLUMNS, createCustomerProfilesTable, generateCustomers } from '../../src/fixtures/customerProfiles';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { DeltaChangeSource } from '../../src/sync/sources/DeltaChangeSource';
import type { DeltaField, DeltaType } from '../../src/sync/delta/types';
import { DatabricksCatalog } from '../../src/sync/databricks/DatabricksCatalog';
import { DatabricksChangeSource } from '../../src/sync/sources/DatabricksChangeSource';
import { DatabricksClient } from '../../src/sync/databricks/DatabricksClient';
import { createPool } from '../../src/sync/postgres/createPool';
import { openSource } from '../../src/sync/open/openSource';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
import { mappingTarget } from '../../src/sync/open/openTarget';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { FakeWarehouse } from '../helpers/fakeWarehouse/FakeWarehouse';
import { useTestDatabase } from '../helpers/postgres';
import { canonicalChange, canonicalRow, sorted } from '../helpers/rowMultiset';
import { sharedTable } from '../helpers/sharedTables';
import { tempDir } from '../helpers/syncHarness';
import { targetText } from '../helpers/targetEquality';

/**
 * The Databricks source through the real @databricks/sql driver against a local
 * Thrift-over-HTTPS warehouse (test/helpers/fakeWarehouse) whose answers come from real
 * Delta tables through the local reader: what the source returns must equal what the
 * local source (DeltaChangeSource) returns for the same table.
 */

/** Nullability and metadata aside (getColumns has no field metadata), the same type. */
function shape(fields: readonly DeltaField[]): unknown {
  const t = (x: DeltaType): unknown =>
    x.kind === 'struct' ? { struct: x.fields.map((f) => [f.name, t(f.type)]) } : x.kind === 'array' ? { array: t(x.elementType) } : x.kind === 'map' ? { map: [t(x.keyType), t(x.valueType)] } : x;
  return fields.map((f) => [f.name, t(f.type)]);
}

interface Tables {
  customers: string;
  noCdf: string;
}

describe('Databricks source over a SQL warehouse (real driver, local test warehouse)', function () {
  this.timeout(120_000);
  let warehouse: FakeWarehouse;
  let client: DatabricksClient;
  let tables: Tables;
  const shared: Record<string, string | undefined> = {
    cdf: sharedTable('delta-rs/cdf-table'),
    cdfNp: sharedTable('delta-rs/cdf-table-non-partitioned'),
    allTypes: sharedTable('delta-kernel-rs/parquet-all-types'),
    ntz: sharedTable('delta-kernel-rs/data-reader-timestamp_ntz'),
    maps: sharedTable('delta-kernel-rs/data-reader-map'),
    decimals: sharedTable('delta-kernel-rs/decimal-various-scale-precision'),
  };

  before(async function () {
    this.timeout(60_000);
    const dir = await tempDir('dbx-');
    const t = await createCustomerProfilesTable(path.join(dir, 'customers'), { rows: 400, rowsPerFile: 150 });
    await applySampleChanges(t.path);
    const w = await DeltaTableWriter.create(path.join(dir, 'no_cdf'), { columns: [...CUSTOMER_PROFILE_COLUMNS], name: 'no_cdf' });
    await w.append(generateCustomers(20));
    tables = { customers: t.path, noCdf: w.path };
    const sharedSchema: Record<string, string> = {};
    for (const [k, p] of Object.entries(shared)) if (p) sharedSchema[k] = p;
    warehouse = await FakeWarehouse.start({ catalogs: { main: { sales: { customers: t.path, no_cdf: w.path } }, shared: { delta: sharedSchema } } });
    client = await DatabricksClient.connect(warehouse.config());
  });

  after(async () => {
    await client?.close();
    await warehouse?.stop();
  });

  function source(table: string): DatabricksChangeSource {
    const [catalog, schema, name] = table.split('.') as [string, string, string];
    return new DatabricksChangeSource(client, { catalog, schema, table: name });
  }

  describe('browse', () => {
    it('lists catalogs, schemas and tables from the metadata calls', async () => {
      const cat = new DatabricksCatalog(client);
      assert.deepEqual(sorted(await cat.catalogs()), ['main', 'shared']);
      assert.deepEqual(await cat.schemas('main'), ['sales']);
      assert.deepEqual(sorted((await cat.tables('main', 'sales')).map((t) => t.name)), ['customers', 'no_cdf']);
    });

    it('describes a table: columns, current version and CDF state equal the local reader', async () => {
      const cat = new DatabricksCatalog(client);
      const d = await cat.describe({ catalog: 'main', schema: 'sales', table: 'customers' });
      const local = await DeltaChangeSource.open(tables.customers);
      const snap = await local.snapshot();
      assert.deepEqual(shape(d.columns), shape(snap.schema));
      assert.deepEqual(d.columns.map((c) => c.nullable), snap.schema.map((c) => c.nullable));
      assert.equal(d.version, await local.latestVersion());
      assert.equal(d.timestamp, snap.timestamp);
      assert.equal(d.cdfEnabled, true);
      assert.equal(d.enableCdfStatement, undefined);
    });

    it('offers the ALTER TABLE for a table without CDF and runs it only when confirmed', async () => {
      const cat = new DatabricksCatalog(client);
      const ref = { catalog: 'main', schema: 'sales', table: 'no_cdf' };
      const d = await cat.describe(ref);
      assert.equal(d.cdfEnabled, false);
      assert.equal(d.enableCdfStatement, 'ALTER TABLE `main`.`sales`.`no_cdf` SET TBLPROPERTIES (delta.enableChangeDataFeed = true)');
      const before = warehouse.statements.length;
      await expectSyncError(cat.enableChangeDataFeed(ref, { confirm: false }), { kind: 'usage' });
      assert.equal(warehouse.statements.slice(before).some((s) => s.startsWith('ALTER')), false, 'nothing was sent without confirmation');
      await cat.enableChangeDataFeed(ref, { confirm: true });
      assert.ok(warehouse.statements.slice(before).includes(d.enableCdfStatement as string));
      assert.equal((await cat.describe(ref)).cdfEnabled, true);
    });

    it('types of every kind (struct, array, map, decimal, timestamp_ntz) come back as the local reader has them', async function () {
      const p = shared.allTypes;
      if (!p) this.skip();
      const remote = await source('shared.delta.allTypes').columns();
      const local = (await (await DeltaChangeSource.open(p)).snapshot()).schema;
      assert.deepEqual(shape(remote), shape(local));
    });
  });

  describe('snapshots equal the local reader', () => {
    const cases: Array<[string, () => string | undefined, string]> = [
      ['customer_profiles fixture', () => tables.customers, 'main.sales.customers'],
      ['delta-rs/cdf-table', () => shared.cdf, 'shared.delta.cdf'],
      ['delta-rs/cdf-table-non-partitioned (many scalar types, 64-bit longs)', () => shared.cdfNp, 'shared.delta.cdfNp'],
      ['delta-kernel-rs/parquet-all-types (nested types, binary, ntz)', () => shared.allTypes, 'shared.delta.allTypes'],
      ['delta-kernel-rs/data-reader-timestamp_ntz', () => shared.ntz, 'shared.delta.ntz'],
      ['delta-kernel-rs/data-reader-map (maps of many key types)', () => shared.maps, 'shared.delta.maps'],
      ['delta-kernel-rs/decimal-various-scale-precision', () => shared.decimals, 'shared.delta.decimals'],
    ];
    for (const [label, p, name] of cases) {
      it(`${label}: every version, in batches no larger than the batch size`, async function () {
        const dir = p();
        if (!dir) this.skip();
        const local = await DeltaChangeSource.open(dir);
        const remote = source(name);
        const latest = await local.latestVersion();
        assert.equal(await remote.latestVersion(), latest);
        const first = name === 'main.sales.customers' || name.endsWith('cdf') ? 0 : latest;
        for (let v = first; v <= latest; v++) {
          const ls = await local.snapshot(v);
          const rs = await remote.snapshot(v);
          assert.equal(rs.version, v);
          assert.equal(rs.timestamp, ls.timestamp, `commit timestamp of version ${v}`);
          assert.equal(rs.cdfEnabled, (await local.snapshot()).cdfEnabled);
          const want: string[] = [];
          for await (const b of ls.rows()) for (const r of b) want.push(canonicalRow(r, ls.schema));
          const got: string[] = [];
          for await (const b of rs.rows({ batchSize: 37 })) {
            assert.ok(b.length <= 37, `batch of ${b.length} rows > 37`);
            for (const r of b) got.push(canonicalRow(r, ls.schema));
          }
          assert.deepEqual(sorted(got), sorted(want), `rows at version ${v}`);
        }
      });
    }

    it('values keep full precision: 64-bit longs as bigint, decimals with their scale, timestamps to the microsecond', async function () {
      const dir = shared.cdfNp;
      if (!dir) this.skip();
      const rs = await source('shared.delta.cdfNp').snapshot();
      const ls = await (await DeltaChangeSource.open(dir)).snapshot();
      const want = new Map<string, unknown>();
      for await (const b of ls.rows()) for (const r of b) want.set(canonicalRow(r, ls.schema), r);
      for await (const b of rs.rows()) {
        for (const r of b) {
          const twin = want.get(canonicalRow(r, ls.schema));
          assert.ok(twin, 'row present locally');
          assert.deepStrictEqual(r, twin, 'same JS values and types as the local reader');
        }
      }
    });
  });

  describe('change data feed equals the local reader', () => {
    const cases: Array<[string, () => string | undefined, string]> = [
      ['customer_profiles fixture (updates, deletes, DVs, MERGE)', () => tables.customers, 'main.sales.customers'],
      ['delta-rs/cdf-table', () => shared.cdf, 'shared.delta.cdf'],
      ['delta-rs/cdf-table-non-partitioned', () => shared.cdfNp, 'shared.delta.cdfNp'],
    ];
    for (const [label, p, name] of cases) {
      it(`${label}: every range [start, latest], commit versions in order, batches bounded`, async function () {
        const dir = p();
        if (!dir) this.skip();
        const local = await DeltaChangeSource.open(dir);
        const remote = source(name);
        const latest = await local.latestVersion();
        const schema = (await local.snapshot()).schema;
        for (let start = 0; start <= latest; start++) {
          const want: string[] = [];
          for await (const b of local.changes(start, latest)) for (const c of b) want.push(canonicalChange(c, schema));
          const got: string[] = [];
          let lastVersion = -1;
          for await (const b of remote.changes(start, latest, { batchSize: 25 })) {
            assert.ok(b.length <= 25);
            for (const c of b) {
              assert.ok(c.commitVersion >= lastVersion, 'commit versions never go back');
              lastVersion = c.commitVersion;
              got.push(canonicalChange(c, schema));
            }
          }
          assert.deepEqual(sorted(got), sorted(want), `changes from ${start} to ${latest}`);
          assert.ok(got.length > 0 || start === 0, 'a range holds changes');
        }
        // commitTimestamp agrees for every version.
        for (let v = 0; v <= latest; v++) assert.equal(await remote.commitTimestamp(v), await local.commitTimestamp(v));
      });
    }

    it('binds the table name and versions as parameters, never in the SQL text', async () => {
      const before = warehouse.statements.length;
      for await (const b of source('main.sales.customers').changes(2, 3)) void b;
      const i = warehouse.statements.findIndex((s, k) => k >= before && s.includes('table_changes'));
      assert.ok(i >= 0);
      assert.ok(warehouse.statements[i]?.includes('table_changes(:t, :start, :end)'));
      assert.deepEqual(warehouse.parameters[i], { t: '`main`.`sales`.`customers`', start: '2', end: '3' });
    });
  });

  describe('errors', () => {
    it('a wrong token is an auth error naming the fix', async () => {
      await expectSyncError(DatabricksClient.connect(warehouse.config('dapi-wrong')), { kind: 'auth', message: /403/, hint: /token|HTTP path/ });
    });

    it('a wrong HTTP path is reported (not a hang)', async () => {
      await expectSyncError(DatabricksClient.connect({ ...warehouse.config(), httpPath: '/sql/1.0/warehouses/nope' }), { kind: ['auth', 'connection'], hint: /HTTP path/ });
    });

    it('a stopped warehouse is a connection error retried automatically', async () => {
      warehouse.mode = 'stopped';
      try {
        await expectSyncError(DatabricksClient.connect(warehouse.config()), { kind: 'connection', retry: 'auto', message: /stopped|starting/ });
      } finally {
        warehouse.mode = 'running';
      }
    });

    it('an unreachable host is a connection error', async () => {
      await expectSyncError(DatabricksClient.connect({ ...warehouse.config(), port: 1 }), { kind: 'connection' });
    });

    it('CDF not enabled is cdf-not-enabled with the table, the version and the ALTER TABLE hint', async () => {
      const fresh = await DeltaTableWriter.create(path.join(await tempDir('dbx-nocdf-'), 't'), { columns: [...CUSTOMER_PROFILE_COLUMNS], name: 'plain' });
      await fresh.append(generateCustomers(5));
      const w2 = await FakeWarehouse.start({ catalogs: { main: { s: { plain: fresh.path } } } });
      const c2 = await DatabricksClient.connect(w2.config());
      try {
        const src = new DatabricksChangeSource(c2, { catalog: 'main', schema: 's', table: 'plain' });
        await expectSyncError(
          (async () => {
            for await (const b of src.changes(0, 1)) void b;
          })(),
          { kind: 'cdf-not-enabled', table: 'main.s.plain', version: 0, hint: /ALTER TABLE main\.s\.plain SET TBLPROPERTIES \(delta\.enableChangeDataFeed = true\)/ },
        );
      } finally {
        await c2.close();
        await w2.stop();
      }
    });

    it('a start version after the latest is cdf-range; a version not in history is time-travel', async () => {
      const src = source('main.sales.customers');
      const latest = await src.latestVersion();
      await expectSyncError(
        (async () => {
          for await (const b of src.changes(latest + 5, latest + 6)) void b;
        })(),
        { kind: 'cdf-range', table: 'main.sales.customers' },
      );
      await expectSyncError(src.snapshot(latest + 3), { kind: 'time-travel' });
    });

    it('an unknown table is a mapping error naming source.table', async () => {
      await expectSyncError(source('main.sales.nope').latestVersion(), { kind: 'mapping', setting: 'source.table' });
    });
  });

  describe('sync into Postgres', () => {
    const dbLocal = useTestDatabase('dbx_local');
    const dbRemote = useTestDatabase('dbx_remote');

    it('initial load then incremental syncs from the Databricks source give the same target as from the local source', async () => {
      const latest = await (await DeltaChangeSource.open(tables.customers)).latestVersion();
      const env = { DATABRICKS_HOST: `${warehouse.host}:${warehouse.serverPort}`, DATABRICKS_HTTP_PATH: warehouse.httpPath, DATABRICKS_TOKEN: warehouse.token };
      const remoteMapping = buildMapping({ name: 'dbx', source: { type: 'databricks', connection: 'default', table: 'main.sales.customers' }, target: 'customers', key: ['customer_id'] });
      const localMapping = buildMapping({ name: 'dbx', source: tables.customers, target: 'customers', key: ['customer_id'] });
      // openSource resolves the connection from DATABRICKS_*; the CA of the test warehouse comes through the lookup.
      const remote = (await openSource(remoteMapping.source, {
        databricks: { env, lookup: async () => ({ ...warehouse.config(), host: `${warehouse.host}` }) },
      })) as DatabricksChangeSource;
      const local = await openSource(localMapping.source);
      const poolR = createPool(dbRemote().url, { max: 2 });
      const poolL = createPool(dbLocal().url, { max: 2 });
      try {
        const rr = new SyncRunner(remoteMapping, remote, mappingTarget(poolR, remoteMapping.target));
        const rl = new SyncRunner(localMapping, local, mappingTarget(poolL, localMapping.target));
        await rr.run({ mode: 'initial', toVersion: 1 });
        await rl.run({ mode: 'initial', toVersion: 1 });
        for (let v = 2; v <= latest; v++) {
          const a = await rr.run({ mode: 'incremental', toVersion: v });
          const b = await rl.run({ mode: 'incremental', toVersion: v });
          assert.equal(a.toVersion, v);
          assert.deepEqual({ ...a, runId: '' }, { ...b, runId: '' }, `run report at version ${v}`);
        }
        const columns = CUSTOMER_PROFILE_COLUMNS.map((c) => ({ source: c.name, target: c.name, type: c.type }));
        const t = { schema: 'public', name: 'customers' };
        const got = await targetText(dbRemote().url, t, columns, ['customer_id']);
        const want = await targetText(dbLocal().url, t, columns, ['customer_id']);
        assert.ok(want.size > 300);
        assert.deepEqual([...got.entries()].sort(), [...want.entries()].sort());
        assert.equal((await rr.verify()).equal, true);
      } finally {
        await remote.close();
        await poolR.end();
        await poolL.end();
      }
    });
  });
});
