import * as vscode from 'vscode';

/**
 * A TreeDataProvider over a plain view model: `children` comes from the model, `toItem`
 * renders one node. `refresh()` re-reads everything (the models cache what is costly).
 */
export class NodeTreeDataProvider<N> implements vscode.TreeDataProvider<N>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<N | undefined>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(
    private readonly childrenOf: (node?: N) => Promise<N[]> | N[],
    private readonly toItem: (node: N) => vscode.TreeItem,
  ) {}

  refresh(): void {
    this.changed.fire(undefined);
  }

  getTreeItem(node: N): vscode.TreeItem {
    return this.toItem(node);
  }

  async getChildren(node?: N): Promise<N[]> {
    return this.childrenOf(node);
  }

  dispose(): void {
    this.changed.dispose();
  }
}

/** A message row: info, warning or error, with a matching themed icon. */
export function messageItem(label: string, severity: 'info' | 'warning' | 'error', detail?: string): vscode.TreeItem {
  const item = new vscode.TreeItem(label, vscode.TreeItemCollapsibleState.None);
  const icon = severity === 'error' ? 'error' : severity === 'warning' ? 'warning' : 'info';
  const color = severity === 'error' ? 'errorForeground' : severity === 'warning' ? 'editorWarning.foreground' : undefined;
  item.iconPath = new vscode.ThemeIcon(icon, color ? new vscode.ThemeColor(color) : undefined);
  item.tooltip = detail ? `${label}\n${detail}` : label;
  item.description = detail;
  item.contextValue = 'message';
  return item;
}
