import * as vscode from 'vscode';
import * as path from 'node:path';
import type { RunHistory } from '../protocol/messages';
import { SyncError, isSyncError } from '../sync/errors';
import type { Mapping } from '../sync/mapping/mappingSchema';
import type { SyncMode } from '../sync/ports/events';
import type { PipelineStatus, RepairReport, RunResult } from '../sync/ports/reports';
import { isNeonReference } from '../sync/mapping/neonReference';
import { openSettingInEditor, registerCommand } from './commandRegistry';
import { createMappingFlow } from './createMappingFlow';
import type { MappingNode } from './MappingsModel';
import { runPreviewOnBranch } from './NeonPreviewCommands';
import { PreviewPanel } from './PreviewPanel';
import { computeThenShow, FIRST_PAGE_WAIT_MS } from './previewShowing';
import { ProgressPanel } from './ProgressPanel';
import { previewColumns, RunnerPreviewSource, toPreviewRow } from './RunnerPreviewSource';
import { RepairPreviewSource } from './RepairPreviewSource';
import type { Services } from './Services';
import { isMissingChanges } from '../sync/run/repairPhase';
import { ReportPanel } from './ReportPanel';
import { dryRunReport, syncHistoryReport } from './reports';
import { errorText, logText } from './toProtocolError';
import { DELETE_ANYWAY, deleteAnywayQuestion, runAllowingOnce } from '../engine/deleteAnyway';
import type { DeleteAnywayQuestion } from '../engine/deleteAnyway';
import { aboutMappingFile } from './settingLocation';
import { notifyRunFailed, SHOW_LOG, SHOW_PROGRESS, type FailureUi, type RunOrigin } from './runFailure';

type ValidMapping = MappingNode & { kind: 'mapping' };

export async function mappingFrom(arg: unknown, s: Services): Promise<ValidMapping> {
  const node = arg as MappingNode | undefined;
  if (node && typeof node === 'object' && node.kind === 'mapping') return node;
  const valid = (await s.mappingsModel.children()).filter((n): n is ValidMapping => n.kind === 'mapping');
  if (valid.length === 0) throw new SyncError('usage', 'No valid mapping in this workspace.', { hint: 'Create one with "Delta Sync: Create Mapping".' });
  if (valid.length === 1) return valid[0] as ValidMapping;
  const pick = await vscode.window.showQuickPick(
    valid.map((n) => ({ label: n.mapping.name, description: n.file, node: n })),
    { title: 'Select a mapping' },
  );
  if (!pick) throw new SyncError('cancelled', 'No mapping selected.');
  return pick.node;
}

type InvalidWithSetting = Extract<MappingNode, { kind: 'invalid' }> & { setting: NonNullable<Extract<MappingNode, { kind: 'invalid' }>['setting']> };

/**
 * Open Setting of an invalid mapping's row: that row, or (from the palette) one of the
 * invalid mappings whose error names a key of its file, picked when there are several.
 */
async function invalidMappingWithSetting(arg: unknown, s: Services): Promise<InvalidWithSetting> {
  const node = arg as MappingNode | undefined;
  const has = (n: MappingNode | undefined): n is InvalidWithSetting => n !== undefined && typeof n === 'object' && n.kind === 'invalid' && n.setting !== undefined;
  if (has(node)) return node;
  const candidates = (await s.mappingsModel.children()).filter(has);
  if (candidates.length === 0) throw new SyncError('usage', 'No mapping file has an error that names a setting.', { hint: 'Open Setting applies to a mapping shown as invalid in the Mappings view.' });
  if (candidates.length === 1) return candidates[0] as InvalidWithSetting;
  const pick = await vscode.window.showQuickPick(
    candidates.map((n) => ({ label: path.basename(n.file), description: n.setting.key, detail: n.error.split('\n')[0], node: n })),
    { title: 'Open the setting an invalid mapping names' },
  );
  if (!pick) throw new SyncError('cancelled', 'No mapping selected.');
  return pick.node;
}

