import * as vscode from 'vscode';
import { registerCommand } from './commandRegistry';
import type { Services } from './Services';
import { isSyncError, SyncError } from '../sync/errors';
import { isLakebaseReference } from '../sync/mapping/lakebaseReference';
import { classifyPgError } from '../sync/postgres/classifyPgError';
import { testPostgresConnection, type ConnectionTestResult } from '../sync/postgres/testConnection';
import { postgresConnectionForm, type ConnectionFormDeps } from './PostgresConnectionForm';
import { openLakebaseCatalog } from '../sync/lakebase/LakebaseCatalog';
import { lakebaseDatabaseForm, profileChoices, testLakebaseReference, type LakebaseFormDeps, type LakebaseProfileChoice } from './LakebaseDatabaseForm';
import { listDatabricksProfiles } from '../sync/lakebase/databricksProfiles';
import { vscodePrompter } from './vscodePrompter';
import { pickConnectionName, pickTreeNode } from './pickTreeNode';
import { neonDatabasePick, targetTablePick } from './targetPicks';
import { pageRows } from './targetTables';
import { TableRowsPanel } from './TableRowsPanel';
import { summarizeConnectionString, type TargetNode } from './TargetsModel';

/** A connection node, a name (from a message row or another command), or a pick (the palette). */
async function connectionName(s: Services, arg: unknown, title: string): Promise<string | undefined> {
  if (typeof arg === 'string') return arg;
  const node = arg as TargetNode | undefined;
  if (node?.kind === 'connection') return node.info.name;
  if (node?.kind === 'message' && node.connection) return node.connection;
  return pickConnectionName(vscodePrompter, s.targetsModel.connections().map((c) => c.name), title, 'Add one with "Delta Sync: Add Postgres Connection".');
}

/** Test Connection of a saved connection: postgres:// strings directly, lakebase: through the engine. */
async function testSaved(s: Services, name: string): Promise<ConnectionTestResult> {
  const url = await s.targetsModel.connectionString(name);
  return testUrl(s, url, name);
}

async function testUrl(s: Services, url: string, name?: string): Promise<ConnectionTestResult> {
  if (!isLakebaseReference(url.trim())) return testPostgresConnection(url);
  // A Lakebase reference needs a token: open it as a run would (a saved name resolves through the model).
  return testLakebaseReference((c, fn) => s.engine.withTarget(c, fn), name ?? url, summarizeConnectionString(url));
}

function formDeps(s: Services): ConnectionFormDeps {
  return {
    validateName: (n) => s.targetsModel.validateName(n),
    // An unsaved lakebase reference has no name the engine knows: test it as a reference.
    test: (url) => testUrl(s, url),
    save: async (name, url) => {
      await s.targetsModel.save(name, url);
      s.targets.refresh();
    },
  };
}

/** Saved Databricks connections first, then ~/.databrickscfg profiles of other names. */
async function lakebaseProfiles(s: Services): Promise<LakebaseProfileChoice[]> {
  const file = await listDatabricksProfiles(process.env).catch((e: unknown) => {
    s.log.warn(`Cannot read the Databricks config file: ${e instanceof Error ? e.message : String(e)}`);
    return [];
  });
  return profileChoices(s.databricks.list(), file);
}

function lakebaseFormDeps(s: Services): LakebaseFormDeps {
  return {
    validateName: (n) => s.targetsModel.validateName(n),
    profiles: () => lakebaseProfiles(s),
    // The same sign-in a lakebase: target uses: a saved Databricks connection, else the config file's profile.
    catalog: (profile) => openLakebaseCatalog(profile, { env: process.env, databricks: { lookup: s.databricks.lookup } }),
    test: (reference) => testUrl(s, reference),
    save: async (name, reference) => {
      await s.targetsModel.save(name, reference);
      s.targets.refresh();
    },
  };
}

function connectionSaved(s: Services, name: string, test: ConnectionTestResult): void {
  s.log.info(test.ok ? `Connection ${name} saved (${test.server}, ${test.serverVersion})` : `Connection ${name} saved although its test failed: ${test.problem.error.describe()}`);
}

