import type * as vscode from 'vscode';

/** Activation only: builds services and registers disposables (the UI issue fills this in). */
export function activate(_context: vscode.ExtensionContext): void {
  // Registered in later increments.
}

export function deactivate(): void {
  // Nothing to release: every registration is disposed through context.subscriptions.
}
