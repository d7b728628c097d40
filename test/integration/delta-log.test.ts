import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { replayTo } from '../../src/sync/delta/DeltaLog';
import { listLog } from '../../src/sync/delta/logListing';
import { DeltaTable } from '../../src/sync/delta/DeltaTable';
import { decodeRelativePath, resolveActionPath } from '../../src/sync/delta/tablePaths';
import type { Row } from '../../src/sync/delta/types';
import { expectSyncError } from '../helpers/expectSyncError';
import { requireSharedTable } from '../helpers/sharedTables';
import { copyTableToTemp } from '../helpers/tempTableCopy';

function key(r: Row): string {
  return JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}

async function rowKeys(root: string, version?: number): Promise<string[]> {
  const t = await DeltaTable.open(root);
  const s = await t.snapshot(version === undefined ? {} : { version });
  const out: string[] = [];
  for await (const b of s.rows({ batchSize: 7 })) for (const r of b) out.push(key(r));
  return out.sort();
}

async function livePaths(root: string, version?: number): Promise<string[]> {
  const t = await DeltaTable.open(root);
  const s = await t.snapshot(version === undefined ? {} : { version });
  return s.files.map((f) => f.path).sort();
}

describe('Delta log listing and checkpoints', function () {
  const temps: Array<() => void> = [];
  afterEach(() => {
    while (temps.length) temps.pop()?.();
  });
  function copy(root: string): string {
    const c = copyTableToTemp(root);
    temps.push(c.cleanup);
    return c.root;
  }

  it('lists commits and a classic checkpoint without trusting _last_checkpoint', async function () {
    const root = requireSharedTable(this, 'delta-rs/simple_table_with_checkpoint');
    const l = await listLog(root);
    assert.deepEqual(l.commitVersions, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(l.checkpoints.map((c) => [c.version, c.kind, c.files.length]), [[10, 'classic', 1]]);
    assert.equal(l.latestVersion, 10);
  });

  it('recognises a complete two-part checkpoint and UUID-named v2 checkpoints', async function () {
    const multi = await listLog(requireSharedTable(this, 'delta-kernel-rs/multi-part-checkpoint'));
    assert.deepEqual(multi.checkpoints.map((c) => [c.version, c.kind, c.files.length]), [[1, 'multi-part', 2]]);
    const v2 = await listLog(requireSharedTable(this, 'delta-rs/checkpoint-v2-table'));
    assert.deepEqual(v2.checkpoints.map((c) => [c.version, c.kind]), [[6, 'v2'], [8, 'v2']]);
  });

  it('replays a v2 checkpoint through its parquet sidecar to the file count the writer recorded', async function () {
    const root = requireSharedTable(this, 'delta-rs/checkpoint-v2-table');
    const cp = fs.readdirSync(path.join(root, '_delta_log')).find((n) => /^0+8\.checkpoint\..*\.json$/.test(n));
    assert.ok(cp);
    // The writer records numOfAddFiles in the checkpoint's own checkpointMetadata tags.
    const first = JSON.parse(fs.readFileSync(path.join(root, '_delta_log', cp), 'utf8').split('\n')[0]) as {
      checkpointMetadata: { tags: { numOfAddFiles: string } };
    };
    const l = await listLog(root);
    const state = await replayTo(l, 8, { files: true });
    assert.equal(state.files.size, Number(first.checkpointMetadata.tags.numOfAddFiles));
    // Replaying v8 from the checkpoint and from the commits gives the same live files.
    const noCp = copy(root);
    for (const n of fs.readdirSync(path.join(noCp, '_delta_log'))) if (n.includes('.checkpoint.')) fs.rmSync(path.join(noCp, '_delta_log', n));
    assert.deepEqual(await livePaths(noCp, 8), await livePaths(root, 8));
  });

  it('skips an incomplete multi-part checkpoint and replays the commits instead', async function () {
    const root = requireSharedTable(this, 'delta-kernel-rs/multi-part-checkpoint');
    const broken = copy(root);
    const part2 = fs.readdirSync(path.join(broken, '_delta_log')).find((n) => /^\d{20}\.checkpoint\.0000000002\.0000000002\.parquet$/.test(n));
    assert.ok(part2);
    fs.rmSync(path.join(broken, '_delta_log', part2));
    assert.deepEqual((await listLog(broken)).checkpoints, []);
    const fromCommits = await rowKeys(broken);
    assert.equal(fromCommits.length, 31);
    assert.deepEqual(fromCommits, await rowKeys(root));
  });

  it('ignores a stale or wrong _last_checkpoint', async function () {
    const root = requireSharedTable(this, 'delta-rs/simple_table_with_checkpoint');
    const stale = copy(root);
    fs.writeFileSync(path.join(stale, '_delta_log', '_last_checkpoint'), '{"version":3,"size":4}');
    const t = await DeltaTable.open(stale);
    assert.equal(await t.latestVersion(), 10);
    assert.deepEqual(await livePaths(stale), await livePaths(root));
  });

  it('reads tables whose early commits were cleaned up, from the newest checkpoint found by listing', async function () {
    const root = requireSharedTable(this, 'delta-rs/checkpoints_vacuumed');
    const l = await listLog(root);
    assert.equal(l.commitVersions[0], 5);
    assert.deepEqual(l.checkpoints.map((c) => c.version), [5, 10]);
    // Same live files whether v12 is rebuilt from checkpoint 10 or from checkpoint 5.
    const only5 = copy(root);
    fs.rmSync(path.join(only5, '_delta_log', '00000000000000000010.checkpoint.parquet'));
    assert.deepEqual(await livePaths(only5, 12), await livePaths(root, 12));
    // Each of commits 6..12 appends one file on top of checkpoint 5.
    assert.equal((await livePaths(root, 12)).length - (await livePaths(root, 5)).length, 7);
    const t = await DeltaTable.open(root);
    await expectSyncError(t.snapshot({ version: 4 }), { kind: 'time-travel', message: /version 4/i });
  });

  it('reads partition values from a checkpoint map, null included', async function () {
    const root = requireSharedTable(this, 'delta-rs/checkpoint_with_partitions');
    const t = await DeltaTable.open(root);
    const s = await t.snapshot();
    assert.equal(s.version, 2);
    assert.deepEqual(s.partitionColumns, ['color']);
    assert.deepEqual(s.files.map((f) => f.partitionValues.color ?? null).sort(), [null, 'red']);
    await expectSyncError(t.snapshot({ version: 0 }), { kind: 'time-travel' });
  });

  it('reports a corrupt commit line as delta-log naming the file and line number', async function () {
    const root = copy(requireSharedTable(this, 'delta-kernel-rs/cdf-table-simple'));
    const file = path.join(root, '_delta_log', '00000000000000000001.json');
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
    lines.splice(1, 0, '{"add": {"path": "truncated');
    fs.writeFileSync(file, lines.join('\n') + '\n');
    const t = await DeltaTable.open(root);
    await expectSyncError(t.snapshot(), { kind: 'delta-log', message: /00000000000000000001\.json, line 2/ });
    // Versions before the damage stay readable.
    assert.equal((await t.snapshot({ version: 0 })).version, 0);
  });

  it('refuses paths that are not Delta tables with a clear delta-log error', async function () {
    const root = copy(requireSharedTable(this, 'delta-rs/simple_table'));
    await expectSyncError(DeltaTable.open(path.join(root, 'nope')), { kind: 'delta-log', message: /does not exist/ });
    const noLog = path.join(root, 'empty');
    fs.mkdirSync(noLog);
    await expectSyncError(DeltaTable.open(noLog), { kind: 'delta-log', message: /_delta_log/ });
    fs.mkdirSync(path.join(noLog, '_delta_log'));
    await expectSyncError(DeltaTable.open(noLog), { kind: 'delta-log', message: /no commit/ });
  });

  it('opens a table given as a file:// URI', async function () {
    const root = requireSharedTable(this, 'delta-rs/simple_table');
    const t = await DeltaTable.open(pathToFileURL(root).href);
    assert.equal(t.path, path.resolve(root));
    assert.equal(await t.latestVersion(), 4);
  });

  it('refuses unsupported reader features and versions, naming them, but reads versions before', async function () {
    const root = copy(requireSharedTable(this, 'delta-kernel-rs/basic-with-vacuum-protocol-check-feature'));
    const log = path.join(root, '_delta_log');
    fs.writeFileSync(
      path.join(log, '00000000000000000002.json'),
      JSON.stringify({ commitInfo: { timestamp: 1700000000000, operation: 'SET TBLPROPERTIES' } }) +
        '\n' +
        JSON.stringify({ protocol: { minReaderVersion: 3, minWriterVersion: 7, readerFeatures: ['vacuumProtocolCheck', 'variantType', 'variantShredding'], writerFeatures: ['variantType', 'variantShredding'] } }) +
        '\n',
    );
    fs.writeFileSync(
      path.join(log, '00000000000000000003.json'),
      JSON.stringify({ commitInfo: { timestamp: 1700000001000, operation: 'UPGRADE' } }) + '\n' + JSON.stringify({ protocol: { minReaderVersion: 4, minWriterVersion: 8 } }) + '\n',
    );
    const t = await DeltaTable.open(root);
    await expectSyncError(t.snapshot({ version: 2 }), { kind: 'delta-protocol', message: /variantShredding/ });
    await expectSyncError(t.snapshot(), { kind: 'delta-protocol', message: /reader version 4/ });
    const v1 = await t.snapshot({ version: 1 });
    assert.deepEqual(v1.protocol.readerFeatures, ['vacuumProtocolCheck']);
  });

  it('takes the commit timestamp from the file modification time when there is no commitInfo', async function () {
    const root = requireSharedTable(this, 'delta-kernel-rs/cdf-table-with-dv');
    const t = await DeltaTable.open(root);
    const h = await t.history();
    assert.deepEqual(h.map((e) => e.version), [6, 5, 4, 3, 2, 1, 0]);
    for (const e of h) {
      const mtime = Math.floor(fs.statSync(path.join(root, '_delta_log', `${String(e.version).padStart(20, '0')}.json`)).mtimeMs);
      assert.equal(e.timestamp, mtime);
    }
  });

  it('reports history newest first with operation and engine from commitInfo', async function () {
    const root = requireSharedTable(this, 'delta-kernel-rs/basic-with-inserts-overwrite-restore');
    const h = await (await DeltaTable.open(root)).history();
    assert.deepEqual(h.map((e) => [e.version, e.operation]), [[3, 'RESTORE'], [2, 'WRITE'], [1, 'WRITE'], [0, 'WRITE']]);
    assert.equal(h[0].operationParameters?.version, 1);
    assert.match(h[3].engineInfo ?? '', /Apache-Spark/);
    assert.equal(h[3].timestamp, 1697588664008);
  });
});

describe('Delta action paths', function () {
  it('decodes URL-encoded relative paths exactly once', function () {
    // Partition value "A/A" is stored in folder "A%2FA", written in the log as "A%252FA".
    assert.equal(decodeRelativePath('x=A%252FA/part-0.parquet'), 'x=A%2FA/part-0.parquet');
    assert.equal(resolveActionPath('/t', 'x=B%2520B/p.parquet'), path.join('/t', 'x=B%20B/p.parquet'));
    assert.equal(decodeRelativePath('a+b%ZZ'), 'a+b%ZZ');
  });

  it('accepts absolute file:// URIs and refuses remote schemes', function () {
    assert.equal(resolveActionPath('/t', 'file:///data/t/a%20b.parquet'), '/data/t/a b.parquet');
    expectSyncError(() => resolveActionPath('/t', 's3://bucket/t/a.parquet'), { kind: 'delta-file' });
  });
});
