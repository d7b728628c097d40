import * as vscode from 'vscode';
import type { NeonModel } from './NeonModel';
import { NodeTreeDataProvider, messageItem } from './NodeTreeDataProvider';
import { type TableLister, type TargetNode, type TargetsModel } from './TargetsModel';
import { targetsChildren } from './targetPicks';

/**
 * The Targets view: the embedded sandbox with its tables; saved Postgres connections ->
 * schemas -> tables; then the Neon account (when a key is stored): projects -> branches ->
 * databases -> schemas -> tables, a database's tables read through its `neon:` reference.
 */
export class TargetsTreeDataProvider extends NodeTreeDataProvider<TargetNode> {
  constructor(model: TargetsModel, listTables?: TableLister, neon?: NeonModel) {
    const children = targetsChildren(model, listTables, neon);
    super(children, targetItem);
    this.children = children;
  }

  /** The rows under `node`, as the view lists them (the palette's pickers offer the same). */
  readonly children: (node?: TargetNode) => Promise<TargetNode[]>;
}

/** "1,059 rows" from a count kept as text (counts are bigint in Postgres). */
export function rowsLabel(rows: string, estimated: boolean): string {
  if (!/^\d+$/.test(rows)) return 'rows unknown';
  const grouped = rows.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${estimated ? '~' : ''}${grouped} row${rows === '1' ? '' : 's'}`;
}

export function targetItem(node: TargetNode): vscode.TreeItem {
  switch (node.kind) {
    case 'sandbox': {
      const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.Collapsed);
      item.id = 'target:sandbox';
      item.description = node.detail;
      item.iconPath = new vscode.ThemeIcon('beaker');
      item.tooltip = 'An embedded Postgres for trying mappings without a database. Data lives in the extension storage.';
      item.contextValue = 'target.sandbox';
      return item;
    }
    case 'connection': {
      const item = new vscode.TreeItem(node.info.name, vscode.TreeItemCollapsibleState.Collapsed);
      item.id = `target:${node.info.name}`;
      item.description = node.info.summary;
      item.iconPath = new vscode.ThemeIcon('database');
      item.tooltip = `${node.info.name}\n${node.info.summary}\nThe connection string is kept in VS Code's secret storage.`;
      item.contextValue = 'target.connection';
      return item;
    }
    case 'table': {
      const item = new vscode.TreeItem(node.underSchema ? node.table : `${node.schema}.${node.table}`, vscode.TreeItemCollapsibleState.None);
      item.id = `target:${node.connection}:${node.schema}.${node.table}`;
      item.description = rowsLabel(node.rows, node.estimated);
      item.iconPath = new vscode.ThemeIcon('table');
      item.tooltip = `${node.connection}: ${node.schema}.${node.table} (${item.description})\nClick to show the first rows.`;
      item.command = { command: 'deltaSync.targets.showRows', title: 'Show Rows', arguments: [node] };
      item.contextValue = 'target.table';
      return item;
    }
    case 'schema': {
      const item = new vscode.TreeItem(node.schema, vscode.TreeItemCollapsibleState.Collapsed);
      item.id = `target:${node.connection}:${node.schema}`;
      item.description = `${node.tables.length} table${node.tables.length === 1 ? '' : 's'}`;
      item.iconPath = new vscode.ThemeIcon('symbol-namespace');
      item.tooltip = `Schema ${node.schema} of ${node.connection}`;
      item.contextValue = 'target.schema';
      return item;
    }
    case 'neon-account': {
      const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.Collapsed);
      item.id = 'target:neon';
      item.iconPath = new vscode.ThemeIcon('cloud');
      item.tooltip = `Neon account at ${node.apiUrl}\nThe API key is kept in VS Code's secret storage.`;
      item.contextValue = 'target.neonAccount';
      return item;
    }
    case 'neon-project': {
      const item = new vscode.TreeItem(node.name, vscode.TreeItemCollapsibleState.Collapsed);
      item.id = `target:neon:${node.projectId}`;
      item.description = `${node.projectId} · ${node.region}`;
      item.iconPath = new vscode.ThemeIcon('project');
      item.tooltip = `Neon project ${node.name} (${node.projectId}), ${node.region}`;
      item.contextValue = 'target.neonProject';
      return item;
    }
    case 'neon-branch': {
      const item = new vscode.TreeItem(node.name, vscode.TreeItemCollapsibleState.Collapsed);
      item.id = `target:neon:${node.projectId}:${node.branchId}`;
      const created = node.createdAt.slice(0, 16).replace('T', ' ');
      item.description = [node.isDefault ? 'default' : undefined, node.parent ? `from ${node.parent}` : undefined, node.previewOf ? `preview of ${node.previewOf}` : undefined, created].filter(Boolean).join(' · ');
      item.iconPath = new vscode.ThemeIcon(node.previewOf ? 'eye' : 'git-branch');
      item.tooltip = `Branch ${node.name} (${node.branchId})${node.isDefault ? ', the default branch' : ''}${node.parent ? `\nParent: ${node.parent}` : ''}\nCreated ${node.createdAt}`;
      item.contextValue = node.previewOf ? 'target.neonPreviewBranch' : 'target.neonBranch';
      return item;
    }
    case 'neon-database': {
      const item = new vscode.TreeItem(node.name, vscode.TreeItemCollapsibleState.Collapsed);
      item.id = `target:neon:${node.projectId}:${node.branchId}:${node.name}`;
      item.description = `owner ${node.owner}`;
      item.iconPath = new vscode.ThemeIcon('database');
      item.tooltip = `${node.reference}\nUse this as a mapping's target.connection; the password is fetched from the Neon API at run time.`;
      item.contextValue = 'target.neonDatabase';
      return item;
    }
    case 'neon-schema': {
      const item = new vscode.TreeItem(node.schema, vscode.TreeItemCollapsibleState.Collapsed);
      item.id = `target:neon:${node.projectId}:${node.branchId}:${node.database}:${node.schema}`;
      item.description = `${node.tables.length} table${node.tables.length === 1 ? '' : 's'}`;
      item.iconPath = new vscode.ThemeIcon('symbol-namespace');
      item.tooltip = `Schema ${node.schema} of ${node.reference}`;
      item.contextValue = 'target.neonSchema';
      return item;
    }
    case 'message': {
      const item = messageItem(node.label, node.severity);
      item.id = `message:${node.id}`;
      if (node.tooltip) item.tooltip = `${node.label}\n${node.tooltip}`;
      if (node.connection) {
        // Edit and Retry inline (package.json menus); a click opens Edit.
        item.contextValue = 'target.connectionError';
        item.command = { command: 'deltaSync.targets.editConnection', title: 'Edit Connection', arguments: [node.connection] };
      }
      return item;
    }
  }
}
