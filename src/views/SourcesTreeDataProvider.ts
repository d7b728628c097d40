import * as path from 'node:path';
import * as vscode from 'vscode';
import { NodeTreeDataProvider, messageItem } from './NodeTreeDataProvider';
import { columnSummary, tableSummary, type SourceNode, type SourcesModel } from './SourcesModel';
import { isDatabricksNode, type DatabricksModel, type DatabricksNode } from './DatabricksModel';
import { databricksItem } from './DatabricksTreeItems';

/** A row of the Sources view: local Delta folders and tables, or Databricks objects. */
export type SourcesTreeNode = SourceNode | DatabricksNode;

/** The Sources view: configured Delta folders, their tables and columns, then Databricks connections. */
export class SourcesTreeDataProvider extends NodeTreeDataProvider<SourcesTreeNode> {
  constructor(
    private readonly model: SourcesModel,
    private readonly databricks?: DatabricksModel,
  ) {
    super(async (n): Promise<SourcesTreeNode[]> => {
      if (!n) return [...(await model.children()), ...(databricks?.roots() ?? [])];
      if (isDatabricksNode(n)) return databricks ? databricks.children(n) : [];
      return model.children(n as SourceNode);
    }, sourceItem);
  }

  override refresh(): void {
    this.model.refresh();
    this.databricks?.refresh();
    super.refresh();
  }
}

export function sourceItem(node: SourcesTreeNode): vscode.TreeItem {
  if (isDatabricksNode(node)) return databricksItem(node);
  switch (node.kind) {
    case 'folder': {
      const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.Collapsed);
      item.id = `folder:${node.path}`;
      item.iconPath = vscode.ThemeIcon.Folder;
      item.resourceUri = vscode.Uri.file(node.path);
      item.tooltip = node.path;
      // Configured roots show where they are; the label alone can be ambiguous.
      if (node.configured) item.description = path.dirname(node.path);
      item.contextValue = node.configured ? 'deltaFolder.configured' : 'deltaFolder';
      return item;
    }
    case 'table': {
      const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.Collapsed);
      item.id = `table:${node.path}`;
      if (node.error !== null) {
        item.iconPath = new vscode.ThemeIcon('warning', new vscode.ThemeColor('editorWarning.foreground'));
        item.description = 'cannot read';
        item.tooltip = `${node.path}\n${node.error}`;
        item.contextValue = 'deltaTable.error';
        return item;
      }
      const d = node.description;
      item.iconPath = new vscode.ThemeIcon('table');
      item.description = d ? tableSummary(d) : undefined;
      if (node.configured && d) item.description = `${item.description} · ${path.dirname(node.path)}`;
      item.tooltip = d
        ? new vscode.MarkdownString(
            [
              `**${node.label}**`,
              `\`${node.path}\``,
              `Version ${d.version} · ${d.numFiles} files · ${d.sizeInBytes.toLocaleString('en-US')} bytes`,
              `Change Data Feed: ${d.cdfEnabled ? 'on' : 'off'}`,
              d.partitionColumns.length ? `Partitioned by: ${d.partitionColumns.join(', ')}` : 'Not partitioned',
              d.readerFeatures.length ? `Reader features: ${d.readerFeatures.join(', ')}` : '',
            ]
              .filter((l) => l !== '')
              .join('\n\n'),
          )
        : node.path;
      // cdf is part of the context so Run Incremental can be offered only where it works.
      item.contextValue = d?.cdfEnabled ? 'deltaTable.cdf' : 'deltaTable';
      return item;
    }
    case 'column': {
      const nested = node.field.type.kind === 'struct';
      const item = new vscode.TreeItem(
        node.field.name,
        nested ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None,
      );
      item.id = `column:${node.table}:${node.path.join('.')}`;
      item.description = columnSummary(node);
      item.iconPath = new vscode.ThemeIcon(node.isPartition ? 'layers' : 'symbol-field');
      item.contextValue = 'deltaColumn';
      return item;
    }
    case 'message': {
      const item = messageItem(node.label, node.severity, node.detail);
      item.id = `message:${node.id}`;
      return item;
    }
  }
}
