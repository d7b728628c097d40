import * as vscode from 'vscode';
import { NodeTreeDataProvider, messageItem } from './NodeTreeDataProvider';
import type { TargetNode, TargetsModel } from './TargetsModel';

/** The Targets view: the embedded sandbox and saved Postgres connections. */
export class TargetsTreeDataProvider extends NodeTreeDataProvider<TargetNode> {
  constructor(model: TargetsModel) {
    super(() => model.children(), targetItem);
  }
}

export function targetItem(node: TargetNode): vscode.TreeItem {
  switch (node.kind) {
    case 'sandbox': {
      const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
      item.id = 'target:sandbox';
      item.description = node.detail;
      item.iconPath = new vscode.ThemeIcon('beaker');
      item.tooltip = 'An embedded Postgres for trying mappings without a database. Data lives in the extension storage.';
      item.contextValue = 'target.sandbox';
      return item;
    }
    case 'connection': {
      const item = new vscode.TreeItem(node.info.name, vscode.TreeItemCollapsibleState.None);
      item.id = `target:${node.info.name}`;
      item.description = node.info.summary;
      item.iconPath = new vscode.ThemeIcon('database');
      item.tooltip = `${node.info.name}\n${node.info.summary}\nThe connection string is kept in VS Code's secret storage.`;
      item.contextValue = 'target.connection';
      return item;
    }
    case 'message': {
      const item = messageItem(node.label, node.severity);
      item.id = `message:${node.id}`;
      return item;
    }
  }
}
