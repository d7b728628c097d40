import * as vscode from 'vscode';
import { SyncError } from '../sync/errors';
import { registerCommand } from './commandRegistry';
import type { DatabricksAuth } from './DatabricksConnections';
import { testResultMessage, validateHost, validateHttpPath } from './DatabricksConnections';
import { cdfTablePick, type DatabricksTableNode } from './DatabricksModel';
import { pickTreeNode } from './pickTreeNode';
import { vscodePrompter } from './vscodePrompter';
import type { Services } from './Services';
import type { SourcesTreeNode } from './SourcesTreeDataProvider';

const ADD_STEPS = 5;
const addTitle = (n: number, what: string): string => `Add Databricks Connection (${n}/${ADD_STEPS}): ${what}`;

/** The connection a command acts on: the tree row it was invoked on, else a pick of the saved ones. */
async function connectionFrom(s: Services, arg: unknown, title: string): Promise<string | undefined> {
  const node = arg as SourcesTreeNode | undefined;
  if (node && typeof node === 'object' && node.kind === 'databricks-connection') return node.info.name;
  const saved = s.databricks.list();
  if (saved.length === 0) throw new SyncError('usage', 'No Databricks connection is saved.', { hint: 'Add one with "Delta Sync: Add Databricks Connection".' });
  const pick = await vscode.window.showQuickPick(
    saved.map((c) => ({ label: c.name, description: `${c.host} ${c.httpPath}` })),
    { title },
  );
  return pick?.label;
}

const nonEmpty = (what: string) => (v: string): string | undefined => (v.trim() === '' ? `Enter the ${what}.` : undefined);

/** Asks for the credentials; they go to SecretStorage only. */
async function askAuth(): Promise<DatabricksAuth | undefined> {
  const kind = await vscode.window.showQuickPick(
    [
      { label: 'Personal access token', description: 'User Settings > Developer > Access tokens', type: 'pat' as const },
      { label: 'OAuth machine-to-machine', description: 'a service principal\'s client id and OAuth secret', type: 'oauth-m2m' as const },
    ],
    { title: addTitle(4, 'sign-in'), ignoreFocusOut: true },
  );
  if (!kind) return undefined;
  if (kind.type === 'pat') {
    const token = await vscode.window.showInputBox({
      title: addTitle(5, 'personal access token'),
      prompt: 'Stored in VS Code secret storage, never in settings or files',
      placeHolder: 'dapi…',
      password: true,
      ignoreFocusOut: true,
      validateInput: nonEmpty('token'),
    });
    return token === undefined ? undefined : { type: 'pat', token: token.trim() };
  }
  const clientId = await vscode.window.showInputBox({
    title: addTitle(5, 'OAuth client id'),
    prompt: 'The service principal\'s application (client) id',
    ignoreFocusOut: true,
    validateInput: nonEmpty('client id'),
  });
  if (clientId === undefined) return undefined;
  const clientSecret = await vscode.window.showInputBox({
    title: addTitle(5, 'OAuth secret'),
    prompt: 'Stored in VS Code secret storage, never in settings or files',
    password: true,
    ignoreFocusOut: true,
    validateInput: nonEmpty('OAuth secret'),
  });
  return clientSecret === undefined ? undefined : { type: 'oauth-m2m', clientId: clientId.trim(), clientSecret: clientSecret.trim() };
}

