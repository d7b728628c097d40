import * as vscode from 'vscode';
import { messageItem } from './NodeTreeDataProvider';
import { databricksColumnSummary, databricksTableSummary, isView, type DatabricksNode } from './DatabricksModel';

/**
 * Context values the menus in package.json match: `databricks.connection`,
 * `databricksTable` (CDF off: Enable Change Data Feed), `databricksTable.cdf`,
 * `databricksTable.view`, `databricksTable.error`.
 */
export function databricksItem(node: DatabricksNode): vscode.TreeItem {
  const collapsed = vscode.TreeItemCollapsibleState.Collapsed;
  switch (node.kind) {
    case 'databricks-connection': {
      const { info } = node;
      const item = new vscode.TreeItem(info.name, collapsed);
      item.id = `databricks:${info.name}`;
      item.description = `Databricks · ${info.host.replace(/^https?:\/\//i, '').replace(/\/$/, '')}`;
      item.iconPath = new vscode.ThemeIcon('cloud');
      item.tooltip = new vscode.MarkdownString(
        [
          `**${info.name}** (Databricks SQL warehouse)`,
          `Host: \`${info.host}\``,
          `HTTP path: \`${info.httpPath}\``,
          `Sign-in: ${info.authType === 'pat' ? 'personal access token' : 'OAuth machine-to-machine (service principal)'}, kept in VS Code's secret storage`,
          `Mappings use it as \`"source": { "type": "databricks", "connection": "${info.name}", "table": "catalog.schema.table" }\``,
        ].join('\n\n'),
      );
      item.contextValue = 'databricks.connection';
      return item;
    }
    case 'databricks-catalog': {
      const item = new vscode.TreeItem(node.catalog, collapsed);
      item.id = `databricks:${node.connection}/${node.catalog}`;
      item.iconPath = new vscode.ThemeIcon('library');
      item.contextValue = 'databricks.catalog';
      return item;
    }
    case 'databricks-schema': {
      const item = new vscode.TreeItem(node.schema, collapsed);
      item.id = `databricks:${node.connection}/${node.catalog}.${node.schema}`;
      item.iconPath = new vscode.ThemeIcon('symbol-namespace');
      item.tooltip = `${node.catalog}.${node.schema}`;
      item.contextValue = 'databricks.schema';
      return item;
    }
    case 'databricks-table': {
      const item = new vscode.TreeItem(node.table.table, collapsed);
      item.id = `databricks:${node.connection}/${node.fullName}`;
      item.description = databricksTableSummary(node);
      if (node.error !== null) {
        item.iconPath = new vscode.ThemeIcon('warning', new vscode.ThemeColor('editorWarning.foreground'));
        item.tooltip = `${node.fullName}\n${node.error}`;
        item.contextValue = 'databricksTable.error';
        return item;
      }
      if (isView(node.tableType)) {
        item.iconPath = new vscode.ThemeIcon('eye');
        item.tooltip = `${node.fullName} (${node.tableType}): views have no Delta history to sync from.`;
        item.contextValue = 'databricksTable.view';
        return item;
      }
      const s = node.state;
      item.iconPath = new vscode.ThemeIcon('table');
      item.tooltip = new vscode.MarkdownString(
        [
          `**${node.fullName}** on ${node.connection}`,
          s ? `Version ${s.version}${s.operation ? ` (${s.operation})` : ''}, ${new Date(s.timestamp).toISOString()}` : '',
          s ? `Change Data Feed: ${s.cdfEnabled ? 'on' : 'off (incremental syncs need it: Enable Change Data Feed…)'}` : '',
        ]
          .filter((l) => l !== '')
          .join('\n\n'),
      );
      item.contextValue = s?.cdfEnabled ? 'databricksTable.cdf' : 'databricksTable';
      return item;
    }
    case 'databricks-column': {
      const nested = node.field.type.kind === 'struct';
      const item = new vscode.TreeItem(node.field.name, nested ? collapsed : vscode.TreeItemCollapsibleState.None);
      item.id = `databricks:${node.connection}/${node.table}:${node.path.join('.')}`;
      item.description = databricksColumnSummary(node);
      item.iconPath = new vscode.ThemeIcon('symbol-field');
      item.contextValue = 'databricksColumn';
      return item;
    }
    case 'message': {
      const item = messageItem(node.label, node.severity, node.detail);
      item.id = `message:${node.id}`;
      return item;
    }
  }
}