/**
 * A command on one mapping: the tree's row or one picked (mappingFrom). Its failure is
 * noted as about that mapping's file, so the command wrapper's toast can open the setting
 * the error names in it (Open Setting) also when the mapping was picked in the palette.
 */
function onMapping(s: Services, fn: (node: ValidMapping) => Promise<unknown>): (arg: unknown) => Promise<unknown> {
  return async (arg) => {
    const node = await mappingFrom(arg, s);
    try {
      return await fn(node);
    } catch (e) {
      throw aboutMappingFile(e, node.file);
    }
  };
}

/**
 * Runs `fn` with an AbortSignal that follows a CancellationToken. Whatever the reader
 * throws once cancelled (an AbortError, the signal's reason) becomes SyncError
 * 'cancelled', which the command wrapper logs without a toast.
 */
async function cancellable<T>(token: vscode.CancellationToken, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  const sub = token.onCancellationRequested(() => abort.abort(new SyncError('cancelled', 'Cancelled by the user.')));
  try {
    return await fn(abort.signal);
  } catch (e) {
    if (abort.signal.aborted) throw new SyncError('cancelled', 'Cancelled by the user.', { cause: e });
    throw e;
  } finally {
    sub.dispose();
  }
}

/** Rows of the plan a Dry Run panel lists (the Preview pages through all of them). */
const DRY_RUN_PLAN_ROWS = 1000;

export function historyOf(mapping: string, status: PipelineStatus): RunHistory {
  return { mapping, runs: status.runs.slice(0, 100) };
}

function describeResult(name: string, r: RunResult): string {
  if (r.status === 'up-to-date') return `${name} is up to date at version ${r.toVersion}.${r.appliedByOthers ? ` Nothing done by this run: ${r.appliedByOthers.message}` : ''}`;
  // From the checkpoint the target held (the version before the first one read), as the Progress panel says it.
  const range = r.fromVersion === null ? `of snapshot v${r.toVersion}` : `from checkpoint v${r.fromVersion - 1} to v${r.toVersion}`;
  const n = (x: number): string => x.toLocaleString('en-US');
  return `${name}: ${r.mode} sync ${range} done: ${n(r.inserted)} inserted, ${n(r.updated)} updated, ${n(r.deleted)} deleted.`;
}

/** Refreshes everything a run or a status change shows: the mapping's status, target tables, history. */
export async function afterRun(s: Services, node: ValidMapping): Promise<void> {
  s.mappingsModel.invalidate(node.file);
  s.mappings.refresh();
  s.targets.refresh();
  try {
    const status = await s.engine.withRunner(node.mapping, (h) => h.runner.status(), { deferConnect: true });
    ProgressPanel.current?.showHistory(historyOf(node.mapping.name, status));
  } catch (e) {
    s.log.warn(`could not read the run history of ${node.mapping.name}: ${errorText(e)}`);
  }
}

/**
 * Puts this mapping's past runs under the run about to start (the panel never shows another
 * mapping's history under it): the tree's cached status when it has one, else read now,
 * before the run takes the pipeline's run lease.
 */
export async function showHistoryOf(s: Services, node: ValidMapping, panel: ProgressPanel): Promise<void> {
  const cached = node.status?.state === 'ok' ? node.status.status : undefined;
  try {
    const status = cached ?? (await s.engine.withRunner(node.mapping, (h) => h.runner.status(), { deferConnect: true }));
    panel.showHistory(historyOf(node.mapping.name, status));
  } catch (e) {
    // The run itself reports what is wrong with the target; the panel shows no other mapping's history meanwhile.
    s.log.warn(`could not read the run history of ${node.mapping.name}: ${errorText(e)}`);
  }
}

/**
 * Runs a sync through the RunController (one at a time), with the Progress panel and a
 * cancellable notification; Stop (panel, command, notification) aborts through one signal.
 * A failure is said where the run was started (`origin`), through the one failed-run
 * notification (runFailure.ts: Show Progress, Open Setting, Show Log), and logged; it does
 * not reject, so no caller shows it a second time.
 */
