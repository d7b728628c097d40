/**
 * The Databricks part of the Sources tree, computed without VS Code so it runs in plain
 * Node tests: saved connections -> catalogs -> schemas -> tables (current version, CDF
 * on/off) -> columns. Each level loads when expanded, through the connection's shared
 * client. Failures and empty levels are `message` rows: the tree never raises a popup.
 */
import type { DeltaField } from '../sync/delta/types';
import { CDF_PROPERTY, enableChangeDataFeedStatement } from '../sync/databricks/DatabricksCatalog';
import type { DatabricksCatalog, DatabricksHistoryEntry } from '../sync/databricks/DatabricksCatalog';
import { formatTableName } from '../sync/databricks/databricksTypes';
import type { TableName } from '../sync/databricks/databricksTypes';
import { SyncError } from '../sync/errors';
import type { DatabricksConnectionInfo } from '../platform/StateKeys';
import type { DatabricksConnections } from './DatabricksConnections';
import { deltaTypeLabel } from './deltaTypeLabel';
import { mapLimit } from './SourcesModel';
import { errorText } from './toProtocolError';
import type { Severity } from './SourcesModel';
import type { TreePick } from './pickTreeNode';

/** What the tree knows of a table before it is expanded. */
export interface DatabricksTableState {
  version: number;
  /** Commit timestamp of `version`, ms since epoch. */
  timestamp: number;
  operation: string | null;
  cdfEnabled: boolean;
}

export type DatabricksNode =
  | { kind: 'databricks-connection'; info: DatabricksConnectionInfo }
  | { kind: 'databricks-catalog'; connection: string; catalog: string }
  | { kind: 'databricks-schema'; connection: string; catalog: string; schema: string }
  | {
      kind: 'databricks-table';
      connection: string;
      table: TableName;
      /** catalog.schema.table, as a mapping's `source.table`. */
      fullName: string;
      /** TABLE, VIEW, MANAGED, ... as the warehouse reports it. */
      tableType: string;
      state: DatabricksTableState | null;
      /** Why the version / CDF state could not be read; views have neither. */
      error: string | null;
    }
  | { kind: 'databricks-column'; connection: string; table: string; path: string[]; field: DeltaField }
  | { kind: 'message'; severity: Severity; label: string; detail?: string; id: string };

export type DatabricksTableNode = Extract<DatabricksNode, { kind: 'databricks-table' }>;

const DATABRICKS_KINDS: ReadonlySet<string> = new Set(['databricks-connection', 'databricks-catalog', 'databricks-schema', 'databricks-table', 'databricks-column']);

/** Whether a tree node belongs to this model (the Sources tree mixes it with local folders). */
export function isDatabricksNode(n: unknown): n is Exclude<DatabricksNode, { kind: 'message' }> {
  return typeof n === 'object' && n !== null && DATABRICKS_KINDS.has(String((n as { kind?: unknown }).kind));
}

/** Views and materialized views have no Delta history: nothing to sync from. */
export function isView(tableType: string): boolean {
  return /VIEW/i.test(tableType);
}

/** The table row's description: `v12 · CDF on`. */
export function databricksTableSummary(n: DatabricksTableNode): string {
  if (n.error !== null) return 'cannot read';
  if (isView(n.tableType)) return n.tableType.toLowerCase().replace(/_/g, ' ');
  if (!n.state) return '';
  return `v${n.state.version} · ${n.state.cdfEnabled ? 'CDF on' : 'CDF off'}`;
}

/** The column's description: its type, then NOT NULL. */
export function databricksColumnSummary(n: Extract<DatabricksNode, { kind: 'databricks-column' }>): string {
  return n.field.nullable ? deltaTypeLabel(n.field.type) : `${deltaTypeLabel(n.field.type)} · not null`;
}

export class DatabricksModel {
  /** Version/CDF per `connection/catalog.schema.table`, dropped on refresh or after an ALTER. */
  private readonly states = new Map<string, Promise<DatabricksTableState>>();

  constructor(
    private readonly connections: DatabricksConnections,
    /** How many tables are read at once when a schema expands. */
    private readonly concurrency = 4,
  ) {}

  refresh(): void {
    this.states.clear();
  }

  /** The saved connections (root rows); no rows when none, so the view's welcome can show. */
  roots(): DatabricksNode[] {
    return this.connections.list().map((info): DatabricksNode => ({ kind: 'databricks-connection', info }));
  }

  async children(node?: DatabricksNode): Promise<DatabricksNode[]> {
    if (!node) return this.roots();
    switch (node.kind) {
      case 'databricks-connection':
        return this.level(node.info.name, `${node.info.name}`, 'No catalogs visible to these credentials', async (cat) =>
          (await cat.catalogs()).sort((a, b) => a.localeCompare(b)).map((catalog): DatabricksNode => ({ kind: 'databricks-catalog', connection: node.info.name, catalog })),
        );
      case 'databricks-catalog':
        return this.level(node.connection, `${node.connection}/${node.catalog}`, 'No schemas', async (cat) =>
          (await cat.schemas(node.catalog)).sort((a, b) => a.localeCompare(b)).map((schema): DatabricksNode => ({ kind: 'databricks-schema', connection: node.connection, catalog: node.catalog, schema })),
        );
      case 'databricks-schema':
        return this.level(node.connection, `${node.connection}/${node.catalog}.${node.schema}`, 'No tables', async (cat) => {
          const tables = (await cat.tables(node.catalog, node.schema)).filter((t) => t.name !== '').sort((a, b) => a.name.localeCompare(b.name));
          return mapLimit(tables, this.concurrency, (t) => this.tableNode(node.connection, { catalog: t.catalog, schema: t.schema, table: t.name }, t.type));
        });
      case 'databricks-table':
        return this.level(node.connection, `${node.connection}/${node.fullName}`, 'No columns', async (cat) =>
          (await cat.columns(node.table)).map((field): DatabricksNode => ({ kind: 'databricks-column', connection: node.connection, table: node.fullName, path: [field.name], field })),
        );
      case 'databricks-column': {
        const t = node.field.type;
        if (t.kind !== 'struct') return [];
        return t.fields.map((field): DatabricksNode => ({ kind: 'databricks-column', connection: node.connection, table: node.table, path: [...node.path, field.name], field }));
      }
      case 'message':
        return [];
    }
  }

