import assert from 'node:assert/strict';
import * as path from 'node:path';
import { createLedgerTable, LEDGER_COLUMNS, LEDGER_KEY } from '../../src/fixtures/ledgerRows';
import type { ChangeRow, Row } from '../../src/sync/delta/types';
import { DatabricksChangeSource } from '../../src/sync/sources/DatabricksChangeSource';
import { DeltaChangeSource } from '../../src/sync/sources/DeltaChangeSource';
import type { SyncEvent } from '../../src/sync/ports/events';
import { createPool } from '../../src/sync/postgres/createPool';
import { mappingTarget } from '../../src/sync/open/openTarget';
import { SyncRunner } from '../../src/sync/run/SyncRunner';
import { buildMapping } from '../builders/mappings';
import { expectSyncError } from '../helpers/expectSyncError';
import { FakeWarehouse } from '../helpers/fakeWarehouse/FakeWarehouse';
import { useTestDatabase } from '../helpers/postgres';
import { assertTargetEquals } from '../helpers/targetEquality';
import { tempDir } from '../helpers/syncHarness';

/**
 * The Databricks source at scale through the real @databricks/sql driver, with the local
 * warehouse serving large results as a real SQL warehouse does: CloudFetch links to Arrow
 * IPC files on an HTTPS "cloud storage" (presigned, expiring), LZ4 frames. The rows must
 * equal the local Delta reader's exactly: 64-bit integers beyond 2^53 and at the int64
 * limits, DECIMAL(38,6), timestamps with sub-millisecond microseconds, nulls.
 *
 * Size: LEDGER_TEST_ROWS rows (default 200,000) and a MERGE of half as many keys (100,000
 * keys: 90,000 updated, 10,000 deleted, so 190,000 change rows). The 1M-row read is in
 * bench/databricksBench.ts.
 */

const ROWS = Number(process.env.LEDGER_TEST_ROWS ?? 200_000);
const CHANGED_KEYS = Math.floor(ROWS / 2);

