/**
 * The guided "Create Mapping" flow: source table -> target connection -> target
 * schema.table -> key -> columns -> types -> name. It shows the CREATE TABLE the mapping
 * implies and writes `.delta-sync/<name>.json` (with `$schema` pointing at a copy of the
 * schema next to it, so completion works in any editor and in the CLI's repo).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { formatTableName, parseTableName } from '../sync/databricks/databricksTypes';
import type { TableName } from '../sync/databricks/databricksTypes';
import type { DeltaField } from '../sync/delta/types';
import { SyncError } from '../sync/errors';
import { parseMapping } from '../sync/mapping/loadMapping';
import { IDENTIFIER_RE, PG_TYPE_RE, PIPELINE_NAME_RE } from '../sync/mapping/mappingSchema';
import type { MappingInput } from '../sync/mapping/mappingSchema';
import { resolveColumns } from '../sync/mapping/resolveColumns';
import { DEFAULT_FILLFACTOR, renderCreateTable } from '../sync/postgres/renderCreateTable';
import { askKeyColumns, sourcePickDescription } from './createMappingSteps';
import { deltaTypeLabel } from './deltaTypeLabel';
import { NEON_PICK_LABEL, pickNeonDatabase } from './pickNeonDatabase';
import type { Services } from './Services';
import type { SourcesTreeNode } from './SourcesTreeDataProvider';
import { slugFor } from './slugFor';
import { SANDBOX_NAME } from './TargetsModel';
import { errorText } from './toProtocolError';

const STEPS = 7;
const title = (n: number, what: string): string => `Create Mapping (${n}/${STEPS}): ${what}`;

/** Tables the Sources view knows (configured folders and one level below them). */
async function knownTables(s: Services): Promise<Array<{ path: string; label: string; detail: string }>> {
  const out: Array<{ path: string; label: string; detail: string }> = [];
  const visit = async (nodes: SourcesTreeNode[], depth: number): Promise<void> => {
    for (const n of nodes) {
      if (n.kind === 'table') out.push({ path: n.path, label: n.label, detail: sourcePickDescription(n.description, n.error) });
      else if (n.kind === 'folder' && depth < 2) await visit(await s.sources.getChildren(n), depth + 1);
    }
  };
  await visit(await s.sources.getChildren(), 0);
  return out;
}

/** A Postgres column name for a Delta column name (renamed only when it is not an identifier). */
export function targetNameFor(source: string): string {
  return IDENTIFIER_RE.test(source) ? source : slugFor(source);
}

/** The picked source: a local table folder, or a Databricks table on a saved connection. */
type PickedSource = { type: 'delta'; path: string } | { type: 'databricks'; connection: string; table: TableName; fullName: string };

async function pickSource(s: Services, arg: unknown): Promise<PickedSource | undefined> {
  const node = arg as SourcesTreeNode | undefined;
  if (node && typeof node === 'object' && node.kind === 'databricks-table') return { type: 'databricks', connection: node.connection, table: node.table, fullName: node.fullName };
  if (node && typeof node === 'object' && node.kind === 'table') return { type: 'delta', path: node.path };
  const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? '';
  const tables = await knownTables(s);
  const browse = { label: '$(folder-opened) Browse…', description: 'a folder holding _delta_log', path: '', databricks: false };
  const databricks = { label: '$(cloud) Databricks table…', description: 'catalog.schema.table on a saved Databricks connection', path: '', databricks: true };
  const pick = await vscode.window.showQuickPick(
    [
      // One line each (version, CDF state, rows, then where), so a long list stays scannable.
      ...tables.map((t) => ({ label: t.label, description: [t.detail, path.relative(ws, t.path).startsWith('..') ? t.path : path.relative(ws, t.path)].filter(Boolean).join(' — '), path: t.path, databricks: false })),
      browse,
      ...(s.databricks.list().length > 0 ? [databricks] : []),
    ],
    { title: title(1, 'source Delta table'), placeHolder: 'The Delta table to sync', ignoreFocusOut: true },
  );
  if (!pick) return undefined;
  if (pick.path) return { type: 'delta', path: pick.path };
  if (pick.databricks) return pickDatabricksTable(s);
  const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Select Delta Table' });
  const folder = picked?.[0]?.fsPath;
  return folder === undefined ? undefined : { type: 'delta', path: folder };
}