  /** One level's rows; its failure is one error row, its emptiness one info row. */
  private async level(connection: string, id: string, empty: string, load: (cat: DatabricksCatalog) => Promise<DatabricksNode[]>): Promise<DatabricksNode[]> {
    try {
      const rows = await this.connections.catalog(connection, load);
      return rows.length > 0 ? rows : [{ kind: 'message', severity: 'info', id: `databricks-empty:${id}`, label: empty }];
    } catch (e) {
      return [{ kind: 'message', severity: 'error', id: `databricks-error:${id}`, label: errorText(e) }];
    }
  }

  private async tableNode(connection: string, table: TableName, tableType: string): Promise<DatabricksNode> {
    const base = { kind: 'databricks-table' as const, connection, table, fullName: formatTableName(table), tableType };
    if (isView(tableType)) return { ...base, state: null, error: null };
    try {
      return { ...base, state: await this.tableState(connection, table), error: null };
    } catch (e) {
      return { ...base, state: null, error: errorText(e) };
    }
  }

  /** Latest version and CDF state (DESCRIBE HISTORY LIMIT 1 + SHOW TBLPROPERTIES), cached until refresh. */
  tableState(connection: string, table: TableName): Promise<DatabricksTableState> {
    const key = `${connection}/${formatTableName(table)}`;
    let s = this.states.get(key);
    if (!s) {
      s = this.connections.catalog(connection, async (cat) => {
        const latest: DatabricksHistoryEntry = await cat.latest(table);
        const props = await cat.properties(table);
        return { version: latest.version, timestamp: latest.timestamp, operation: latest.operation, cdfEnabled: (props[CDF_PROPERTY] ?? '').toLowerCase() === 'true' };
      });
      this.states.set(key, s);
      s.catch(() => this.states.delete(key));
    }
    return s;
  }

  /** A table's current columns (for Create Mapping). */
  columns(connection: string, table: TableName): Promise<DeltaField[]> {
    return this.connections.catalog(connection, (cat) => cat.columns(table));
  }

  /** The statement Enable Change Data Feed runs; show it before asking to confirm. */
  enableCdfStatement(node: DatabricksTableNode): string {
    return enableChangeDataFeedStatement(node.table);
  }

  /**
   * Runs the ALTER TABLE that turns the change data feed on, only with `confirm: true`
   * (the user confirmed the statement in a modal); otherwise throws SyncError('usage')
   * and sends nothing to the warehouse. Returns the table's state read afterwards.
   */
  async enableChangeDataFeed(node: DatabricksTableNode, opts: { confirm: boolean }): Promise<DatabricksTableState> {
    if (opts.confirm !== true) {
      throw new SyncError('usage', `Not altering ${node.fullName} without confirmation.`, { table: node.fullName, hint: `This runs: ${this.enableCdfStatement(node)}` });
    }
    if (isView(node.tableType)) throw new SyncError('usage', `${node.fullName} is a ${node.tableType.toLowerCase()}; only Delta tables have a change data feed.`, { table: node.fullName });
    await this.connections.catalog(node.connection, (cat) => cat.enableChangeDataFeed(node.table, { confirm: true }));
    this.states.delete(`${node.connection}/${node.fullName}`);
    return this.tableState(node.connection, node.table);
  }
}

/**
 * The palette's pick for Enable Change Data Feed: connection -> catalog -> schema -> a table
 * whose change data feed is off (views have none; tables that have it are not offered).
 */
export function cdfTablePick(model: DatabricksModel, title: string): TreePick<DatabricksNode> {
  return {
    title,
    children: (node) => model.children(node),
    wanted: (n) => n.kind === 'databricks-table' && !isView(n.tableType) && n.state?.cdfEnabled !== true,
    opens: (n) => n.kind === 'databricks-connection' || n.kind === 'databricks-catalog' || n.kind === 'databricks-schema',
    label: (n) => {
      switch (n.kind) {
        case 'databricks-connection':
          return { label: n.info.name, description: n.info.host };
        case 'databricks-catalog':
          return { label: n.catalog };
        case 'databricks-schema':
          return { label: n.schema };
        case 'databricks-table':
          return { label: n.table.table, description: n.state ? `v${n.state.version} · CDF off` : (n.error ?? n.tableType) };
        default:
          return { label: n.kind === 'message' ? n.label : n.path.join('.') };
      }
    },
    problem: (n) => (n.kind === 'message' && n.severity === 'error' ? n.label : undefined),
  };
}