/** Values with their JS types: a bigint and a number, or a decimal string and a number, differ. */
function typed(r: Row): string {
  return JSON.stringify(LEDGER_COLUMNS.map((c) => r[c.name] ?? null), (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}

async function snapshotByKey(rows: AsyncIterable<Row[]>): Promise<Map<bigint, string>> {
  const out = new Map<bigint, string>();
  for await (const batch of rows) for (const r of batch) out.set(r[LEDGER_KEY] as bigint, typed(r));
  return out;
}

function assertSameRows(got: Map<bigint, string>, want: Map<bigint, string>, what: string): void {
  assert.equal(got.size, want.size, `${what}: row count`);
  let differing = 0;
  const examples: string[] = [];
  for (const [k, v] of want) {
    if (got.get(k) !== v) {
      differing++;
      if (examples.length < 3) examples.push(`key ${k}: want ${v}, got ${got.get(k)}`);
    }
  }
  assert.equal(differing, 0, `${what}: ${differing} rows differ, e.g.\n${examples.join('\n')}`);
}

function changeText(c: ChangeRow): string {
  return `${c.commitVersion} ${c.commitTimestamp} ${c.changeType} ${typed(c.values)}`;
}

describe('Databricks results at scale: CloudFetch and LZ4 through the real driver', function () {
  this.timeout(900_000);
  let dir: string;
  let local: DeltaChangeSource;
  let want: Map<bigint, string>;

  before(async function () {
    this.timeout(900_000);
    dir = path.join(await tempDir('dbx-scale-'), 'ledger');
    await createLedgerTable(dir, { rows: ROWS, changedKeys: CHANGED_KEYS, rowsPerFile: 50_000 });
    local = await DeltaChangeSource.open(dir);
    want = await snapshotByKey((await local.snapshot(1)).rows({ batchSize: 10_000 }));
    assert.equal(want.size, ROWS);
  });

  async function withWarehouse<T>(opts: Parameters<typeof FakeWarehouse.start>[0]['cloudFetch'], clientOpts: { useCloudFetch?: boolean }, body: (w: FakeWarehouse, src: DatabricksChangeSource) => Promise<T>): Promise<T> {
    const w = await FakeWarehouse.start({ catalogs: { main: { fin: { ledger: dir } } }, cloudFetch: opts });
    const src = await DatabricksChangeSource.open({ ...w.config(), ...clientOpts }, 'main.fin.ledger');
    try {
      return await body(w, src);
    } finally {
      await src.close();
      await w.stop();
    }
  }

  it(`a ${ROWS}-row snapshot comes as LZ4-compressed CloudFetch files over HTTPS and equals the local reader row for row`, async () => {
    await withWarehouse({ lz4: 'always', rowsPerFile: 25_000 }, {}, async (w, src) => {
      let largest = 0;
      const got = await snapshotByKey(
        (async function* (): AsyncGenerator<Row[]> {
          for await (const b of (await src.snapshot(1)).rows({ batchSize: 10_000 })) {
            largest = Math.max(largest, b.length);
            yield b;
          }
        })(),
      );
      const served = w.results.find((r) => r.statement.includes('VERSION AS OF 1'));
      assert.ok(served, 'the snapshot statement reached the warehouse');
      assert.deepEqual({ cloudFetch: served.cloudFetch, lz4: served.lz4, rows: served.rows, files: served.files }, { cloudFetch: true, lz4: true, rows: ROWS, files: Math.ceil(ROWS / 25_000) });
      // Every file was downloaded by the driver from the HTTPS file server, none twice.
      assert.equal(w.files.served.length, served.files);
      assert.equal(new Set(w.files.served).size, served.files);
      assert.ok(largest <= 10_000, `batches stay within the batch size (largest ${largest})`);
      assertSameRows(got, want, 'snapshot through CloudFetch + LZ4');
    });
  });

  it(`table_changes of ${CHANGED_KEYS} changed keys through CloudFetch equals the local Change Data Feed, change for change`, async () => {
    const wantChanges: string[] = [];
    for await (const b of local.changes(2, 2, { batchSize: 10_000 })) for (const c of b) wantChanges.push(changeText(c));
    // 9 in 10 keys updated (pre- and post-image), 1 in 10 deleted.
    assert.equal(wantChanges.length, CHANGED_KEYS * 2 - CHANGED_KEYS / 10);
    await withWarehouse({ lz4: 'always', rowsPerFile: 20_000 }, {}, async (w, src) => {
      const got: string[] = [];
      for await (const b of src.changes(2, 2, { batchSize: 10_000 })) for (const c of b) got.push(changeText(c));
      const served = w.results.find((r) => r.statement.includes('table_changes'));
      assert.equal(served?.cloudFetch, true);
      assert.equal(served?.lz4, true);
      assert.equal(got.length, wantChanges.length);
      assert.deepEqual(got.sort(), wantChanges.sort());
    });
  });

  it('what the driver asks for itself is served alike: CloudFetch files uncompressed, and with CloudFetch off inline LZ4 batches', async () => {
    // @databricks/sql asks for LZ4 (canDecompressLZ4Result) only when it does not ask for CloudFetch.
    await withWarehouse({ lz4: 'requested', rowsPerFile: 50_000 }, {}, async (w, src) => {
      const got = await snapshotByKey((await src.snapshot(1)).rows({ batchSize: 10_000 }));
      const served = w.results.find((r) => r.statement.includes('VERSION AS OF 1'));
      assert.deepEqual({ cloudFetch: served?.cloudFetch, lz4: served?.lz4 }, { cloudFetch: true, lz4: false });
      assertSameRows(got, want, 'snapshot through CloudFetch without LZ4');
    });
    await withWarehouse({ lz4: 'requested' }, { useCloudFetch: false }, async (w, src) => {
      const got = await snapshotByKey((await src.snapshot(1)).rows({ batchSize: 10_000 }));
      const served = w.results.find((r) => r.statement.includes('VERSION AS OF 1'));
      assert.deepEqual({ cloudFetch: served?.cloudFetch, lz4: served?.lz4 }, { cloudFetch: false, lz4: true });
      assert.equal(w.files.served.length, 0);
      assertSameRows(got, want, 'snapshot inline with LZ4');
    });
  });

  describe('read on the worker thread', () => {
    const dbWorker = useTestDatabase('dbx_worker');
    const dbMain = useTestDatabase('dbx_main');

    /** Initial load at v1 then the incremental to v2, into `url`; returns the warehouse sessions opened. */
    async function syncBoth(url: string, thread: 'main' | undefined): Promise<number> {
      const w = await FakeWarehouse.start({ catalogs: { main: { fin: { ledger: dir } } }, cloudFetch: { lz4: 'always' } });
      const before = process.env.DELTA_NEON_SYNC_READ_THREAD;
      if (thread) process.env.DELTA_NEON_SYNC_READ_THREAD = thread;
      const mapping = buildMapping({ name: 'ledger', source: { type: 'databricks', connection: 'default', table: 'main.fin.ledger' }, target: 'ledger', key: [LEDGER_KEY] });
      const src = await DatabricksChangeSource.open(w.config(), 'main.fin.ledger');
      const pool = createPool(url, { max: 2 });
      try {
        const runner = new SyncRunner(mapping, src, mappingTarget(pool, mapping.target));
        assert.equal((await runner.run({ mode: 'initial', toVersion: 1 })).inserted, ROWS);
        const inc = await runner.run({ mode: 'incremental', toVersion: 2 });
        assert.equal(inc.deleted, CHANGED_KEYS / 10);
        await assertTargetEquals(url, { schema: 'public', name: 'ledger' }, dir, 2, { key: [LEDGER_KEY] });
        return w.sessionsOpened;
      } finally {
        if (before === undefined) delete process.env.DELTA_NEON_SYNC_READ_THREAD;
        else process.env.DELTA_NEON_SYNC_READ_THREAD = before;
        await src.close();
        await pool.end();
        await w.stop();
      }
    }

    it('the snapshot and the changes are read by a worker thread with its own warehouse session, and the target equals the table', async () => {
      // One session for the runner's own source, one per read on the worker thread.
      assert.equal(await syncBoth(dbWorker().url, undefined), 3);
    });

    it('DELTA_NEON_SYNC_READ_THREAD=main keeps the read on the calling thread, with the same target', async () => {
      assert.equal(await syncBoth(dbMain().url, 'main'), 1);
    });
  });

  describe('links that expire mid-read', () => {
    const db = useTestDatabase('dbx_expiry');

    /**
     * The first links handed out live 3 s, later ones 15 minutes (so a loaded machine does
     * not expire them again); a file after the first is held 6 s, so the links waiting
     * behind the driver's 10 downloads expire.
     */
    function stallOnce(w: FakeWarehouse): void {
      // Every download served in the 6 s after the first is held (not just one: the driver's
      // concurrent downloads could otherwise finish the links behind a single held one
      // before they expire, and nothing expired in one CI run).
      let until: number | undefined;
      w.onLinks = () => {
        if (w.cloudFetch) w.cloudFetch.linkTtlMs = 15 * 60_000;
      };
      w.files.beforeServe = async (_id, n) => {
        if (n < 1) return;
        until ??= Date.now() + 6_000;
        const wait = until - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      };
    }
    const expiring = { lz4: 'always' as const, rowsPerFile: 5_000, linksPerFetch: 12, linkTtlMs: 3_000 };

    // The driver checks a link's expiry before it downloads ('CloudFetch link has expired');
    // a download queued in its HTTP agent past the expiry is refused by the storage (HTTP 403).
    // Which one comes first depends on timing: both are the same retryable error.
    it('the driver (2.1.0) does not refresh them: the read fails as a retryable error naming the table and version', async () => {
      await withWarehouse(expiring, {}, async (w, src) => {
        stallOnce(w);
        await expectSyncError(
          async () => {
            for await (const _ of (await src.snapshot(1)).rows({ batchSize: 10_000 })) void _;
          },
          { kind: 'connection', retry: 'auto', table: 'main.fin.ledger', version: 1, message: /CloudFetch.*expired|expired.*CloudFetch/, hint: /reads again on its own with new links/ },
        );
      });
    });

    it('a sync reads again with new links and loads exactly the snapshot', async () => {
      await withWarehouse(expiring, {}, async (w, src) => {
        stallOnce(w);
        const mapping = buildMapping({ name: 'ledger', source: { type: 'databricks', connection: 'default', table: 'main.fin.ledger' }, target: 'ledger', key: [LEDGER_KEY] });
        const pool = createPool(db().url, { max: 2 });
        try {
          const events: SyncEvent[] = [];
          const r = await new SyncRunner(mapping, src, mappingTarget(pool, mapping.target)).run({ mode: 'initial', toVersion: 1, onEvent: (e) => events.push(e), backoffMs: 100, retryForMs: 600_000 });
          assert.equal(r.inserted, ROWS);
          const warnings = events.filter((e) => e.type === 'warning').map((e) => (e as { message: string }).message);
          assert.ok(warnings.some((m) => /expired/.test(m) && /retrying/.test(m)), `a retry was announced: ${JSON.stringify(warnings)}`);
          assert.equal(w.results.filter((x) => x.statement.includes('VERSION AS OF 1')).length, 2, `the snapshot was read twice: ${JSON.stringify(warnings)}`);
          await assertTargetEquals(db().url, { schema: 'public', name: 'ledger' }, dir, 1, { key: [LEDGER_KEY] });
        } finally {
          await pool.end();
        }
      });
    });
  });
});
