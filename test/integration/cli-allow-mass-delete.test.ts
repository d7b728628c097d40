import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { checkpointVersion, queryOnce } from '../helpers/pgQuery';
import { useTestDatabase } from '../helpers/postgres';
import { buildCli, pollUntil, runCli, startCli, tempDir, writeMappingFile } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';
import { itemRows, newItemTable } from '../builders/itemTables';

/**
 * Issue 14, point 4 through the real CLI process: after a source TRUNCATE, `sync` is refused
 * before it writes (exit 1; the message names the rows, the version and its operation, the
 * hint the flag), `sync --allow-mass-delete` applies it, and the next mass delete is refused
 * again (the flag allows one run). With --watch, --all or --every the flag is a usage error:
 * it would otherwise have to pick which of many runs it allows.
 */

const rows = itemRows;

describe('CLI: sync --allow-mass-delete (real server, CLI processes)', function () {
  this.timeout(90_000);
  const db = useTestDatabase('cli_allow_mass_delete');
  let dir: string;

  before(async function () {
    this.timeout(120_000);
    await buildCli();
    dir = await tempDir('dns-allow-');
  });

  const newTable = (name: string): Promise<DeltaTableWriter> => newItemTable(dir, name, 20);

  const count = async (table: string): Promise<number> =>
    Number((await queryOnce<{ n: string }>(db().url, `SELECT count(*)::text AS n FROM public.${table}`))[0]?.n);

  it('a TRUNCATE is refused (exit 1, rows, version, TRUNCATE and the flag named), applied with --allow-mass-delete, and the next mass delete is refused again', async () => {
    const t = await newTable('truncated');
    const table = 'allow_truncated';
    const pipeline = `public-${table}`;
    const quick = ['sync', '--source', t.path, '--target', db().url, '--table', `public.${table}`, '--key', 'id'];
    const load = await runCli(quick);
    assert.equal(load.code, 0, load.stderr);
    const loaded = t.version;
    const v = await t.overwrite([], { operation: 'TRUNCATE' });

    const refused = await runCli(quick);
    assert.equal(refused.code, 1, refused.stdout);
    assert.match(refused.stderr, /Refused to delete 20 of about 20 row\(s\) of .*allow_truncated/);
    assert.match(refused.stderr, new RegExp(`version ${v}: TRUNCATE`));
    assert.match(refused.stderr, /safety\.maxDeleteShare \(50%, at most 10 row\(s\)\)/);
    assert.match(refused.stderr, /--allow-mass-delete/);
    assert.equal(await count(table), 20, 'nothing was deleted');
    assert.equal(await checkpointVersion(db().url, pipeline), loaded, 'the checkpoint did not move');

    const allowed = await runCli([...quick, '--allow-mass-delete']);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout, /incremental sync to version \d+ done in \d+ batch\(es\): 0 inserted, 0 updated, 20 deleted/);
    assert.equal(await count(table), 0);
    assert.equal(await checkpointVersion(db().url, pipeline), v);

    // Once: new rows, then every row deleted again; plain `sync` is guarded again.
    await t.append(rows(21, 40));
    const refill = await runCli(quick);
    assert.equal(refill.code, 0, refill.stderr);
    assert.equal(await count(table), 20);
    const del = await t.delete('id', rows(21, 40).map((r) => r.id as bigint));
    const again = await runCli(quick);
    assert.equal(again.code, 1, again.stdout);
    assert.match(again.stderr, new RegExp(`Refused to delete 20 of about 20 row\\(s\\).*version ${del}: DELETE`));
    assert.equal(await count(table), 20);
    await assertTargetEquals(db().url, { schema: 'public', name: table }, t.path, del - 1, { key: ['id'] });
  });

  it('a watch stopped by the guard exits 1 naming the flag; one `sync --allow-mass-delete`, then a new watch follows again and is guarded again', async () => {
    const t = await newTable('watched');
    const table = 'allow_watched';
    const pipeline = `public-${table}`;
    const quick = ['sync', '--source', t.path, '--target', db().url, '--table', `public.${table}`, '--key', 'id'];
    const atVersion = (v: number): Promise<number> =>
      pollUntil(async () => ((await checkpointVersion(db().url, pipeline)) === v ? v : undefined), { timeoutMs: 30_000, everyMs: 50, what: `${pipeline} at version ${v}` });
    const first = startCli([...quick, '--watch', '--interval', '200ms']);
    let second: ReturnType<typeof startCli> | undefined;
    try {
      await atVersion(t.version);
      const v = await t.overwrite([], { operation: 'TRUNCATE' });
      const stopped = await first.done;
      assert.equal(stopped.code, 1, stopped.stdout);
      assert.match(stopped.stderr, new RegExp(`Refused to delete 20 of about 20 row\\(s\\).*version ${v}: TRUNCATE`));
      assert.match(stopped.stderr, /sync --mapping <file> --allow-mass-delete/);
      assert.equal(await count(table), 20);

      const allowed = await runCli([...quick, '--allow-mass-delete']);
      assert.equal(allowed.code, 0, allowed.stderr);
      assert.equal(await count(table), 0);

      second = startCli([...quick, '--watch', '--interval', '200ms']);
      await t.append(rows(21, 40));
      await atVersion(t.version);
      const del = await t.delete('id', rows(21, 40).map((r) => r.id as bigint));
      const again = await second.done;
      assert.equal(again.code, 1, again.stdout);
      assert.match(again.stderr, new RegExp(`Refused to delete 20 of about 20 row\\(s\\).*version ${del}: DELETE`));
      assert.equal(await count(table), 20);
    } finally {
      for (const c of [first.child, second?.child]) if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
  });

  it('--allow-mass-delete with --watch, --every or --all is a usage error naming the flag and what to run instead; nothing runs', async () => {
    const t = await newTable('usage');
    const table = 'allow_usage';
    const quick = ['sync', '--source', t.path, '--target', db().url, '--table', `public.${table}`, '--key', 'id'];
    const ws = path.join(dir, 'ws-allow');
    await fs.mkdir(path.join(ws, '.delta-sync'), { recursive: true });
    await writeMappingFile(path.join(ws, '.delta-sync'), 'one', { name: 'allow-one', source: { type: 'delta', path: t.path }, target: { connection: db().url, schema: 'public', table }, key: ['id'] });
    for (const args of [[...quick, '--watch'], [...quick, '--every', '5m'], ['sync', '--all', '--dir', ws], ['sync', '--all', '--dir', ws, '--watch']]) {
      const res = await runCli([...args, '--allow-mass-delete']);
      assert.equal(res.code, 1, `${args.join(' ')}: ${res.stdout}`);
      assert.match(res.stderr, /--allow-mass-delete allows one run: it does not go with --all, --watch or --every/, args.join(' '));
      assert.match(res.stderr, /Hint: Run that mapping once with `sync --mapping FILE --allow-mass-delete`, then start the watch or schedule again/, args.join(' '));
    }
    assert.equal(await checkpointVersion(db().url, `public-${table}`), undefined);
    assert.equal(await checkpointVersion(db().url, 'allow-one'), undefined);
  });
});
