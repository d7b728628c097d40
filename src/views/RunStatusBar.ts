import * as vscode from 'vscode';
import { statusBarLook } from './ProgressModel';
import type { RunController } from './RunController';

/**
 * The status bar item of the running or last run (mapping, state, rows); a click opens the
 * Progress panel. Hidden until the first run of the session.
 */
export class RunStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('deltaSync.run', vscode.StatusBarAlignment.Left, 50);
  private readonly sub: { dispose(): void };

  constructor(runs: RunController) {
    this.item.name = 'Delta Sync: Run';
    this.item.command = 'deltaSync.run.showProgress';
    this.sub = runs.onSnapshot((s) => {
      const look = statusBarLook(s);
      this.item.text = look.text;
      this.item.tooltip = look.tooltip;
      this.item.backgroundColor = look.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
      this.item.accessibilityInformation = { label: look.tooltip.split('\n').slice(0, 2).join(', '), role: 'button' };
      if (look.visible) this.item.show();
      else this.item.hide();
    });
  }

  dispose(): void {
    this.sub.dispose();
    this.item.dispose();
  }
}
