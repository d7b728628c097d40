import * as vscode from 'vscode';
import { NodeTreeDataProvider, messageItem } from './NodeTreeDataProvider';
import { mappingDescription, mappingLook, mappingTooltip, type MappingLook, type MappingNode, type MappingsModel, type StatusIcon } from './MappingsModel';

/** The Mappings view: `.delta-sync/*.json` files, valid or with their error, and each one's sync status. */
export class MappingsTreeDataProvider extends NodeTreeDataProvider<MappingNode> {
  private readonly sub: { dispose(): void };

  constructor(model: MappingsModel) {
    super((node) => model.children(node), mappingItem);
    this.sub = model.onStatusChange(() => this.refresh());
  }

  override dispose(): void {
    this.sub.dispose();
    super.dispose();
  }
}

const STATUS_ICONS: Record<StatusIcon, vscode.ThemeIcon> = {
  ok: new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed')),
  behind: new vscode.ThemeIcon('arrow-down', new vscode.ThemeColor('editorWarning.foreground')),
  error: new vscode.ThemeIcon('error', new vscode.ThemeColor('errorForeground')),
  info: new vscode.ThemeIcon('info'),
  history: new vscode.ThemeIcon('history'),
  running: new vscode.ThemeIcon('sync~spin'),
};

const MAPPING_ICONS: Record<MappingLook, string> = { failed: 'warning', running: 'sync~spin', plain: 'arrow-swap' };

export function mappingItem(node: MappingNode): vscode.TreeItem {
  switch (node.kind) {
    case 'mapping': {
      const item = new vscode.TreeItem(node.mapping.name, node.status ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
      item.id = `mapping:${node.file}`;
      item.description = mappingDescription(node);
      item.iconPath = new vscode.ThemeIcon(node.watch && mappingLook(node.status) !== 'failed' ? 'eye' : MAPPING_ICONS[mappingLook(node.status)]);
      item.resourceUri = vscode.Uri.file(node.file);
      item.tooltip = mappingTooltip(node);
      item.contextValue = 'mapping';
      return item;
    }
    case 'status': {
      const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
      item.id = `status:${node.id}`;
      item.description = node.detail;
      item.iconPath = STATUS_ICONS[node.icon];
      item.tooltip = node.tooltip ?? `${node.label}: ${node.detail}`;
      item.contextValue = 'mapping.status';
      return item;
    }
    case 'invalid': {
      const item = new vscode.TreeItem(vscode.Uri.file(node.file).path.split('/').pop() ?? node.file);
      item.id = `mapping:${node.file}`;
      item.description = 'invalid';
      item.iconPath = new vscode.ThemeIcon('error', new vscode.ThemeColor('errorForeground'));
      item.tooltip = node.setting ? `${node.error}\nOpen Setting: "${node.setting.key}"` : node.error;
      item.command = { command: 'vscode.open', title: 'Open Mapping', arguments: [vscode.Uri.file(node.file)] };
      // With a key the error names: Open Setting (inline and in the context menu) puts the cursor on it.
      item.contextValue = node.setting ? 'mapping.invalid.setting' : 'mapping.invalid';
      return item;
    }
    case 'message': {
      const item = messageItem(node.label, node.severity);
      item.id = `message:${node.id}`;
      return item;
    }
  }
}