export function registerTargetsCommands(s: Services): vscode.Disposable[] {
  return [
    registerCommand('deltaSync.targets.addPostgresConnection', async () => {
      const r = await postgresConnectionForm(vscodePrompter, formDeps(s));
      if (r) connectionSaved(s, r.name, r.test);
    }, s.log),
    registerCommand('deltaSync.targets.addLakebaseDatabase', async () => {
      const r = await lakebaseDatabaseForm(vscodePrompter, lakebaseFormDeps(s));
      if (r) connectionSaved(s, r.name, r.test);
    }, s.log),
    registerCommand('deltaSync.targets.editConnection', async (arg) => {
      const name = await connectionName(s, arg, 'Edit Postgres Connection');
      if (!name) return;
      const r = await postgresConnectionForm(vscodePrompter, formDeps(s), { name, url: await s.targetsModel.connectionString(name) });
      if (r) connectionSaved(s, r.name, r.test);
    }, s.log),
    registerCommand('deltaSync.targets.testConnection', async (arg) => {
      const name = await connectionName(s, arg, 'Test Postgres Connection');
      if (!name) return;
      const result = await vscodePrompter.progress(`Testing connection "${name}"`, () => testSaved(s, name));
      if (result.ok) {
        s.log.info(`Connection ${name}: connected to ${result.server} (${result.serverVersion})`);
        s.targets.refresh();
        void vscode.window.showInformationMessage(`Delta Sync: "${name}" connected to ${result.server} — ${result.serverVersion}.`);
        return;
      }
      s.log.warn(`Connection ${name} test failed: ${result.problem.error.describe()}`);
      const choice = await vscode.window.showErrorMessage(`Delta Sync: "${name}": ${result.problem.headline}`, 'Edit', 'Retry', 'Show Log');
      if (choice === 'Edit') await vscode.commands.executeCommand('deltaSync.targets.editConnection', name);
      else if (choice === 'Retry') await vscode.commands.executeCommand('deltaSync.targets.testConnection', name);
      else if (choice === 'Show Log') s.log.show(true);
    }, s.log),
    // The error row under a connection: list its tables again (the tree re-reads them). From
    // the palette: the connection picked is tested (its error, Edit / Retry), then re-listed.
    registerCommand('deltaSync.targets.retryConnection', async (arg) => {
      if (arg === undefined) {
        const name = await connectionName(s, undefined, 'Retry Connection');
        if (!name) return;
        await vscode.commands.executeCommand('deltaSync.targets.testConnection', name);
      }
      s.targets.refresh();
    }, s.log),
    registerCommand('deltaSync.targets.removeConnection', async (arg) => {
      const name = await connectionName(s, arg, 'Remove Connection');
      if (!name) return;
      const ok = await vscode.window.showWarningMessage(`Remove connection "${name}" and its stored secret?`, { modal: true }, 'Remove');
      if (ok !== 'Remove') return;
      await s.targetsModel.remove(name);
      s.targets.refresh();
    }, s.log),
    registerCommand('deltaSync.targets.addNeonAccount', async () => {
      const key = await vscode.window.showInputBox({
        title: 'Add Neon Account',
        prompt: `A Neon API key (Neon Console > Account settings > API keys). It is checked against ${s.neon.apiUrl()} and kept in VS Code secret storage only.`,
        placeHolder: 'napi_...',
        password: true,
        ignoreFocusOut: true,
      });
      if (key === undefined) return;
      const projects = await vscode.window.withProgress({ location: { viewId: 'deltaSync.targets' }, title: 'Checking the Neon API key' }, () => s.neon.setApiKey(key));
      s.targets.refresh();
      s.log.info(`Neon account added (${projects} project(s) visible at ${s.neon.apiUrl()})`);
    }, s.log),
    registerCommand('deltaSync.targets.removeNeonAccount', async () => {
      const ok = await vscode.window.showWarningMessage('Remove the Neon account and its stored API key? Mappings that use neon: references then need NEON_API_KEY.', { modal: true }, 'Remove');
      if (ok !== 'Remove') return;
      await s.neon.removeApiKey();
      s.targets.refresh();
    }, s.log),
    registerCommand('deltaSync.targets.copyNeonReference', async (arg) => {
      let node = arg as TargetNode | undefined;
      if (!node || node.kind !== 'neon-database') {
        // From the palette: project -> branch -> database of the stored Neon account.
        if ((await s.neon.apiKey()) === undefined) throw new SyncError('auth', 'No Neon account.', { hint: 'Add one first: "Delta Sync: Add Neon Account".' });
        node = await pickTreeNode(vscodePrompter, neonDatabasePick(s.targets.children, 'Copy Neon Reference'));
        if (!node || node.kind !== 'neon-database') return;
      }
      await vscode.env.clipboard.writeText(node.reference);
      void vscode.window.showInformationMessage(`Copied ${node.reference}: use it as a mapping's target.connection.`);
    }, s.log),
    registerCommand('deltaSync.targets.refresh', () => s.targets.refresh(), s.log),
    registerCommand('deltaSync.targets.showRows', async (arg) => {
      let node = arg as TargetNode | undefined;
      // From the palette: a target, then (a saved connection's) schema, then the table.
      if (!node || node.kind !== 'table') node = await pickTreeNode(vscodePrompter, targetTablePick(s.targets.children, 'Show Rows'));
      if (!node || node.kind !== 'table') return;
      const table = node;
      // A paged, sortable query of the table in the data grid (each page its own query).
      TableRowsPanel.show(s.extensionUri, s.log, { connection: table.connection, schema: table.schema, table: table.table }, (opts) =>
        s.engine.withTarget(table.connection, (t) => pageRows(t.pool, table.schema, table.table, opts)), s.settings.previewPageSize());
    }, s.log),
  ];
}
