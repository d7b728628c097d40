import * as vscode from 'vscode';
import { withDelayedProgress } from './delayedProgress';
import type { InputOptions, PickItem, Prompter } from './PostgresConnectionForm';

/** The Prompter of the real editor: input boxes and quick picks that stay open on focus loss. */
export const vscodePrompter: Prompter = {
  input: async (o: InputOptions) =>
    vscode.window.showInputBox({
      title: o.title,
      prompt: o.prompt,
      ...(o.value !== undefined ? { value: o.value } : {}),
      ...(o.placeHolder !== undefined ? { placeHolder: o.placeHolder } : {}),
      password: o.password === true,
      ignoreFocusOut: true,
      ...(o.validate ? { validateInput: o.validate } : {}),
    }),
  pick: async <T extends PickItem>(items: readonly T[], o: { title: string; placeHolder?: string }) =>
    vscode.window.showQuickPick([...items], { title: o.title, ...(o.placeHolder !== undefined ? { placeHolder: o.placeHolder } : {}), ignoreFocusOut: true }),
  // Shown only for work still running after PROGRESS_DELAY_MS (see withDelayedProgress).
  progress: async <T>(title: string, work: () => Promise<T>) =>
    withDelayedProgress(work, (running) => vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Delta Sync: ${title}` }, () => running)),
  message: async (severity, text, ...actions) => {
    const show = severity === 'error' ? vscode.window.showErrorMessage : severity === 'warning' ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
    return show(`Delta Sync: ${text}`, ...actions);
  },
};