/** Tests a connection with a progress notification and reports the outcome as a message. */
async function testAndReport(s: Services, name: string, savedJustNow: boolean): Promise<void> {
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Delta Sync: connecting to Databricks "${name}"` },
    () => s.databricks.test(name),
  );
  const text = testResultMessage(result);
  if (result.ok) {
    s.log.info(`Databricks ${text}`);
    void vscode.window.showInformationMessage(`Delta Sync: ${text}`);
    // Rows that showed an earlier failure are read again.
    s.sources.refresh();
    return;
  }
  s.log.warn(`Databricks connection test failed: ${result.error.describe()}`);
  const prefix = savedJustNow ? `Saved "${name}", but the connection test failed: ` : 'Databricks connection test failed: ';
  const choice = await vscode.window.showErrorMessage(`Delta Sync: ${prefix}${text}`, 'Show Log');
  if (choice === 'Show Log') s.log.show(true);
}

export function registerDatabricksCommands(s: Services): vscode.Disposable[] {
  return [
    registerCommand('deltaSync.databricks.addConnection', async () => {
      const name = await vscode.window.showInputBox({
        title: addTitle(1, 'name'),
        prompt: 'A name for this connection, used in mapping files as source.connection',
        placeHolder: 'my-workspace',
        ignoreFocusOut: true,
        validateInput: (v) => s.databricks.validateName(v.trim()),
      });
      if (name === undefined) return;
      const host = await vscode.window.showInputBox({
        title: addTitle(2, 'workspace host'),
        prompt: 'The workspace URL (from the browser address bar or the warehouse\'s Connection details)',
        placeHolder: 'adb-1234567890123456.7.azuredatabricks.net',
        ignoreFocusOut: true,
        validateInput: validateHost,
      });
      if (host === undefined) return;
      const httpPath = await vscode.window.showInputBox({
        title: addTitle(3, 'SQL warehouse HTTP path'),
        prompt: 'SQL Warehouses > your warehouse > Connection details > HTTP path',
        placeHolder: '/sql/1.0/warehouses/0123456789abcdef',
        ignoreFocusOut: true,
        validateInput: validateHttpPath,
      });
      if (httpPath === undefined) return;
      const auth = await askAuth();
      if (!auth) return;
      const info = await s.databricks.add({ name: name.trim(), host, httpPath, auth });
      s.log.info(`Databricks connection ${info.name} added (${info.host} ${info.httpPath}, ${info.authType})`);
      s.sources.refresh();
      await testAndReport(s, info.name, true);
    }, s.log),
    registerCommand('deltaSync.databricks.testConnection', async (arg) => {
      const name = await connectionFrom(s, arg, 'Test Databricks Connection');
      if (!name) return;
      await testAndReport(s, name, false);
    }, s.log),
    registerCommand('deltaSync.databricks.removeConnection', async (arg) => {
      const name = await connectionFrom(s, arg, 'Remove Databricks Connection');
      if (!name) return;
      const ok = await vscode.window.showWarningMessage(
        `Remove the Databricks connection "${name}" and its stored credentials?`,
        { modal: true, detail: 'Mappings that name it as source.connection stop working until a connection of that name is added again.' },
        'Remove',
      );
      if (ok !== 'Remove') return;
      await s.databricks.remove(name);
      s.log.info(`Databricks connection ${name} removed`);
      s.sources.refresh();
    }, s.log),
    registerCommand('deltaSync.databricks.enableChangeDataFeed', async (arg) => {
      const node = arg as SourcesTreeNode | undefined;
      // From the palette: connection -> catalog -> schema -> table, as the Sources view lists them.
      const picked = node && typeof node === 'object' && node.kind === 'databricks-table' ? node : await pickTreeNode(vscodePrompter, cdfTablePick(s.databricksModel, 'Enable Change Data Feed'));
      if (!picked || picked.kind !== 'databricks-table') return;
      const table: DatabricksTableNode = picked;
      const statement = s.databricksModel.enableCdfStatement(table);
      const RUN = 'Run ALTER TABLE';
      const choice = await vscode.window.showWarningMessage(
        `Enable the change data feed on ${table.fullName}?`,
        {
          modal: true,
          detail: `This changes the table in Databricks (connection "${table.connection}") by running:\n\n${statement}\n\nChanges are recorded from the next commit on; earlier versions keep none, so run an initial load after it. Your principal needs MODIFY on the table.`,
        },
        RUN,
      );
      // Only the explicit button runs it; closing the dialog or Escape changes nothing.
      if (choice !== RUN) {
        s.log.info(`Enable change data feed on ${table.fullName}: not confirmed, nothing run`);
        return;
      }
      s.log.info(`${table.connection}: ${statement}`);
      const state = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Delta Sync: enabling the change data feed on ${table.fullName}` },
        () => s.databricksModel.enableChangeDataFeed(table, { confirm: true }),
      );
      s.sources.refresh();
      void vscode.window.showInformationMessage(
        state.cdfEnabled
          ? `Delta Sync: the change data feed is on for ${table.fullName} (now version ${state.version}); changes are recorded from the next commit.`
          : `Delta Sync: ran the ALTER TABLE on ${table.fullName}, but the table still reports the change data feed off.`,
      );
    }, s.log),
  ];
}