/** Palette use: a saved connection, then the table's three-part name. */
async function pickDatabricksTable(s: Services): Promise<PickedSource | undefined> {
  const conn = await vscode.window.showQuickPick(
    s.databricks.list().map((c) => ({ label: c.name, description: c.host })),
    { title: title(1, 'Databricks connection'), ignoreFocusOut: true },
  );
  if (!conn) return undefined;
  const text = await vscode.window.showInputBox({
    title: title(1, 'Databricks table'),
    prompt: 'catalog.schema.table (the Sources view lists them under the connection)',
    placeHolder: 'main.sales.customers',
    ignoreFocusOut: true,
    validateInput: (v) => {
      try {
        parseTableName(v.trim());
        return undefined;
      } catch (e) {
        return errorText(e);
      }
    },
  });
  if (text === undefined) return undefined;
  const table = parseTableName(text.trim());
  return { type: 'databricks', connection: conn.label, table, fullName: formatTableName(table) };
}

/** Runs the flow; returns the written file, or undefined when the user cancelled. */
export async function createMappingFlow(s: Services, arg: unknown): Promise<string | undefined> {
  const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (!ws) throw new SyncError('usage', 'Open a folder first: mappings are files in the workspace.');
  const picked = await pickSource(s, arg);
  if (!picked) return undefined;
  // A Databricks table's columns come from the warehouse (its current schema).
  const fields = picked.type === 'delta' ? (await s.inspector.describe(picked.path)).schema : await s.databricksModel.columns(picked.connection, picked.table);
  const sourceInput: MappingInput['source'] =
    picked.type === 'delta' ? { type: 'delta', path: picked.path } : { type: 'databricks', connection: picked.connection, table: picked.fullName };

  const connections = [
    { label: SANDBOX_NAME, description: 'embedded Postgres in the extension storage' },
    ...s.targetsModel.connections().map((c) => ({ label: c.name, description: c.summary })),
    ...((await s.neon.roots()).length ? [{ label: NEON_PICK_LABEL, description: 'a database of a Neon branch (neon:<project>/<branch>/<database>)' }] : []),
  ];
  const connectionPick = (await vscode.window.showQuickPick(connections, { title: title(2, 'target connection'), ignoreFocusOut: true }))?.label;
  const connection = connectionPick === NEON_PICK_LABEL ? await pickNeonDatabase(s.neon, title(2, 'target connection')) : connectionPick;
  if (!connection) return undefined;

  const defaultName = slugFor(picked.type === 'delta' ? path.basename(picked.path) : picked.table.table);
  const qualified = await vscode.window.showInputBox({
    title: title(3, 'target table'),
    prompt: 'schema.table in Postgres (created by the initial load when missing)',
    value: `public.${defaultName.replace(/-/g, '_')}`,
    ignoreFocusOut: true,
    validateInput: (v) => {
      const parts = v.trim().split('.');
      if (parts.length > 2 || parts.some((p) => !IDENTIFIER_RE.test(p))) return 'Use schema.table (letters, digits, _ ; each part starting with a letter or _).';
      return undefined;
    },
  });
  if (qualified === undefined) return undefined;
  const parts = qualified.trim().split('.');
  const [schema, targetTable] = parts.length === 2 ? [parts[0] as string, parts[1] as string] : ['public', parts[0] as string];

  const keySources = await askKeyColumns(
    (items, o) => vscode.window.showQuickPick(items, { ...o, canPickMany: true, ignoreFocusOut: true }),
    fields,
    title(4, 'key columns'),
  );
  if (!keySources) return undefined;

  const colPick = await vscode.window.showQuickPick(
    fields.map((f) => ({ label: f.name, description: keySources.includes(f.name) ? `${deltaTypeLabel(f.type)} · key` : deltaTypeLabel(f.type), picked: true })),
    { title: title(5, 'columns to sync'), placeHolder: 'Key columns are always synced', canPickMany: true, ignoreFocusOut: true },
  );
  if (!colPick) return undefined;
  const chosen = new Set([...colPick.map((c) => c.label), ...keySources]);
  const selected = fields.filter((f) => chosen.has(f.name));

  const rename: Record<string, string> = {};
  for (const f of selected) if (targetNameFor(f.name) !== f.name) rename[f.name] = targetNameFor(f.name);
  const types: Record<string, string> = {};
  const draft = (): MappingInput => {
    const columns = {
      ...(selected.length < fields.length ? { include: selected.map((f) => f.name) } : {}),
      ...(Object.keys(rename).length ? { rename } : {}),
      ...(Object.keys(types).length ? { types } : {}),
    };
    return {
      name: 'draft',
      source: sourceInput,
      target: { connection, schema, table: targetTable },
      key: keySources.map(targetNameFor),
      // Only what differs from the defaults is written.
      ...(Object.keys(columns).length > 0 ? { columns } : {}),
    };
  };
  // Types: the defaults, until the user overrides some.
  for (;;) {
    const resolved = resolveColumns(parseMapping(draft()), fields);
    const done = { label: '$(check) Use these types', description: '', column: '' };
    const pick = await vscode.window.showQuickPick(
      [done, ...resolved.map((c) => ({ label: c.name, description: `${c.pgType}${types[c.name] ? ' (changed)' : ''} ← ${deltaTypeLabel(c.source.type)}`, column: c.name }))],
      { title: title(6, 'Postgres types'), placeHolder: 'Pick a column to change its type, or accept', ignoreFocusOut: true },
    );
    if (!pick) return undefined;
    if (!pick.column) break;
    const current = resolved.find((c) => c.name === pick.column)?.pgType ?? '';
    const t = await vscode.window.showInputBox({
      title: `Postgres type of ${pick.column}`,
      value: current,
      validateInput: (v) => (PG_TYPE_RE.test(v.trim()) ? undefined : 'Not a Postgres type name, e.g. text, bigint, numeric(12,2), timestamptz, jsonb'),
    });
    if (t !== undefined && t.trim() !== current) types[pick.column] = t.trim();
  }

  const dir = path.resolve(ws, s.settings.mappingsFolder());
  const exists = async (n: string): Promise<boolean> => fs.access(path.join(dir, `${n}.json`)).then(() => true, () => false);
  let suggested = defaultName.replace(/_/g, '-');
  for (let i = 2; await exists(suggested); i++) suggested = `${defaultName.replace(/_/g, '-')}-${i}`;
  const name = await vscode.window.showInputBox({
    title: title(7, 'mapping name'),
    prompt: `Saved as ${s.settings.mappingsFolder()}/<name>.json; also the pipeline name in the target's checkpoint table`,
    value: suggested,
    ignoreFocusOut: true,
    validateInput: async (v) => {
      if (!PIPELINE_NAME_RE.test(v.trim())) return 'Lowercase letters, digits, - or _, starting with a letter or digit.';
      return (await exists(v.trim())) ? `${v.trim()}.json exists` : undefined;
    },
  });
  if (name === undefined) return undefined;

  // Relative inside the workspace (the file is committed with the project), else absolute.
  const body: MappingInput = { $schema: './schema/mapping.schema.json', ...draft(), name: name.trim() };
  if (picked.type === 'delta') {
    const insideWorkspace = !path.relative(ws, picked.path).startsWith('..');
    body.source = { type: 'delta', path: insideWorkspace ? path.relative(dir, picked.path) : picked.path };
  }
  const file = path.join(dir, `${name.trim()}.json`);
  const mapping = parseMapping(body, file); // the same validation the runner applies
  const ddl = renderCreateTable(
    { schema, name: targetTable },
    resolveColumns(mapping, fields),
    mapping.key ?? [],
    { fillfactor: mapping.initialLoad.fillfactor ?? DEFAULT_FILLFACTOR },
  );

  await fs.mkdir(path.join(dir, 'schema'), { recursive: true });
  const schemaText = await fs.readFile(vscode.Uri.joinPath(s.extensionUri, 'schemas', 'mapping.schema.json').fsPath, 'utf8');
  await fs.writeFile(path.join(dir, 'schema', 'mapping.schema.json'), schemaText);
  await fs.writeFile(file, JSON.stringify(body, null, 2) + '\n', { flag: 'wx' });
  s.log.info(`Mapping ${mapping.name} written to ${file}`);
  await vscode.window.showTextDocument(vscode.Uri.file(file), { preview: false });
  await s.docs.show(
    `${mapping.name}-ddl`,
    'sql',
    `-- The table an initial load of "${mapping.name}" creates when ${schema}.${targetTable} does not exist.\n-- Nothing has run yet: use Preview Changes on the mapping.\n${ddl}\n`,
    { viewColumn: vscode.ViewColumn.Beside, preview: true, preserveFocus: true },
  );
  return file;
}
