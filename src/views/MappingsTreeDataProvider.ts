import * as vscode from 'vscode';
import { NodeTreeDataProvider, messageItem } from './NodeTreeDataProvider';
import { mappingSummary, statusPhrase, type MappingNode, type MappingsModel, type StatusIcon } from './MappingsModel';

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
};

export function mappingItem(node: MappingNode): vscode.TreeItem {
  switch (node.kind) {
    case 'mapping': {
      const item = new vscode.TreeItem(node.mapping.name, node.status ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
      item.id = `mapping:${node.file}`;
      const phrase = statusPhrase(node.status);
      // The status first: a narrow side bar truncates the end of the description.
      item.description = phrase ? `${phrase} · ${mappingSummary(node.mapping)}` : mappingSummary(node.mapping);
      item.iconPath = new vscode.ThemeIcon(node.status?.state === 'ok' && node.status.status.runs[0]?.status === 'failed' ? 'warning' : 'arrow-swap');
      item.resourceUri = vscode.Uri.file(node.file);
      item.tooltip = `${node.file}\n${mappingSummary(node.mapping)}${phrase ? `\n${phrase}` : ''}`;
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
