/**
 * What a user can do next about an error, named by id, and its wording per surface: the
 * CLI names a command to type, VS Code the palette command or view that does the same.
 * The engine never writes either wording into a hint: it writes `{action}` where the
 * action goes and gives the id (SyncErrorDetails.action); each front door renders it with
 * `renderHint` (SyncError.hint is the CLI's rendering, SyncError.hintFor('vscode') the
 * editor's). This file is the one place both wordings live.
 */
export type UserActionId =
  | 'preview'
  | 'initial-load'
  | 'incremental-sync'
  | 'repair'
  | 'allow-mass-delete'
  | 'grants'
  | 'neon-projects'
  | 'neon-previews'
  | 'neon-discard'
  | 'databricks-test'
  | 'databricks-tables';

export interface UserAction {
  id: UserActionId;
  /** What the action acts on, when it names one (a preview branch's name, a catalog.schema). */
  arg?: string;
}

export type Surface = 'cli' | 'vscode';

const cmd = (title: string, on = ' on the mapping'): string => `the "Delta Sync: ${title}" command${on}`;

const WORDING: Record<UserActionId, Record<Surface, (arg: string | undefined) => string>> = {
  preview: { cli: () => '`delta-neon-sync preview --mapping <file>`', vscode: () => cmd('Preview Changes') },
  'initial-load': { cli: () => '`delta-neon-sync sync --mapping <file> --mode initial`', vscode: () => cmd('Run Initial Load') },
  'incremental-sync': { cli: () => '`delta-neon-sync sync --mapping <file>`', vscode: () => cmd('Run Incremental Sync') },
  repair: { cli: () => '`delta-neon-sync repair --mapping <file>`', vscode: () => cmd('Verify & Repair') },
  'allow-mass-delete': {
    cli: () => '`delta-neon-sync sync --mapping <file> --allow-mass-delete`',
    vscode: () => 'run the sync again from the mapping and choose "Delete Anyway" when it asks',
  },
  grants: { cli: () => '`delta-neon-sync grants <mapping>`', vscode: () => cmd('Copy Required GRANTs') },
  'neon-projects': { cli: () => '`delta-neon-sync neon projects`', vscode: () => 'the Neon account in the Targets view' },
  'neon-previews': { cli: (a) => `\`delta-neon-sync neon previews ${a ?? '<project>'}\``, vscode: () => 'the Neon project in the Targets view' },
  'neon-discard': {
    cli: (a) => `\`delta-neon-sync neon discard --mapping <file> ${a ?? '<branch>'}\``,
    vscode: (a) => `${cmd('Discard Neon Preview Branch...')}${a ? ` (branch ${a})` : ''}`,
  },
  'databricks-test': { cli: () => '`delta-neon-sync databricks test`', vscode: () => cmd('Test Databricks Connection', ' on the connection in the Sources view') },
  'databricks-tables': { cli: (a) => `\`delta-neon-sync databricks tables ${a ?? '<catalog.schema>'}\``, vscode: () => 'the Databricks connection in the Sources view' },
};

/** The action as the surface names it. */
export function renderAction(action: UserAction, surface: Surface): string {
  return WORDING[action.id][surface](action.arg);
}

/** A hint with its `{action}` placeholder filled for the surface (no action: the hint as written). */
export function renderHint(hint: string, action: UserAction | undefined, surface: Surface): string {
  return action ? hint.split('{action}').join(renderAction(action, surface)) : hint;
}