export async function startRun(s: Services, node: ValidMapping, mode: SyncMode, origin: RunOrigin = 'command', toVersion?: number): Promise<void> {
  try {
    await runGuarded(s, node, mode, toVersion);
  } catch (e) {
    if (isSyncError(e) && e.kind === 'cancelled') s.log.info(`${node.mapping.name}: cancelled`);
    else s.log.error(`${node.mapping.name}: ${logText(e)}`);
    // Not awaited: the command ends now; the toast waits for the user.
    void notifyRunFailed(failureUi(s), { origin, mapping: node.mapping.name, file: node.file, what: mode === 'initial' ? 'initial load' : 'incremental sync', error: e });
  }
}

/** The sync with its two second chances: a refused mass delete allowed once (Delete Anyway), a repair offered when the changes are gone. */
async function runGuarded(s: Services, node: ValidMapping, mode: SyncMode, toVersion?: number): Promise<void> {
  try {
    // Safe deletes: a run refused before it wrote may be allowed once (Delete Anyway).
    await runAllowingOnce((allow) => runOnce(s, node, mode, toVersion, allow), (e) => confirmDeleteAnyway(deleteAnywayQuestion('run', node.mapping.name, e)));
  } catch (e) {
    // The Change Data Feed the sync needs is gone (vacuumed, CDF off): offer the repair by checksums.
    if (isMissingChanges(e)) {
      s.log.error(`${node.mapping.name}: ${errorText(e)}`);
      const choice = await vscode.window.showErrorMessage(`Delta Sync: ${e.message}`, { detail: 'Verify & Repair compares the target with the latest snapshot by checksums and repairs only the rows that differ (or set "onMissingChanges": "repair" in the mapping).' }, 'Repair Now', SHOW_PROGRESS, SHOW_LOG);
      if (choice === 'Repair Now') await verifyAndRepair(s, node);
      if (choice === SHOW_PROGRESS) await failureUi(s).showProgress(node.mapping.name);
      if (choice === SHOW_LOG) s.log.show(true);
      return;
    }
    throw e;
  }
}

/** The modal of a refused mass delete (src/engine/deleteAnyway.ts words it); true on Delete Anyway. */
export async function confirmDeleteAnyway(q: DeleteAnywayQuestion): Promise<boolean> {
  return (await vscode.window.showWarningMessage(q.text, { modal: true, detail: q.detail }, DELETE_ANYWAY)) === DELETE_ANYWAY;
}

/**
 * The failed-run notification's actions in the editor: the Progress panel with the
 * mapping's runs (the RunController's snapshot of the failed run stays in it until the next
 * run), the mapping file with the cursor on the setting (or `deltaSync.*` in the Settings
 * editor), the log.
 */
export function failureUi(s: Services): FailureUi {
  return {
    error: (text, ...actions) => Promise.resolve(vscode.window.showErrorMessage(`Delta Sync: ${text}`, ...actions)),
    showLog: () => s.log.show(true),
    showProgress: async (mapping) => {
      const panel = ProgressPanel.show(s.extensionUri, s.log, s.runs);
      const node = (await s.mappingsModel.children()).find((n): n is ValidMapping => n.kind === 'mapping' && n.mapping.name === mapping);
      if (!node) return;
      try {
        panel.showHistory(historyOf(mapping, await s.engine.withRunner(node.mapping, (h) => h.runner.status(), { shareSource: true, deferConnect: true })));
      } catch (e) {
        s.log.warn(`could not read the run history of ${mapping}: ${errorText(e)}`);
      }
    },
    openSetting: openSettingInEditor,
  };
}

