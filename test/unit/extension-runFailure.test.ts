import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ContinuousSyncs } from '../../src/engine/ContinuousSyncs';
import { SyncEngine } from '../../src/engine/SyncEngine';
import { syncAllMappings, syncAllSummary } from '../../src/engine/syncAllMappings';
import { DeltaTableWriter } from '../../src/fixtures/DeltaTableWriter';
import { SyncError } from '../../src/sync/errors';
import { parseMapping } from '../../src/sync/mapping/loadMapping';
import type { Mapping } from '../../src/sync/mapping/mappingSchema';
import { silentLogger } from '../../src/sync/ports/Logger';
import { RunController } from '../../src/views/RunController';
import { continuousFailure, failureNotice, notifyRunFailed, syncAllFailure, type FailureUi, type RunFailure } from '../../src/views/runFailure';
import type { SettingRef } from '../../src/views/settingLocation';

/** A FailureUi that answers the toast with `choice` and records what it was asked. */
class RecordingUi implements FailureUi {
  readonly toasts: Array<{ text: string; actions: string[] }> = [];
  readonly progress: string[] = [];
  readonly settings: Array<{ setting: SettingRef; file: string | undefined }> = [];
  logs = 0;
  constructor(private readonly choice: string | undefined) {}
  async error(text: string, ...actions: string[]): Promise<string | undefined> {
    this.toasts.push({ text, actions });
    return this.choice;
  }
  async showProgress(mapping: string): Promise<void> {
    this.progress.push(mapping);
  }
  showLog(): void {
    this.logs++;
  }
  async openSetting(setting: SettingRef, file: string | undefined): Promise<void> {
    this.settings.push({ setting, file });
  }
}

/**
 * Every failed run notifies with Show Progress and Show Log, and Open Setting when its error
 * names a setting: runs started by a command (palette or tree), from the Preview, by a
 * continuous sync that an error stopped, and by Sync All. The failures are real: a Delta
 * table whose key column holds a null, loaded into the embedded sandbox, fails its initial
 * load with the error that names the `deadLetter` setting.
 */
