import * as vscode from 'vscode';
import * as path from 'node:path';
import { watchBarLook, watchPhrase } from '../engine/ContinuousSyncs';
import type { WatchStatus } from '../engine/ContinuousSyncs';
import { syncAllMappings, syncAllSummary } from '../engine/syncAllMappings';
import { SyncError } from '../sync/errors';
import { formatDuration, parseDuration } from '../sync/run/duration';
import { registerCommand } from './commandRegistry';
import type { MappingNode } from './MappingsModel';
import { failureUi, historyOf, mappingFrom } from './MappingsCommands';
import { continuousFailure, notifyRunFailed, syncAllFailure, type RunFailure } from './runFailure';
import { ProgressPanel } from './ProgressPanel';
import type { Services } from './Services';
import { errorText } from './toProtocolError';

type ValidMapping = MappingNode & { kind: 'mapping' };

/** The poll floor of Start Continuous Sync: a local table wakes on its `_delta_log` sooner. */
const WATCH_INTERVAL_MS = 1_000;

/**
 * The status bar item of the continuous syncs (state, last version, lag); a click opens the
 * Progress panel with the watched mapping's runs. Hidden while nothing is watched, except
 * after an error stopped a watch (until the next one starts).
 */
class WatchStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('deltaSync.watch', vscode.StatusBarAlignment.Left, 49);
  private readonly sub: { dispose(): void };
  private last: WatchStatus | undefined;

  constructor(private readonly s: Services) {
    this.item.name = 'Delta Sync: Continuous Sync';
    this.item.command = 'deltaSync.watch.showProgress';
    this.sub = s.watches.subscribe({
      onChange: (st) => {
        this.last = st;
        this.render();
      },
    });
  }

  private render(): void {
    const look = watchBarLook(this.s.watches.list(), this.last);
    this.item.text = look.text;
    this.item.tooltip = look.tooltip;
    this.item.backgroundColor = look.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    this.item.accessibilityInformation = { label: look.text.replace(/\$\([^)]*\)\s*/g, ''), role: 'button' };
    if (look.visible) this.item.show();
    else this.item.hide();
  }

  /** The mapping the item is about: the one watch, else the last that changed. */
  mappingShown(): string | undefined {
    const list = this.s.watches.list();
    return list.length === 1 ? list[0]?.mapping : this.last?.mapping;
  }

  dispose(): void {
    this.sub.dispose();
    this.item.dispose();
  }
}

/** After an applied run: the mapping's status, the target tables (row counts), the log. */
function followWatches(s: Services): { dispose(): void } {
  return s.watches.subscribe({
    onChange: () => s.mappings.refresh(),
    onApplied: (st, r) => {
      const range = r.fromVersion === null || r.fromVersion === r.toVersion ? `v${r.toVersion}` : `v${r.fromVersion}..v${r.toVersion}`;
      s.log.info(`${st.mapping}: ${r.mode} ${range}: ${r.inserted} inserted, ${r.updated} updated, ${r.deleted} deleted${st.lagMs === null ? '' : ` (lag ${formatDuration(st.lagMs)})`}`);
      s.mappingsModel.invalidate(st.key);
      s.mappings.refresh();
      s.targets.refresh();
    },
    onEvent: (key, e) => {
      if (e.type === 'warning') s.log.warn(`${path.basename(key, '.json')}: ${e.message}`);
    },
    onStopped: (st, error) => {
      s.mappingsModel.invalidate(st.key);
      s.mappings.refresh();
      if (!error) {
        s.log.info(`${st.mapping}: continuous sync stopped${st.lastVersion === null ? '' : ` at v${st.lastVersion}`}`);
        return;
      }
      s.log.error(`${st.mapping}: continuous sync stopped: ${error.describe()}`);
      void notifyRunFailed(failureUi(s), continuousFailure(st, error));
    },
  });
}

function start(s: Services, node: ValidMapping, mode: 'follow' | 'schedule', intervalMs: number): void {
  s.watches.start(node.file, node.mapping, { mode, intervalMs });
  s.log.info(
    mode === 'follow'
      ? `${node.mapping.name}: continuous sync started (checked at least every ${formatDuration(intervalMs)})`
      : `${node.mapping.name}: a sync every ${formatDuration(intervalMs)} while VS Code is open`,
  );
}

/** The watch a Stop applies to: the tree row's, the only one, or one picked. */
async function watchToStop(s: Services, arg: unknown): Promise<WatchStatus | undefined> {
  const node = arg as MappingNode | undefined;
  const list = s.watches.list();
  if (node && typeof node === 'object' && node.kind === 'mapping') {
    const w = s.watches.get(node.file);
    if (!w) throw new SyncError('usage', `${node.mapping.name} is not synced continuously.`, { hint: 'Start it with "Delta Sync: Start Continuous Sync".' });
    return w;
  }
  if (list.length === 0) throw new SyncError('usage', 'No continuous sync is running.', { hint: 'Start one with "Delta Sync: Start Continuous Sync" on a mapping.' });
  if (list.length === 1) return list[0];
  const pick = await vscode.window.showQuickPick(
    list.map((w) => ({ label: w.mapping, description: watchPhrase(w), key: w.key })),
    { title: 'Stop which continuous sync?' },
  );
  return pick ? s.watches.get(pick.key) : undefined;
}