async function runOnce(s: Services, node: ValidMapping, mode: SyncMode, toVersion: number | undefined, allowMassDelete: boolean): Promise<void> {
  const name = node.mapping.name;
  const panel = ProgressPanel.show(s.extensionUri, s.log, s.runs);
  await showHistoryOf(s, node, panel);
  let result: RunResult | undefined;
  try {
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Delta Sync: ${mode === 'initial' ? 'initial load' : 'incremental sync'} of ${name}`, cancellable: true },
      async (progress, token) => {
        const cancel = token.onCancellationRequested(() => s.runs.stop());
        let lastPct = 0;
        const sub = s.runs.onSnapshot((snap) => {
          const pct = snap.percent === null || snap.percent === undefined ? undefined : Math.floor(snap.percent);
          const increment = pct !== undefined && pct > lastPct ? pct - lastPct : undefined;
          if (pct !== undefined) lastPct = Math.max(lastPct, pct);
          progress.report({ message: `${snap.phase ?? snap.status} · ${snap.rowsApplied.toLocaleString('en-US')} rows applied`, increment });
        });
        try {
          await s.runs.start(name, mode, (signal, onEvent) =>
            s.engine.withRunner(node.mapping, async (h) => {
              s.log.info(`${name}: ${mode} run into ${h.target.label}`);
              const r = await h.runner.run({ mode, toVersion, signal, onEvent, ...(allowMassDelete ? { allowMassDelete: true } : {}) });
              result = r;
              s.log.info(describeResult(name, r));
              if (r.createdTableSql) s.log.info(`${name}: created the target table:\n${r.createdTableSql}`);
              for (const w of r.warnings) s.log.warn(`${name}: ${w}`);
            }),
            node.file,
          );
        } finally {
          sub.dispose();
          cancel.dispose();
        }
      },
    );
  } finally {
    await afterRun(s, node);
  }
  const done = result as RunResult | undefined; // assigned inside the run callback
  if (done) void vscode.window.showInformationMessage(`Delta Sync: ${describeResult(name, done)}`);
  else if (s.runs.current().status === 'cancelled') void vscode.window.showInformationMessage(`Delta Sync: ${name} stopped; the target keeps every committed batch.`);
}

/**
 * Verify & Repair: compares the target with the latest snapshot by checksums (read-only)
 * and opens the Preview panel on what differs (counts, the rows as any sync's preview lists
 * them); Apply runs the repair to that version through the RunController (Progress panel,
 * status bar, history show it as a "repair").
 */
async function verifyAndRepair(s: Services, node: ValidMapping): Promise<void> {
  const name = node.mapping.name;
  const { plan, columns } = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Delta Sync: comparing ${name} with its source by checksums`, cancellable: true },
    (_p, token) => cancellable(token, (signal) => s.engine.withRunner(node.mapping, async (h) => {
      const plan = await h.runner.repair({ dryRun: true, limit: REPAIR_PREVIEW_ROWS, signal });
      const key = node.mapping.key ?? Object.keys(plan.preview?.rows[0]?.key ?? {});
      return { plan, columns: plan.equal ? [] : await previewColumns(node.mapping, h.source, plan.version, key) };
    })),
  );
  const p = plan.planned;
  s.log.info(`${name}: verify at version ${plan.version}: ${p.insert} missing, ${p.update} differing, ${p.delete} extra (${plan.rowsReadBack} rows read back, ${plan.bytesRead} bytes from Postgres, snapshot read on the ${plan.readThread} thread)`);
  if (plan.equal) {
    void vscode.window.showInformationMessage(`Delta Sync: ${name} equals its source at version ${plan.version} (${plan.sourceRows} rows).`);
    return;
  }
  const source = new RepairPreviewSource(node.mapping, plan, columns, async (r) => {
    // Not awaited: the panel answers at once and the Progress panel shows the repair.
    void runAllowingOnce((allow) => startRepair(s, node, r.version, allow), (e) => confirmDeleteAnyway(deleteAnywayQuestion('repair', name, e))).catch(async (e: unknown) => {
      s.log.error(`${name}: ${logText(e)}`);
      await notifyRunFailed(failureUi(s), { origin: 'preview', mapping: name, file: node.file, error: e });
    });
  });
  PreviewPanel.pageSize = s.settings.previewPageSize();
  PreviewPanel.show(s.extensionUri, s.log, name, source);
}

