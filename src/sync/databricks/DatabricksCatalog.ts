import { SyncError } from '../errors';
import type { DeltaField } from '../delta/types';
import { CDF_PROPERTY, isCdfEnabled } from '../delta/protocolSupport';
import type { DatabricksClient } from './DatabricksClient';
import { formatTableName, parseDatabricksType, quoteTableName } from './databricksTypes';
import type { TableName } from './databricksTypes';

export interface DatabricksTableInfo {
  catalog: string;
  schema: string;
  name: string;
  /** TABLE, VIEW, MANAGED, EXTERNAL, ... as the warehouse reports it. */
  type: string;
  comment: string | null;
}

export interface DatabricksHistoryEntry {
  version: number;
  /** Commit timestamp, ms since epoch. */
  timestamp: number;
  operation: string | null;
}

export interface DatabricksTableDescription {
  name: string;
  columns: DeltaField[];
  version: number;
  /** Commit timestamp of `version`, ms since epoch. */
  timestamp: number;
  operation: string | null;
  cdfEnabled: boolean;
  properties: Record<string, string>;
  /** When CDF is off: the statement that turns it on (run it with enableChangeDataFeed). */
  enableCdfStatement?: string;
}

// The property is Delta's; the views that show it import it from here.
export { CDF_PROPERTY };

function text(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'string' ? v : String(v);
}

function int(v: unknown, what: string): number {
  const n = typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new SyncError('connection', `Databricks returned an unreadable ${what}: ${String(v)}`, { retry: 'manual' });
  return n;
}

function ms(v: unknown): number {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'string') {
    const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v.replace(' ', 'T') : `${v.replace(' ', 'T')}Z`);
    if (!Number.isNaN(t)) return t;
  }
  if (typeof v === 'number') return v;
  throw new SyncError('connection', `Databricks returned an unreadable commit timestamp: ${String(v)}`, { retry: 'manual' });
}

/**
 * Browsing a workspace through a SQL warehouse: catalogs -> schemas -> tables -> columns
 * (the driver's metadata calls), a table's history and properties (DESCRIBE HISTORY, SHOW
 * TBLPROPERTIES), and turning the change data feed on (only on explicit confirmation).
 * Identifiers are always back-quoted; nothing user-given is spliced into SQL unquoted.
 */
export class DatabricksCatalog {
  constructor(private readonly client: DatabricksClient) {}

  async catalogs(): Promise<string[]> {
    const rows = await this.client.metadata('catalogs', {}, { operation: 'browse' });
    return rows.map((r) => text(r.TABLE_CAT) ?? '').filter((s) => s !== '');
  }

  async schemas(catalog: string): Promise<string[]> {
    const rows = await this.client.metadata('schemas', { catalogName: catalog }, { operation: 'browse' });
    return rows.map((r) => text(r.TABLE_SCHEM) ?? '').filter((s) => s !== '');
  }

  async tables(catalog: string, schema: string): Promise<DatabricksTableInfo[]> {
    const rows = await this.client.metadata('tables', { catalogName: catalog, schemaName: schema }, { operation: 'browse' });
    return rows.map((r) => ({
      catalog: text(r.TABLE_CAT) ?? catalog,
      schema: text(r.TABLE_SCHEM) ?? schema,
      name: text(r.TABLE_NAME) ?? '',
      type: text(r.TABLE_TYPE) ?? 'TABLE',
      comment: text(r.REMARKS),
    }));
  }

  /** The table's current columns (getColumns, in ordinal order), types parsed from TYPE_NAME. */
  async columns(t: TableName): Promise<DeltaField[]> {
    const name = formatTableName(t);
    const rows = await this.client.metadata('columns', { catalogName: t.catalog, schemaName: t.schema, tableName: t.table }, { operation: 'browse', table: name });
    if (rows.length === 0) {
      throw new SyncError('mapping', `Table ${name} was not found, or it has no columns you may see.`, {
        table: name,
        setting: 'source.table',
        hint: 'Check the name ({action} lists them) and that you have USE CATALOG, USE SCHEMA and SELECT on it.', action: { id: 'databricks-tables' },
      });
    }
    const sorted = [...rows].sort((a, b) => int(a.ORDINAL_POSITION ?? 0, 'ordinal position') - int(b.ORDINAL_POSITION ?? 0, 'ordinal position'));
    return sorted.map((r) => {
      const col = text(r.COLUMN_NAME) ?? '';
      const comment = text(r.REMARKS);
      return {
        name: col,
        type: parseDatabricksType(text(r.TYPE_NAME) ?? '', col, name),
        nullable: r.NULLABLE === undefined || r.NULLABLE === null ? true : int(r.NULLABLE, 'NULLABLE') !== 0,
        metadata: comment ? { comment } : {},
        physicalName: col,
      };
    });
  }

  /** Commits, newest first; `limit` bounds how many. */
  async history(t: TableName, limit?: number): Promise<DatabricksHistoryEntry[]> {
    const sql = `DESCRIBE HISTORY ${quoteTableName(t)}${limit !== undefined ? ` LIMIT ${Math.max(1, Math.floor(limit))}` : ''}`;
    const rows = await this.client.all(sql, { operation: 'history', table: formatTableName(t) });
    return rows.map((r) => ({ version: int(r.version, 'version'), timestamp: ms(r.timestamp), operation: text(r.operation) }));
  }

  async latest(t: TableName): Promise<DatabricksHistoryEntry> {
    const [h] = await this.history(t, 1);
    if (!h) throw new SyncError('delta-log', `Table ${formatTableName(t)} has no history; is it a Delta table?`, { table: formatTableName(t), hint: 'Only Delta tables can be synced (not views or foreign tables).' });
    return h;
  }

  async properties(t: TableName): Promise<Record<string, string>> {
    const rows = await this.client.all(`SHOW TBLPROPERTIES ${quoteTableName(t)}`, { operation: 'browse', table: formatTableName(t) });
    const out: Record<string, string> = {};
    for (const r of rows) {
      const k = text(r.key);
      if (k !== null) out[k] = text(r.value) ?? '';
    }
    return out;
  }

  async describe(t: TableName): Promise<DatabricksTableDescription> {
    const [columns, latest, properties] = [await this.columns(t), await this.latest(t), await this.properties(t)];
    const cdfEnabled = isCdfEnabled(properties);
    return {
      name: formatTableName(t),
      columns,
      version: latest.version,
      timestamp: latest.timestamp,
      operation: latest.operation,
      cdfEnabled,
      properties,
      ...(cdfEnabled ? {} : { enableCdfStatement: enableChangeDataFeedStatement(t) }),
    };
  }

  /**
   * Turns the change data feed on. Alters the user's table, so it runs only with
   * `{ confirm: true }`; show `enableChangeDataFeedStatement` to the user first.
   */
  async enableChangeDataFeed(t: TableName, opts: { confirm: boolean }): Promise<void> {
    if (opts.confirm !== true) {
      throw new SyncError('usage', `Not altering ${formatTableName(t)} without confirmation.`, { table: formatTableName(t), hint: `This runs: ${enableChangeDataFeedStatement(t)}` });
    }
    await this.client.execute(enableChangeDataFeedStatement(t), { operation: 'alter', table: formatTableName(t) });
  }
}

/** The statement that turns the change data feed on (changes are recorded from the next commit on). */
export function enableChangeDataFeedStatement(t: TableName): string {
  return `ALTER TABLE ${quoteTableName(t)} SET TBLPROPERTIES (${CDF_PROPERTY} = true)`;
}
