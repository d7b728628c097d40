import assert from 'node:assert/strict';
import { parseMapping } from '../../src/sync/mapping/loadMapping';
import { openSource } from '../../src/sync/open/openSource';
import { watchPipeline } from '../../src/sync/run/watch';
import { itemRows, newItemTable } from '../builders/itemTables';
import { useTestDatabase } from '../helpers/postgres';
import { openRunner, pollUntil, tempDir } from '../helpers/syncHarness';
import { assertTargetEquals } from '../helpers/targetEquality';

/**
 * Issue 14, point 1: "a local source wakes on a change of its `_delta_log` (file watching,
 * with polling as the fallback)". The poll floor here is a minute, far beyond each test's
 * wait: a version is applied long before the floor only if the change to `_delta_log` woke
 * the watch. Without a local path (a source the watch cannot see, as Databricks), the floor
 * is what finds the version.
 */

const rows = itemRows;

describe('watch: a local table wakes the watch on its _delta_log; polling is the floor', function () {
  this.timeout(60_000);
  const db = useTestDatabase('watch_wake');
  let dir: string;

  before(async () => {
    dir = await tempDir('dns-wake-');
  });

  async function follow(name: string, opts: { watchLog: boolean; intervalMs: number }) {
    const w = await newItemTable(dir, name, 10);
    const mapping = parseMapping({ name, source: { type: 'delta', path: w.path }, target: { connection: 'test', table: name }, key: ['id'] });
    const opened = await openRunner(mapping, db().url);
    const applied: number[] = [];
    const abort = new AbortController();
    const watch = watchPipeline({
      runner: opened.runner,
      source: await openSource(mapping.source),
      localTablePath: opts.watchLog ? w.path : undefined,
      mode: 'follow',
      intervalMs: opts.intervalMs,
      signal: abort.signal,
      onApplied: (r) => applied.push(r.toVersion),
    });
    const appliedVersion = (v: number, timeoutMs: number) =>
      pollUntil(async () => (applied.includes(v) ? v : undefined), { timeoutMs, everyMs: 20, what: `version ${v} of ${name} applied by the watch` });
    const stop = async () => {
      abort.abort();
      await watch;
      await opened.close();
    };
    const equalsSource = () => assertTargetEquals(db().url, { schema: 'public', name }, w.path, w.version, { key: ['id'] });
    return { w, applied, appliedVersion, stop, equalsSource };
  }

  it('applies a new version well before a one-minute poll floor (the change to _delta_log wakes it), several times in a row', async () => {
    const f = await follow('woken', { watchLog: true, intervalMs: 60_000 });
    try {
      const loaded = f.w.version;
      await f.appliedVersion(loaded, 20_000); // the initial load runs at once
      await f.w.append(rows(11, 15, 'second'));
      await f.appliedVersion(loaded + 1, 15_000);
      await f.w.merge('id', [{ id: 3n, name: 'third, changed' }, ...rows(16, 17, 'third')]);
      await f.appliedVersion(loaded + 2, 15_000);
      assert.deepEqual(f.applied, [loaded, loaded + 1, loaded + 2]);
      await f.equalsSource();
    } finally {
      await f.stop();
    }
  });

  it('without a log to watch, the poll floor finds the new version', async () => {
    const f = await follow('polled', { watchLog: false, intervalMs: 300 });
    try {
      const loaded = f.w.version;
      await f.appliedVersion(loaded, 20_000);
      await f.w.append(rows(11, 12, 'second'));
      await f.appliedVersion(loaded + 1, 15_000);
      await f.equalsSource();
    } finally {
      await f.stop();
    }
  });
});