/** Rows of a repair's preview listed in the panel (the counts are the whole repair's). */
const REPAIR_PREVIEW_ROWS = 1000;

/** Applies a repair to `version` through the RunController, with the Progress panel (the caller offers Delete Anyway on a refused mass delete). */
async function startRepair(s: Services, node: ValidMapping, version: number, allowMassDelete: boolean): Promise<void> {
  const name = node.mapping.name;
  const panel = ProgressPanel.show(s.extensionUri, s.log, s.runs);
  await showHistoryOf(s, node, panel);
  let report: RepairReport | undefined;
  try {
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Delta Sync: repairing ${name}`, cancellable: true },
      async (_progress, token) => {
        const cancel = token.onCancellationRequested(() => s.runs.stop());
        try {
          await s.runs.start(name, 'repair', (signal, onEvent) =>
            s.engine.withRunner(node.mapping, async (h) => {
              s.log.info(`${name}: repair to version ${version} into ${h.target.label}`);
              report = await h.runner.repair({ toVersion: version, signal, onEvent, ...(allowMassDelete ? { allowMassDelete: true } : {}) });
            }),
            node.file,
          );
        } finally {
          cancel.dispose();
        }
      },
    );
  } finally {
    await afterRun(s, node);
  }
  const r = report as RepairReport | undefined; // assigned inside the run callback
  if (!r) return;
  const a = r.result ?? { inserted: 0, updated: 0, deleted: 0, unchanged: 0 };
  s.log.info(`${name}: repaired to version ${r.version}: ${a.inserted} inserted, ${a.updated} updated, ${a.deleted} deleted in ${r.parts ?? 0} part(s); equal afterwards: ${r.equal}`);
  if (r.equal) void vscode.window.showInformationMessage(`Delta Sync: ${name} repaired to version ${r.version}: ${a.inserted} inserted, ${a.updated} updated, ${a.deleted} deleted.`);
  else void vscode.window.showWarningMessage(`Delta Sync: ${name} was repaired but still differs from version ${r.version} (was the table written to meanwhile?). Run Verify & Repair again.`);
}

/**
 * Computes the preview (read-only) and opens the Preview panel; Apply runs exactly that
 * plan. The progress notification lasts until the panel shows the counts and the first
 * page (see previewShowing.ts), so it never covers a preview already on screen.
 */
async function openPreview(s: Services, node: ValidMapping): Promise<void> {
  const mapping: Mapping = node.mapping;
  const pageSize = s.settings.previewPageSize();
  const h = await s.engine.openRunner(mapping);
  let keep = false;
  try {
    const started = Date.now();
    let computed = started;
    const showing = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Delta Sync: computing the preview of ${mapping.name}`, cancellable: true },
      (_p, token) =>
        cancellable(token, (signal) =>
          computeThenShow(
            async () => {
              // The pre-apply checks run once, with the first page; later pages skip them.
              const report = await h.runner.preview({ limit: pageSize, offset: 0, signal, checks: true });
              const key = mapping.key ?? Object.keys(report.rows[0]?.key ?? {});
              // The runner's own source: a Databricks source needs the saved connection, and one connection is enough.
              return { report, columns: await previewColumns(mapping, h.source, report.toVersion, key) };
            },
            ({ report, columns }) => {
              computed = Date.now();
              const range = report.fromVersion !== null && report.fromVersion > report.toVersion ? `up to date at v${report.toVersion}` : `v${report.fromVersion ?? '-'}..v${report.toVersion}`;
              s.log.info(`${mapping.name}: preview ${report.mode} ${range}: ${JSON.stringify(report.totals)}`);
              const source = new RunnerPreviewSource(
                mapping,
                report,
                columns,
                h.runner,
                async (r) => {
                  // Not awaited: the panel answers at once and the Progress panel shows the run; a
                  // failure is said where the user is, not only in the log.
                  void startRun(s, node, r.mode, 'preview', r.toVersion);
                },
                () => void h.release(),
                isNeonReference(mapping.target.connection)
                  ? () => void runPreviewOnBranch(s, node).catch((e: unknown) => {
                    s.log.error(`${mapping.name}: preview on a Neon branch: ${errorText(e)}`);
                    if (!(isSyncError(e) && e.kind === 'cancelled')) void vscode.window.showErrorMessage(`Delta Sync: ${errorText(e)}`);
                  })
                  : undefined,
                undefined,
                // The version picker: the plan recomputed up to another version, with that version's columns.
                { columnsAt: (v, key) => previewColumns(mapping, h.source, v, key), firstLimit: pageSize },
              );
              PreviewPanel.pageSize = pageSize;
              const panel = PreviewPanel.show(s.extensionUri, s.log, mapping.name, source);
              // From here the panel owns the runner (its source releases it when the panel closes).
              keep = true;
              return panel;
            },
            { signal, waitMs: FIRST_PAGE_WAIT_MS },
          ),
        ),
    );
    const after = `${Date.now() - computed} ms after the plan (computed in ${computed - started} ms)`;
    if (showing === 'timeout') s.log.warn(`${mapping.name}: the Preview panel did not show its first page within ${FIRST_PAGE_WAIT_MS / 1000} s of the plan; its progress notification ended then.`);
    else if (showing === 'shown') s.log.info(`${mapping.name}: the Preview shows its counts and first page ${after}.`);
    else if (showing === 'failed') s.log.info(`${mapping.name}: the Preview shows its counts and the error of its first page ${after}.`);
    else s.log.info(`${mapping.name}: the Preview was ${showing === 'closed' ? 'closed' : 'left to load (Cancel on its notification)'} before its first page, ${after}.`);
  } finally {
    if (!keep) await h.release();
  }
}

