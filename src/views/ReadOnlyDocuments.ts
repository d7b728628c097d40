import * as vscode from 'vscode';

export const READONLY_SCHEME = 'delta-sync';

/**
 * Read-only generated documents (DDL, run history, dry-run reports, table rows) under the
 * `delta-sync:` scheme. Unlike untitled documents they are never dirty, so closing them
 * asks nothing, and the user cannot mistake them for files to edit.
 */
export class ReadOnlyDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly docs = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private next = 1;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.docs.get(uri.toString()) ?? '(This document is no longer available.)';
  }

  /** Opens `content` as `<title>.<ext>` (the extension picks the language). */
  async show(title: string, ext: 'sql' | 'md', content: string, options: vscode.TextDocumentShowOptions = { preview: true }): Promise<void> {
    const safe = title.replace(/[^A-Za-z0-9_.-]+/g, '-').slice(0, 80) || 'document';
    const uri = vscode.Uri.from({ scheme: READONLY_SCHEME, path: `/${safe}.${ext}`, query: String(this.next++) });
    this.docs.set(uri.toString(), content);
    // Keep a bounded number: old documents fall back to the placeholder text.
    if (this.docs.size > 50) this.docs.delete(this.docs.keys().next().value as string);
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc, options);
  }

  dispose(): void {
    this.changed.dispose();
    this.docs.clear();
  }
}