describe('failed runs notify wherever they were started (Show Progress, Open Setting, Show Log)', function () {
  this.timeout(180_000);
  let tmp: string;
  let engine: SyncEngine;
  let nullKeys: Mapping;
  let good: Mapping;
  const file = (m: Mapping): string => path.join(tmp, '.delta-sync', `${m.name}.json`);

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dns-run-failure-'));
    engine = new SyncEngine({ sandboxDir: () => undefined, lookup: async () => undefined, logger: silentLogger });
    const columns = [
      { name: 'account_id', type: { kind: 'primitive', name: 'long' }, nullable: true },
      { name: 'name', type: { kind: 'primitive', name: 'string' }, nullable: true },
    ] as const;
    const bad = await DeltaTableWriter.create(path.join(tmp, 'null_keys'), { columns: [...columns] });
    await bad.append([{ account_id: 1n, name: 'a' }, { account_id: null, name: 'b' }]);
    const ok = await DeltaTableWriter.create(path.join(tmp, 'ok_keys'), { columns: [...columns] });
    await ok.append([{ account_id: 1n, name: 'a' }, { account_id: 2n, name: 'b' }]);
    const mapping = (name: string, table: string): Mapping =>
      parseMapping({ name, source: { type: 'delta', path: path.join(tmp, table) }, target: { connection: 'sandbox', schema: 'public', table }, key: ['account_id'] });
    nullKeys = mapping('null-keys', 'null_keys');
    good = mapping('ok-keys', 'ok_keys');
  });
  after(async () => {
    await engine.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** What the command and the Preview's Apply run (MappingsCommands.startRun): the mapping through the RunController. */
  async function failedCommandRun(runs: RunController, m: Mapping): Promise<unknown> {
    try {
      await runs.start(m.name, 'initial', (signal, onEvent) => engine.withRunner(m, async (h) => void (await h.runner.run({ mode: 'initial', signal, onEvent }))));
    } catch (e) {
      return e;
    }
    assert.fail(`${m.name} did not fail`);
  }

  it('a run started by a command (palette or tree) that fails: the toast names the mapping and its table, and Open Setting opens deadLetter in the mapping file', async () => {
    const runs = new RunController();
    const error = await failedCommandRun(runs, nullKeys);
    assert.equal(runs.current().status, 'failed'); // what Show Progress opens on
    const failure: RunFailure = { origin: 'command', mapping: nullKeys.name, file: file(nullKeys), what: 'initial load', error };
    const ui = new RecordingUi('Open Setting');
    await notifyRunFailed(ui, failure);
    assert.equal(ui.toasts.length, 1);
    const toast = ui.toasts[0]!;
    assert.deepEqual(toast.actions, ['Show Progress', 'Open Setting', 'Show Log']);
    assert.match(toast.text, /^initial load of null-keys failed: /);
    assert.match(toast.text, /account_id/);
    assert.deepEqual(ui.settings, [{ setting: { scope: 'mapping', key: 'deadLetter' }, file: file(nullKeys) }]);

    const progress = new RecordingUi('Show Progress');
    await notifyRunFailed(progress, failure);
    assert.deepEqual(progress.progress, ['null-keys']);
    const log = new RecordingUi('Show Log');
    await notifyRunFailed(log, failure);
    assert.equal(log.logs, 1);
    assert.deepEqual([...progress.settings, ...log.settings, ...log.progress], []);
  });

  it('an Apply from the Preview that fails says so in its own words, with the same buttons', async () => {
    const error = await failedCommandRun(new RunController(), nullKeys);
    const notice = failureNotice({ origin: 'preview', mapping: nullKeys.name, file: file(nullKeys), error });
    assert.ok(notice);
    assert.match(notice.text, /^applying the preview of null-keys failed: /);
    assert.deepEqual(notice.actions, ['Show Progress', 'Open Setting', 'Show Log']);
  });

  it('a continuous sync stopped by an error notifies with Show Progress on its mapping and Open Setting', async () => {
    const watches = new ContinuousSyncs({ openTarget: (c) => engine.openTarget(c), openRunner: (m, t) => engine.openRunnerOn(m, t) });
    const stopped = new Promise<RunFailure>((resolve) => {
      watches.subscribe({ onStopped: (st, error) => (error ? resolve(continuousFailure(st, error)) : undefined) });
    });
    const { done } = watches.start(file(nullKeys), nullKeys, { mode: 'follow', intervalMs: 1_000 });
    const failure = await stopped;
    await done;
    await watches.dispose();
    const ui = new RecordingUi('Show Progress');
    await notifyRunFailed(ui, failure);
    assert.match(ui.toasts[0]?.text ?? '', /^continuous sync of null-keys stopped: .*account_id/);
    assert.deepEqual(ui.toasts[0]?.actions, ['Show Progress', 'Open Setting', 'Show Log']);
    assert.deepEqual(ui.progress, ['null-keys']);
    assert.equal(failure.file, file(nullKeys));
  });

  it('Sync All with a failed mapping notifies on that mapping: the summary, its error, Show Progress on it and its setting', async () => {
    const outcomes = await syncAllMappings([{ mapping: good }, { mapping: nullKeys }], { openTarget: (c) => engine.openTarget(c), openRunner: (m, t) => engine.openRunnerOn(m, t) }, {});
    const summary = syncAllSummary(outcomes);
    const failure = syncAllFailure(outcomes, summary, new Map([[good.name, file(good)], [nullKeys.name, file(nullKeys)]]));
    assert.ok(failure, 'no failure for a Sync All where null-keys failed');
    const ui = new RecordingUi('Open Setting');
    await notifyRunFailed(ui, failure);
    assert.match(ui.toasts[0]?.text ?? '', /^Sync All: 2 mappings: 1 succeeded, 1 failed \(null-keys\).*\. null-keys failed: .*account_id/);
    assert.deepEqual(ui.toasts[0]?.actions, ['Show Progress', 'Open Setting', 'Show Log']);
    assert.deepEqual(ui.settings, [{ setting: { scope: 'mapping', key: 'deadLetter' }, file: file(nullKeys) }]);
    // Everything succeeded (the good mapping again, up to date): no failure notice.
    const again = await syncAllMappings([{ mapping: good }], { openTarget: (c) => engine.openTarget(c), openRunner: (m, t) => engine.openRunnerOn(m, t) }, {});
    assert.equal(syncAllFailure(again, syncAllSummary(again), new Map()), undefined);
  });

  it('an error that names no setting the editor opens has no Open Setting; a cancel shows no toast; a deltaSync.* setting opens without a file', async () => {
    const connection = new SyncError('target', 'Postgres gave up waiting for a lock', { setting: 'lock_timeout' });
    assert.deepEqual(failureNotice({ origin: 'command', mapping: 'm', file: '/m.json', error: connection })?.actions, ['Show Progress', 'Show Log']);
    assert.equal(failureNotice({ origin: 'command', mapping: 'm', error: new SyncError('cancelled', 'Stopped by the user.') }), undefined);
    const vscodeSetting = new SyncError('usage', 'No Delta folder is configured.', { setting: 'deltaSync.deltaFolders' });
    const notice = failureNotice({ origin: 'command', mapping: 'm', error: vscodeSetting });
    assert.deepEqual(notice?.setting, { scope: 'vscode', key: 'deltaSync.deltaFolders' });
    assert.deepEqual(notice?.actions, ['Show Progress', 'Open Setting', 'Show Log']);
    // A Sync All stopped by the user: the mapping it stopped is no failure to notify.
    assert.equal(syncAllFailure([{ name: 'm', status: 'failed', error: new SyncError('cancelled', 'Stopped by the user.') }], 'x', new Map()), undefined);
    // A mapping key without the mapping's file: nothing to open.
    assert.deepEqual(failureNotice({ origin: 'command', mapping: 'm', error: new SyncError('mapping', 'x', { setting: 'schemaDrift' }) })?.actions, ['Show Progress', 'Show Log']);
  });
});