export function registerMappingsCommands(s: Services): vscode.Disposable[] {
  return [
    registerCommand('deltaSync.mappings.createMapping', async (arg) => {
      const file = await createMappingFlow(s, arg);
      if (!file) return;
      s.mappingsModel.invalidate(file);
      s.mappings.refresh();
      // The last step: offer the Preview of what an initial load would write.
      const name = path.basename(file, '.json');
      const choice = await vscode.window.showInformationMessage(`Delta Sync: mapping "${name}" written. Preview now?`, 'Preview');
      if (choice !== 'Preview') return;
      const node = (await s.mappingsModel.children()).find((n): n is ValidMapping => n.kind === 'mapping' && path.resolve(n.file) === path.resolve(file));
      if (!node) throw new SyncError('usage', `The mapping ${file} did not load.`, { hint: 'Open it and fix the problems it shows, then use Preview Changes.' });
      await openPreview(s, node);
    }, s.log),
    registerCommand('deltaSync.mappings.refresh', () => {
      // Asked for: reads every source, a stopped Databricks warehouse included (it starts).
      s.mappingsModel.invalidate(undefined, { wakeSource: true });
      s.mappings.refresh();
    }, s.log),
    registerCommand('deltaSync.mappings.openSetting', async (arg) => {
      const node = await invalidMappingWithSetting(arg, s);
      await openSettingInEditor(node.setting, node.file);
    }, s.log),
    registerCommand('deltaSync.mappings.openFile', async (arg) => {
      const node = await mappingFrom(arg, s);
      await vscode.window.showTextDocument(vscode.Uri.file(node.file));
    }, s.log),
    registerCommand('deltaSync.mappings.preview', onMapping(s, (node) => openPreview(s, node)), s.log),
    registerCommand('deltaSync.preview.apply', async () => {
      const p = PreviewPanel.current();
      if (!p) throw new SyncError('usage', 'No Preview is open.', { hint: 'Run "Delta Sync: Preview Changes" on a mapping first.' });
      await p.applyFromCommand();
    }, s.log),
    registerCommand('deltaSync.preview.cancel', async () => {
      const p = PreviewPanel.current();
      if (!p) throw new SyncError('usage', 'No Preview is open.');
      await p.cancelFromCommand();
    }, s.log),
    registerCommand('deltaSync.mappings.dryRun', onMapping(s, async (node) => {
      const { report, plan } = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Delta Sync: dry run of ${node.mapping.name}`, cancellable: true },
        (_p, token) =>
          cancellable(token, (signal) =>
            s.engine.withRunner(node.mapping, async (h) => {
              const report = await h.runner.dryRun({ signal });
              // The plan's first rows for the grid, pinned to the version the dry run applied.
              const p = await h.runner.preview({ limit: DRY_RUN_PLAN_ROWS, offset: 0, toVersion: report.toVersion, signal });
              const key = node.mapping.key ?? Object.keys(p.rows[0]?.key ?? {});
              const columns = await previewColumns(node.mapping, h.source, p.toVersion, key);
              return { report, plan: { columns, rows: p.rows.map((r) => toPreviewRow(r, columns)), total: p.matching } };
            }),
          ),
      );
      s.log.info(`${node.mapping.name}: dry run v${report.fromVersion}..v${report.toVersion}: ${report.result.inserted} inserts, ${report.result.updated} updates, ${report.result.deleted} deletes, ${report.result.rejected.length} rejected`);
      ReportPanel.show(s.extensionUri, s.log, dryRunReport(node.mapping.name, report, plan));
    }), s.log),
    registerCommand('deltaSync.mappings.verifyRepair', onMapping(s, (node) => verifyAndRepair(s, node)), s.log),
    registerCommand('deltaSync.mappings.runInitialLoad', async (arg) => {
      const node = await mappingFrom(arg, s);
      const ok = await vscode.window.showWarningMessage(
        `Run an initial load of ${node.mapping.name}? It replaces the rows of ${node.mapping.target.schema}.${node.mapping.target.table} with the current Delta snapshot.`,
        { modal: true },
        'Run Initial Load',
      );
      if (ok !== 'Run Initial Load') return;
      await startRun(s, node, 'initial');
    }, s.log),
    registerCommand('deltaSync.mappings.runIncremental', async (arg) => {
      await startRun(s, await mappingFrom(arg, s), 'incremental');
    }, s.log),
    registerCommand('deltaSync.mappings.copyGrants', onMapping(s, async (node) => {
      const report = await s.engine.withRunner(node.mapping, (h) => h.runner.requiredGrants());
      await vscode.env.clipboard.writeText(report.sql);
      const missing = report.rights.filter((r) => r.held === false && !r.conditional).length;
      void vscode.window.showInformationMessage(
        `Copied the GRANTs role ${report.role} needs to run ${node.mapping.name} (${missing === 0 ? 'it holds them all' : `${missing} missing`}). Run them as the database owner or an admin.`,
      );
    }), s.log),
    registerCommand('deltaSync.mappings.showHistory', onMapping(s, async (node) => {
      const status = await s.engine.withRunner(node.mapping, (h) => h.runner.status(), { deferConnect: true });
      ProgressPanel.current?.showHistory(historyOf(node.mapping.name, status));
      ReportPanel.show(s.extensionUri, s.log, syncHistoryReport(status));
    }), s.log),
    registerCommand('deltaSync.run.stop', () => {
      if (!s.runs.stop()) void vscode.window.showInformationMessage('Delta Sync: no sync is running.');
    }, s.log),
    registerCommand('deltaSync.run.showProgress', () => {
      ProgressPanel.show(s.extensionUri, s.log, s.runs);
    }, s.log),
    registerCommand('deltaSync.log.show', () => s.log.show(true), s.log),
  ];
}
