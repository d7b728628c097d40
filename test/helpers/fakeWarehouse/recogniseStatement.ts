/**
 * The SQL shapes DatabricksChangeSource / DatabricksCatalog emit, and nothing else: the
 * fake warehouse answers these and rejects any other statement. Kept separate from the
 * source's builders on purpose, so a change there shows up here as a failing test.
 */

export interface TableRef {
  catalog: string;
  schema: string;
  table: string;
}

export type SelectItem =
  | { kind: 'column'; column: string; alias: string }
  | { kind: 'unix_micros'; column: string; alias: string }
  | { kind: 'unix_millis'; column: string; alias: string }
  | { kind: 'cast_string'; column: string; alias: string }
  | { kind: 'map_entries'; column: string; alias: string };

export type Statement =
  | { kind: 'ping' }
  | { kind: 'history'; table: TableRef; limit?: number }
  | { kind: 'properties'; table: TableRef }
  | { kind: 'enable-cdf'; table: TableRef }
  | { kind: 'snapshot'; table: TableRef; version: number; items: SelectItem[] }
  | { kind: 'changes'; items: SelectItem[] };

const ID = '`((?:[^`]|``)+)`';
const TABLE = `${ID}\\.${ID}\\.${ID}`;

const unq = (s: string): string => s.replace(/``/g, '`');

function tableOf(m: RegExpExecArray, at: number): TableRef {
  return { catalog: unq(m[at] as string), schema: unq(m[at + 1] as string), table: unq(m[at + 2] as string) };
}

/** Parses a three-part back-quoted name, as bound to table_changes(:t, ...). */
export function parseTableRef(text: string): TableRef | undefined {
  const m = new RegExp(`^${TABLE}$`).exec(text);
  return m ? tableOf(m, 1) : undefined;
}

const ITEM_PATTERNS: Array<[SelectItem['kind'], RegExp]> = [
  ['unix_micros', new RegExp(`unix_micros\\(${ID}\\) AS ${ID}`, 'y')],
  ['unix_millis', new RegExp(`unix_millis\\(${ID}\\) AS ${ID}`, 'y')],
  ['cast_string', new RegExp(`CAST\\(${ID} AS STRING\\) AS ${ID}`, 'y')],
  ['map_entries', new RegExp(`map_entries\\(${ID}\\) AS ${ID}`, 'y')],
  ['column', new RegExp(`${ID} AS ${ID}`, 'y')],
];

function parseItems(list: string): SelectItem[] | undefined {
  const items: SelectItem[] = [];
  let i = 0;
  while (i < list.length) {
    let hit: SelectItem | undefined;
    for (const [kind, re] of ITEM_PATTERNS) {
      re.lastIndex = i;
      const m = re.exec(list);
      if (m) {
        hit = { kind, column: unq(m[1] as string), alias: unq(m[2] as string) };
        i = re.lastIndex;
        break;
      }
    }
    if (!hit) return undefined;
    items.push(hit);
    if (i === list.length) break;
    if (list.slice(i, i + 2) !== ', ') return undefined;
    i += 2;
  }
  return items;
}

export function recogniseStatement(sql: string): Statement | undefined {
  const s = sql.trim();
  if (s === 'SELECT 1 AS `ok`') return { kind: 'ping' };
  let m = new RegExp(`^DESCRIBE HISTORY ${TABLE}(?: LIMIT (\\d+))?$`).exec(s);
  if (m) return { kind: 'history', table: tableOf(m, 1), ...(m[4] ? { limit: Number(m[4]) } : {}) };
  m = new RegExp(`^SHOW TBLPROPERTIES ${TABLE}$`).exec(s);
  if (m) return { kind: 'properties', table: tableOf(m, 1) };
  m = new RegExp(`^ALTER TABLE ${TABLE} SET TBLPROPERTIES \\(delta\\.enableChangeDataFeed = true\\)$`).exec(s);
  if (m) return { kind: 'enable-cdf', table: tableOf(m, 1) };
  m = new RegExp(`^SELECT (.+) FROM ${TABLE} VERSION AS OF (\\d+)$`).exec(s);
  if (m) {
    const items = parseItems(m[1] as string);
    return items ? { kind: 'snapshot', table: tableOf(m, 2), version: Number(m[5]), items } : undefined;
  }
  m = /^SELECT (.+) FROM table_changes\(:t, :start, :end\) ORDER BY `_commit_version`$/.exec(s);
  if (m) {
    const items = parseItems(m[1] as string);
    return items ? { kind: 'changes', items } : undefined;
  }
  return undefined;
}