async function syncAll(s: Services): Promise<void> {
  const nodes = await s.mappingsModel.children();
  const valid = nodes.filter((n): n is ValidMapping => n.kind === 'mapping');
  const invalid = nodes.filter((n) => n.kind === 'invalid').length;
  if (valid.length === 0) throw new SyncError('usage', 'No valid mapping in this workspace.', { hint: 'Create one with "Delta Sync: Create Mapping".' });
  let summary = '';
  let failed = false;
  // Set inside the run's callback; an object so the reads after it are not narrowed away.
  const found: { failure?: RunFailure } = {};
  ProgressPanel.show(s.extensionUri, s.log, s.runs);
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Delta Sync: Sync All (${valid.length} mappings)`, cancellable: true },
    async (progress, token) => {
      const cancel = token.onCancellationRequested(() => s.runs.stop());
      try {
        await s.runs.start('all mappings', 'incremental', async (signal, onEvent) => {
          const outcomes = await syncAllMappings(
            valid.map((n) => ({ mapping: n.mapping, file: n.file })),
            { openTarget: (c) => s.engine.openTarget(c), openRunner: (m, t) => s.engine.openRunnerOn(m, t) },
            {
              signal,
              onEvent,
              onOutcome: (o) => {
                progress.report({ message: `${o.name}: ${o.status}` });
                if (o.status === 'succeeded') s.log.info(`Sync All: ${o.name}: ${o.result.status === 'up-to-date' ? `up to date at v${o.result.toVersion}` : `${o.result.mode} to v${o.result.toVersion}: ${o.result.inserted} inserted, ${o.result.updated} updated, ${o.result.deleted} deleted`}`);
                else if (o.status === 'failed') s.log.error(`Sync All: ${o.name}: ${o.error.describe()}`);
                else s.log.warn(`Sync All: ${o.name}: skipped: ${o.reason}`);
              },
            },
          );
          summary = syncAllSummary(outcomes, invalid);
          failed = outcomes.some((o) => o.status !== 'succeeded') || invalid > 0;
          found.failure = syncAllFailure(outcomes, summary, new Map(valid.map((n) => [n.mapping.name, n.file])));
          // A failed mapping fails the whole run, so the Progress panel shows Sync All failed, with that error.
          if (found.failure) throw found.failure.error;
        });
      } catch (e) {
        // Said below, once, by the failed-run notification.
        if (found.failure === undefined || e !== found.failure.error) throw e;
      } finally {
        cancel.dispose();
      }
    },
  );
  s.mappingsModel.invalidate();
  s.mappings.refresh();
  s.targets.refresh();
  if (!summary) return; // stopped before any outcome
  s.log.info(`Sync All: ${summary}`);
  // A mapping failed: the one failed-run notification, on the first failed mapping's run and setting.
  if (found.failure) {
    await notifyRunFailed(failureUi(s), found.failure);
    return;
  }
  const text = `Delta Sync: Sync All: ${summary}`;
  const choice = failed ? await vscode.window.showWarningMessage(text, 'Show Log') : await vscode.window.showInformationMessage(text, 'Show Log');
  if (choice === 'Show Log') s.log.show(true);
}

/** Start / Stop Continuous Sync, Run Every…, Sync All, and the status bar item; watches stop on deactivate. */
export function registerContinuousSyncCommands(s: Services): vscode.Disposable[] {
  const bar = new WatchStatusBar(s);
  return [
    bar,
    followWatches(s),
    s.watches.subscribe({ onChange: () => void vscode.commands.executeCommand('setContext', 'deltaSync.watching', s.watches.list().length > 0) }),
    registerCommand('deltaSync.mappings.startWatch', async (arg) => {
      start(s, await mappingFrom(arg, s), 'follow', WATCH_INTERVAL_MS);
    }, s.log),
    registerCommand('deltaSync.mappings.runEvery', async (arg) => {
      const node = await mappingFrom(arg, s);
      const text = await vscode.window.showInputBox({
        title: `Run ${node.mapping.name} every…`,
        prompt: 'A sync on a timer while VS Code is open (e.g. 30s, 5m, 1h). For headless runs use cron or a systemd timer with `delta-neon-sync sync --every`.',
        value: '5m',
        validateInput: (v) => {
          try {
            parseDuration(v, 'The interval');
            return undefined;
          } catch (e) {
            return errorText(e);
          }
        },
      });
      if (text === undefined) return;
      start(s, node, 'schedule', parseDuration(text, 'The interval'));
    }, s.log),
    registerCommand('deltaSync.mappings.stopWatch', async (arg) => {
      const w = await watchToStop(s, arg);
      if (w) await s.watches.stop(w.key);
    }, s.log),
    registerCommand('deltaSync.mappings.syncAll', () => syncAll(s), s.log),
    registerCommand('deltaSync.watch.showProgress', async () => {
      const panel = ProgressPanel.show(s.extensionUri, s.log, s.runs);
      const name = bar.mappingShown();
      const node = (await s.mappingsModel.children()).find((n): n is ValidMapping => n.kind === 'mapping' && n.mapping.name === name);
      if (!node) return;
      try {
        panel.showHistory(historyOf(node.mapping.name, await s.engine.withRunner(node.mapping, (h) => h.runner.status(), { shareSource: true })));
      } catch (e) {
        s.log.warn(`could not read the run history of ${node.mapping.name}: ${errorText(e)}`);
      }
    }, s.log),
  ];
}
