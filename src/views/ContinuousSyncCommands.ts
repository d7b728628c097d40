import * as vscode from 'vscode';
import * as path from 'node:path';
import { watchBarLook, watchPhrase } from '../engine/ContinuousSyncs';
import type { WatchStatus } from '../engine/ContinuousSyncs';
import { runSyncAll, syncAllMappingsOf } from './runSyncAll';
import { SyncError } from '../sync/errors';
import { formatDuration, parseDuration } from '../sync/run/duration';
import { registerCommand } from './commandRegistry';
import type { MappingNode } from './MappingsModel';
import { afterRun, confirmDeleteAnyway, failureUi, historyOf, mappingFrom, showHistoryOf } from './MappingsCommands';
import { isMassDeleteRefusal, resumeWatchAllowingOnce } from '../engine/deleteAnyway';
import { continuousFailure, notifyRunFailed, syncAllFailure } from './runFailure';
import { ProgressPanel } from './ProgressPanel';
import type { Services } from './Services';
import { errorText } from './toProtocolError';

type ValidMapping = MappingNode & { kind: 'mapping' };

/** The poll floor of Start Continuous Sync on a local table, which wakes on its `_delta_log` sooner. */
const WATCH_INTERVAL_MS = 1_000;

/** Start Continuous Sync's poll interval: a Databricks table's polls use its SQL warehouse, so they are rarer (a setting). */
function followIntervalMs(s: Services, node: ValidMapping): number {
  return node.mapping.source.type === 'databricks' ? s.settings.continuousDatabricksPollSeconds() * 1000 : WATCH_INTERVAL_MS;
}

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
      if (isMassDeleteRefusal(error)) {
        void offerDeleteAnyway(s, st, error);
        return;
      }
      void notifyRunFailed(failureUi(s), continuousFailure(st, error));
    },
  });
}

/**
 * A watch the delete guard stopped: the same modal as a refused run; Delete Anyway starts the
 * watch again (same mode and interval) with its first run allowed to delete. The mapping is
 * read again from its file, so a raised safety.maxDeleteShare counts.
 */
async function offerDeleteAnyway(s: Services, st: WatchStatus, error: SyncError): Promise<void> {
  try {
    const node = (await s.mappingsModel.children()).find((n): n is ValidMapping => n.kind === 'mapping' && n.file === st.key);
    if (!node) throw error;
    const resumed = await resumeWatchAllowingOnce(s.watches, st, error, node.mapping, confirmDeleteAnyway);
    if (resumed) s.log.info(`${st.mapping}: continuous sync resumed; its first run may delete past safety.maxDeleteShare (Delete Anyway)`);
  } catch (e) {
    s.log.error(`${st.mapping}: ${errorText(e)}`);
    void vscode.window.showErrorMessage(`Delta Sync: continuous sync of ${st.mapping} stopped: ${errorText(e)}`, 'Show Log').then((choice) => {
      if (choice === 'Show Log') s.log.show(true);
    });
  }
}

function start(s: Services, node: ValidMapping, mode: 'follow' | 'schedule', intervalMs: number): void {
  s.watches.start(node.file, node.mapping, { mode, intervalMs });
  const dbx = node.mapping.source.type === 'databricks';
  s.log.info(
    mode === 'follow'
      ? dbx
        ? `${node.mapping.name}: continuous sync started (polled every ${formatDuration(intervalMs)}, deltaSync.continuous.databricksPollSeconds: a state check of the SQL warehouse over REST, then, while it runs, one DESCRIBE HISTORY ... LIMIT 1 on it; ${s.settings.continuousWakeWarehouse() ? 'deltaSync.continuous.wakeWarehouse is on: a poll starts a stopped warehouse' : 'a stopped warehouse is not started by a poll (deltaSync.continuous.wakeWarehouse lets it)'})`
        : `${node.mapping.name}: continuous sync started (checked at least every ${formatDuration(intervalMs)})`
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
  const { valid } = syncAllMappingsOf(nodes); // no valid mapping: the usage error, before any panel opens
  const panel = ProgressPanel.show(s.extensionUri, s.log, s.runs);
  const done = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Delta Sync: Sync All (${valid.length} mappings)`, cancellable: true },
    async (progress, token) => {
      const cancel = token.onCancellationRequested(() => s.runs.stop());
      try {
        return await runSyncAll(nodes, {
          runs: s.runs,
          open: { openTarget: (c) => s.engine.openTarget(c), openRunner: (m, t) => s.engine.openRunnerOn(m, t) },
          log: s.log,
          report: (message) => progress.report({ message }),
          // The panel shows the past runs of the mapping that runs, never another's.
          onMappingStart: (node) => void showHistoryOf(s, node, panel),
          onMappingEnd: (node) => void afterRun(s, node),
        });
      } finally {
        cancel.dispose();
      }
    },
  );
  s.mappingsModel.invalidate();
  s.mappings.refresh();
  s.targets.refresh();
  if (!done) return; // stopped before the summary
  // A mapping failed: the one failed-run notification, on the first failed mapping's run and setting.
  const failure = syncAllFailure(done.outcomes, done.summary, new Map(valid.map((n) => [n.mapping.name, n.file])));
  if (failure) {
    await notifyRunFailed(failureUi(s), failure);
    return;
  }
  const { severity, text } = done.toast;
  const choice = severity === 'warning' ? await vscode.window.showWarningMessage(text, 'Show Log') : await vscode.window.showInformationMessage(text, 'Show Log');
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
      const node = await mappingFrom(arg, s);
      start(s, node, 'follow', followIntervalMs(s, node));
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
        panel.showHistory(historyOf(node.mapping.name, await s.engine.withRunner(node.mapping, (h) => h.runner.status(), { shareSource: true, deferConnect: true })));
      } catch (e) {
        s.log.warn(`could not read the run history of ${node.mapping.name}: ${errorText(e)}`);
      }
    }, s.log),
  ];
}
