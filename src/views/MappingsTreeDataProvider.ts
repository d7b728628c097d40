import * as vscode from 'vscode';
import { NodeTreeDataProvider, messageItem } from './NodeTreeDataProvider';
import { mappingSummary, type MappingNode, type MappingsModel } from './MappingsModel';

/** The Mappings view: `.delta-sync/*.json` files, valid or with their error. */
export class MappingsTreeDataProvider extends NodeTreeDataProvider<MappingNode> {
  constructor(model: MappingsModel) {
    super(() => model.children(), mappingItem);
  }
}

export function mappingItem(node: MappingNode): vscode.TreeItem {
  switch (node.kind) {
    case 'mapping': {
      const item = new vscode.TreeItem(node.mapping.name, vscode.TreeItemCollapsibleState.None);
      item.id = `mapping:${node.file}`;
      item.description = mappingSummary(node.mapping);
      item.iconPath = new vscode.ThemeIcon('arrow-swap');
      item.resourceUri = vscode.Uri.file(node.file);
      item.tooltip = node.file;
      item.command = { command: 'vscode.open', title: 'Open Mapping', arguments: [vscode.Uri.file(node.file)] };
      item.contextValue = 'mapping';
      return item;
    }
    case 'invalid': {
      const item = new vscode.TreeItem(vscode.Uri.file(node.file).path.split('/').pop() ?? node.file);
      item.id = `mapping:${node.file}`;
      item.description = 'invalid';
      item.iconPath = new vscode.ThemeIcon('error', new vscode.ThemeColor('errorForeground'));
      item.tooltip = node.error;
      item.command = { command: 'vscode.open', title: 'Open Mapping', arguments: [vscode.Uri.file(node.file)] };
      item.contextValue = 'mapping.invalid';
      return item;
    }
    case 'message': {
      const item = messageItem(node.label, node.severity);
      item.id = `message:${node.id}`;
      return item;
    }
  }
}
